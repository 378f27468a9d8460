"""A plug-in folder file: RGB -> BGR."""
from torch import Tensor

from robustbench_lite import register_transform


@register_transform("plugdir_swap_rb", family="test_plugins", severities=(1.0,))
def plugdir_swap_rb(x: Tensor, level: float, rng) -> Tensor:
    """Swap the red and blue channels."""
    return x.flip(1)
