"""torchrun support: rank and world from the environment, a process group when there are several."""
from __future__ import annotations

import os

import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    return world_size() > 1 and dist.is_available()


def init() -> None:
    """Join torchrun's process group (nccl on GPUs, gloo on CPU); a no-op for one process."""
    if active() and not dist.is_initialized():
        import torch

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank() % torch.cuda.device_count())
        else:  # ranks on one CPU share its cores instead of each taking all of them
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // per_node))
        dist.init_process_group(backend=backend)


def barrier() -> None:
    if active() and dist.is_initialized():
        dist.barrier()


def gather_lists(items: list) -> list:
    """Every rank's list, concatenated (rank order), on every rank."""
    if not (active() and dist.is_initialized()):
        return list(items)
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, list(items))
    return [x for part in gathered for x in part]


def shutdown() -> None:
    if active() and dist.is_initialized():
        dist.destroy_process_group()
