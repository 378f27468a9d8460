"""A run's configuration: every run option as a field, and the one normaliser of options.

The CLI, a TOML file, the Python API and a manifest's `config` all pass through `normalise_options`,
so a value means the same wherever it was written.
"""
from __future__ import annotations

import difflib
import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class RunConfig:
    """Everything that defines a run. Field names are the CLI options with '-' as '_'."""

    data: str = "imagenet-sample"
    models: str = "efficientnet_lite*"
    resolutions: str | None = None  # None: each model at its own input size
    transforms: str | None = None  # None: the four core families
    severities: str | None = None  # None: every level
    limit: int | None = None
    classes: str | None = None
    restrict_logits: bool = False
    shifts: list[str] = field(default_factory=list)  # NAME or NAME=DIR: natural-shift datasets, one condition each
    labels: str | None = None  # real: ImageNet ReaL (timm's bundled), or a JSON file of the same form
    protocol: str = "imagenet"  # or sixteen-class: only photos of model-vs-human's 16 categories
    corruption_protocol: str = "native"  # or imagenet-c: the released dataset's recipe, JPEG 85 at 224 px
    population: str = "testbed"  # or timm, timm-in1k: whose published lines the natural shifts are read on
    stability: str | None = None  # imagenet-p: perturbation sequences scored frame by frame (run/stability.py)
    out: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    decode: str = "auto"  # cpu (PIL, timm exact), device (batched decode_jpeg on the run device), auto: device on CUDA
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], origin: str = "options") -> "RunConfig":
        """A config from options of any origin (normalised and checked by `normalise_options`)."""
        return cls(**normalise_options(values, origin))


OPTION_NAMES = tuple(f.name for f in fields(RunConfig))
LIST_TEXT = ("models", "resolutions", "transforms", "severities", "classes")  # a list or a comma-separated string
PATH_LISTS = ("plugin", "plugin_dir")  # one path or a list of paths
INTEGERS = {"limit": 1, "seed": None, "chunk_size": 1, "workers": 0}  # option -> smallest value allowed
BOOLEANS = ("restrict_logits", "save_logits", "strict", "force", "compile", "report", "dry_run")
TEXT = ("data", "out", "device", "precision", "decode", "baseline", "protocol", "corruption_protocol", "labels",
        "population", "stability")
POPULATIONS = ("testbed", "timm", "timm-in1k")  # analysis/references.py POPULATIONS (not imported: config stays light)


def _unknown_key(key: str, origin: str) -> UserError:
    close = difflib.get_close_matches(key, OPTION_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (keys are the run options, e.g. batch_size)"
    return UserError(f"{origin}: unknown option {key!r}{hint}")


COMMAND_LINE = "command line"  # the origin of flags: errors name the flag itself (--chunk-size)


def _name(key: str, origin: str) -> str:
    """How an error names an option: `--chunk-size` for a flag, `--config bench.toml: chunk_size` for a file's key."""
    return f"--{key.replace('_', '-')}" if origin == COMMAND_LINE else f"{origin}: {key}"


def _integer(key: str, value: Any, origin: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{_name(key, origin)} must be a whole number, not {value!r}")
    smallest = INTEGERS[key]
    if smallest is not None and value < smallest:
        raise UserError(f"{_name(key, origin)} must be at least {smallest}, not {value}")
    return value


def normalise_options(values: dict[str, Any], origin: str = "options") -> dict[str, Any]:
    """Options as RunConfig fields: '-' as '_', lists joined, types checked (one-line UserErrors)."""
    out: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in OPTION_NAMES:
            raise _unknown_key(str(raw_key), origin)
        if key in LIST_TEXT and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif key in PATH_LISTS:
            value = [value] if isinstance(value, (str, Path)) else list(value or [])
            value = [str(v) for v in value]
        elif key == "shifts":
            from ..data.shifts import parse_shift_specs

            if value is not None and not isinstance(value, (str, list, tuple)):
                raise UserError(f"{_name(key, origin)} must be text or a list, not {value!r}")
            value = parse_shift_specs(value, _name(key, origin))
        elif key == "batch_size":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise UserError(f"{_name(key, origin)} must be a number or 'auto', not {value!r}")
            value = str(value)
        elif key in INTEGERS:
            value = _integer(key, value, origin)
        elif key in BOOLEANS:
            if not isinstance(value, bool):
                raise UserError(f"{_name(key, origin)} must be true or false, not {value!r}")
        if key in LIST_TEXT + TEXT and value is not None and not isinstance(value, str):
            if key in ("severities", "resolutions") and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            else:
                raise UserError(f"{_name(key, origin)} must be text, not {value!r}")
        if key == "population" and value not in POPULATIONS:
            raise UserError(f"{_name(key, origin)} must be one of {', '.join(POPULATIONS)}, not {value!r}")
        out[key] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (keys as the options, '-' or '_', optional [run] table), or a run's
    manifest.json (its `config`: re-running it reproduces that run)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"--config {path}: no such file")
    if path.suffix == ".json":
        try:
            values = json.loads(path.read_text())["config"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"--config {path}: not a robustbench-lite manifest.json") from None
        values = {k: v for k, v in values.items() if k not in ("out", "force", "dry_run")}
    else:
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"--config {path}: not valid TOML ({exc})") from None
        values = values.get("run", values)
    options = normalise_options(values, f"--config {path}")
    return _relative_to(path.parent, options) if path.suffix != ".json" else options


def _relative_to(base: Path, options: dict[str, Any]) -> dict[str, Any]:
    """A TOML file's relative paths (data, out, plug-ins) mean paths beside the file, not the working directory."""
    def resolve(text: str) -> str:
        path = Path(text).expanduser()
        return text if path.is_absolute() else str((base / path).resolve())

    from ..data.download import NAMED_DATASETS

    for key in ("data", "out"):
        if isinstance(options.get(key), str) and not (key == "data" and options[key] in NAMED_DATASETS):
            options[key] = resolve(options[key])
    for key in PATH_LISTS:
        if key in options:
            options[key] = [resolve(p) for p in options[key]]
    if options.get("shifts"):
        from ..data.shifts import split_spec

        options["shifts"] = [spec if split_spec(spec)[1] is None else f"{split_spec(spec)[0]}={resolve(split_spec(spec)[1])}"
                             for spec in options["shifts"]]
    return options
