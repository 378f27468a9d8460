"""manifest.json: the run's config, versions, data, models, conditions, skips, failures and timings."""
from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..errors import UserError
from ..version import __version__
from .store import atomic_write_json, strict_json


def versions() -> dict[str, str]:
    import timm
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "robustbench_lite": __version__,
        "platform": platform.platform(),
    }


def build_manifest(plan, models) -> dict:
    """The manifest of a planned run (status and results are added as it goes)."""
    specs = {s.name: s for s in plan.transforms}
    conditions = []
    for c in plan.conditions:
        spec = specs.get(c.transform)
        conditions.append({
            "transform": c.transform,
            "family": spec.family if spec else "clean",
            "severity": c.severity,
            "level": c.level,
            "description": spec.description if spec else "the photo as it is",
            "params": dict(spec.params) if spec else {},
            "version": spec.version if spec else "",
            "source": spec.source if spec else "",
        })
    conditions += [{**row, "version": "", "source": ""} for row in plan.shift_conditions()]
    return {
        "tool": "robustbench-lite",
        "version": __version__,
        "argv": sys.argv,
        "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "config": plan.config.to_dict(),
        "versions": versions(),
        "device": str(plan.device),
        "decode": _decode_mode(plan),
        "device_name": _device_name(plan.device),
        "dataset": plan.dataset_info,
        "chunk_size": plan.config.chunk_size,
        "models": {m.name: m.describe() for m in models},
        "transforms": {s.name: s.as_dict() for s in plan.transforms},
        "conditions": conditions,
        "shifts": {s.name: s.describe() for s in plan.shifts},
        "skipped": [],
        "failed": [],
    }


def _decode_mode(plan) -> str:
    """Where this run decodes its JPEGs (`auto` resolved)."""
    from ..data.device_decode import resolve_decode

    return resolve_decode(getattr(plan.config, "decode", "auto"), plan.device)


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def write_manifest(run_dir: Path, manifest: dict, status: str, timings: dict | None = None) -> None:
    manifest["status"] = status
    if timings is not None:
        manifest["timings"] = timings
    atomic_write_json(Path(run_dir) / "manifest.json", manifest)


def read_manifest(run_dir: Path) -> dict:
    """A run folder's manifest.json, or a one-line error."""
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: no manifest.json (not a robustbench-lite run folder)")
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: unreadable manifest ({exc})") from None


def comparable(old: dict, new: dict, same_store: bool = True) -> list[str]:
    """What differs between two runs' manifests in anything that changes their results: the one rule.

    Empty when their records may be mixed. Resume (`same_store`, chunks written into one folder)
    also needs the same chunk layout, record columns and tool version; a report merging separate
    run folders does not. Models and transforms only one of them has are additions, not differences.
    """
    diffs = []
    old_config, new_config = old.get("config", {}), new.get("config", {})
    keys = ("seed", "restrict_logits", "corruption_protocol") + (("save_logits",) if same_store else ())
    for key in keys:
        if old_config.get(key) != new_config.get(key):
            diffs.append(f"{key}: {old_config.get(key)!r} -> {new_config.get(key)!r}")
    if _precision(old) != _precision(new):
        diffs.append(f"precision: {_precision(old)} -> {_precision(new)}")
    old_print, new_print = old.get("dataset", {}).get("fingerprint"), new.get("dataset", {}).get("fingerprint")
    if old_print != new_print:
        diffs.append(f"dataset fingerprint: {old_print} -> {new_print} (other photos, --limit or --classes)")
    old_shifts, new_shifts = old.get("shifts") or {}, new.get("shifts") or {}
    for name in sorted(set(old_shifts) & set(new_shifts)):  # a shift only one run has is an addition
        for field in ("fingerprint", "classes"):
            if old_shifts[name].get(field) != new_shifts[name].get(field):
                diffs.append(f"shift {name}: {field} {old_shifts[name].get(field)} -> {new_shifts[name].get(field)} "
                             "(other photos, --limit or --classes)")
    if same_store and old.get("chunk_size") != new.get("chunk_size"):
        diffs.append(f"chunk_size: {old.get('chunk_size')} -> {new.get('chunk_size')}")
    old_models, new_models = old.get("models", {}), new.get("models", {})
    for name in sorted(set(old_models) & set(new_models)):
        a, b = old_models[name], new_models[name]
        if a.get("weights_sha256") != b.get("weights_sha256"):
            diffs.append(f"model {name}: weights changed")
        if a.get("preprocessing") != b.get("preprocessing"):
            diffs.append(f"model {name}: preprocessing changed")
    old_transforms, new_transforms = old.get("transforms", {}), new.get("transforms", {})
    for name in sorted(set(old_transforms) & set(new_transforms)):
        a, b = old_transforms[name], new_transforms[name]
        for field in ("severities", "params", "version"):
            if strict_json(a.get(field)) != strict_json(b.get(field)):  # one side may come from a file
                diffs.append(f"transform {name}: {field} changed")
    if same_store and old.get("version") != new.get("version"):
        diffs.append(f"robustbench-lite version: {old.get('version')} -> {new.get('version')}")
    return diffs


def _precision(manifest: dict) -> str:
    """The arithmetic a run's logits came from: CPU runs are fp32 whatever --precision says."""
    device = str(manifest.get("device", "cpu"))
    return str(manifest.get("config", {}).get("precision", "fp32")) if device.startswith("cuda") else "fp32"


def check_resumable(run_dir: Path, manifest: dict, force: bool, echo: Callable[[str], None]) -> None:
    """Refuse to mix results with a run folder whose results would differ; --force starts afresh."""
    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        return
    if force:
        import shutil

        echo(f"--force: starting {run_dir} afresh")
        for name in ("chunks", "records.parquet", "manifest.json"):
            target = Path(run_dir) / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        return
    try:
        old = json.loads(path.read_text())
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise UserError(f"--out {run_dir}: its manifest.json is unreadable ({exc}); use another --out or --force to start afresh") from None
    diffs = comparable(old, manifest)
    if diffs:
        raise UserError(f"--out {run_dir} holds a run that differs in: {'; '.join(diffs)}; use another --out or --force to start afresh")
    # keep models and conditions evaluated earlier in the manifest, so the merged records are described
    for name, entry in old.get("models", {}).items():
        manifest["models"].setdefault(name, entry)
    for name, entry in old.get("transforms", {}).items():
        manifest["transforms"].setdefault(name, entry)
    known = {(c["transform"], c["severity"]) for c in manifest["conditions"]}
    earlier = [c for c in old.get("conditions", []) if (c["transform"], c["severity"]) not in known]
    manifest["conditions"].extend(earlier)
    earlier_shifts = {name: entry for name, entry in (old.get("shifts") or {}).items() if name not in manifest["shifts"]}
    if earlier_shifts:  # their records stay in the folder: keep them described, and reproduced by the config
        manifest["shifts"].update(earlier_shifts)
        kept = [s for s in old.get("config", {}).get("shifts") or [] if s.partition("=")[0] in earlier_shifts]
        manifest["config"]["shifts"] = [*manifest["config"].get("shifts", []), *kept]
    # the run now holds more transforms than this command's --transforms: record every condition, so it reproduces
    if any(int(c["severity"]) >= 1 for c in earlier):
        manifest["config"]["transforms"] = conditions_text(manifest["conditions"])
        manifest["config"]["severities"] = None
    manifest["started"] = old.get("started", manifest.get("started"))


def conditions_text(conditions: Sequence[dict]) -> str:
    """`--transforms` text selecting exactly these conditions: NAME@S each (single-level adapters by name);
    clean and the shifts' conditions (severity 0) come from elsewhere (`--shifts`)."""
    from ..conditions.adapters import is_adapter_spec

    return ",".join(c["transform"] if is_adapter_spec(c["transform"]) else f"{c['transform']}@{c['severity']}"
                    for c in conditions if int(c["severity"]) >= 1) or "none"  # clean and shifts (severity 0) are not

