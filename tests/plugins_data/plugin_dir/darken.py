"""A plug-in folder file: brightness scaled down by `level`."""
from torch import Tensor

from robustbench_lite import register_transform


@register_transform("plugdir_darken", family="test_plugins", severities=(0.2, 0.4, 0.6, 0.8, 0.9))
def plugdir_darken(x: Tensor, level: float, rng) -> Tensor:
    """Scale every pixel by 1 - level."""
    return x * (1.0 - level)
