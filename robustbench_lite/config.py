"""A run's configuration: every CLI option as a field, loadable from TOML, round-tripped in the manifest."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class RunConfig:
    """Everything that defines a run. Field names are the CLI options with '-' as '_'."""

    data: str = "imagenet-sample"
    models: str = "efficientnet_lite*"
    transforms: str | None = None  # None: the four core families
    severities: str | None = None  # None: every level
    limit: int | None = None
    classes: str | None = None
    restrict_logits: bool = False
    out: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: str = "auto"
    workers: int | None = None
    seed: int = 0
    chunk_size: int = 256
    save_logits: bool = False
    plugin: list[str] = field(default_factory=list)
    plugin_dir: list[str] = field(default_factory=list)
    baseline: str | None = None
    strict: bool = False
    force: bool = False
    compile: bool = False
    report: bool = True
    dry_run: bool = False

    # options that change results (a resumed run must agree on these)
    RESULT_KEYS = ("data", "seed", "restrict_logits", "limit", "classes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown config key(s): {', '.join(unknown)} (keys are the run options, e.g. batch_size)")
        return cls(**values)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (keys as the options, '-' or '_', optional [run] table), or a run's
    manifest.json (its `config`: re-running it reproduces that run)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"--config {path}: no such file")
    if path.suffix == ".json":
        import json

        try:
            values = json.loads(path.read_text())["config"]
        except (ValueError, KeyError):
            raise UserError(f"--config {path}: not a robustbench-lite manifest.json") from None
        values = {k: v for k, v in values.items() if k not in ("out", "force", "dry_run")}
    else:
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"--config {path}: not valid TOML ({exc})") from None
        values = values.get("run", values)
    normalised = {k.replace("-", "_"): v for k, v in values.items()}
    for key in ("plugin", "plugin_dir"):
        if isinstance(normalised.get(key), str):
            normalised[key] = [normalised[key]]
    for key in ("models", "transforms", "severities", "classes"):
        if isinstance(normalised.get(key), list):
            normalised[key] = ",".join(str(v) for v in normalised[key])
    if "batch_size" in normalised:
        normalised["batch_size"] = str(normalised["batch_size"])
    RunConfig.from_dict(normalised)  # validates the keys
    return normalised
