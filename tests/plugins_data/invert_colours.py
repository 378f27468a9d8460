"""A plug-in file: one transform, one level."""
from torch import Tensor

from robustbench_lite import register_transform


@register_transform("invert_colours", family="test_plugins", severities=(1.0,), params={"level": "unused"})
def invert_colours(x: Tensor, level: float, rng) -> Tensor:
    """Photographic negative: every channel becomes 1 - value."""
    return 1.0 - x
