"""A transform applied to a batch: the run's per-photo generators, errors as the condition's failure,
and the checks every output passes (shape, dtype, finite, in [0, 1])."""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConditionFailed
from .keys import Condition
from .rng import PhotoRNG, photo_seed


def apply_transform(spec, x: torch.Tensor, condition: Condition, ids: Sequence[str], seed: int) -> torch.Tensor:
    """A transform on a batch with the run's per-photo generators; any error becomes ConditionFailed.

    Out-of-memory is re-raised as it is (the caller backs off); a plug-in calling sys.exit() fails
    its condition, not the run.
    """
    rng = PhotoRNG([photo_seed(seed, spec.name, condition.severity, i) for i in ids], x.device)
    try:
        return spec(x, condition.level, rng)
    except (ConditionFailed, torch.cuda.OutOfMemoryError):
        raise
    except (Exception, SystemExit) as exc:
        raise ConditionFailed(f"transform {spec.name} raised {type(exc).__name__}: {exc}") from None



def check_transform_output(x: torch.Tensor, out, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A transform must return a finite float tensor of the input's shape, in [0, 1].

    Shape and dtype are checked now; values are summarised on the device as (min, max)
    and checked once per chunk (`check_values`), so the GPU is never stalled batch by batch.
    """
    if not isinstance(out, torch.Tensor):
        raise ConditionFailed(f"transform {name} returned {type(out).__name__}, not a tensor")
    if out.shape != x.shape:
        raise ConditionFailed(f"transform {name} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    if out.dtype != x.dtype:
        raise ConditionFailed(f"transform {name} returned dtype {out.dtype}, expected {x.dtype}")
    lo, hi = torch.aminmax(out)  # NaN propagates and inf is kept: one pass says all
    return out.clamp(0.0, 1.0), torch.stack([lo, hi])



def check_values(summaries: list[torch.Tensor], name: str) -> None:
    """Raise ConditionFailed if any batch of a transform's output was non-finite or outside [0, 1]."""
    if not summaries:
        return
    lo, hi = torch.stack(summaries).cpu().unbind(1)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ConditionFailed(f"transform {name} returned NaN or infinite values")
    if lo.min() < -1e-3 or hi.max() > 1 + 1e-3:
        raise ConditionFailed(f"transform {name} returned values outside [0, 1] ({lo.min():.3g} to {hi.max():.3g})")
