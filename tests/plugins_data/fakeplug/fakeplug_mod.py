"""A fake installed package's plug-in: importing registers one transform, `register()` another."""
from torch import Tensor

from robustbench_lite import register_transform


@register_transform("fakeplug_halve", family="test_plugins", severities=(1.0,))
def fakeplug_halve(x: Tensor, level: float, rng) -> Tensor:
    """Halve every pixel."""
    return x * 0.5


def register() -> None:
    """Entry point `fakeplug_mod:register`: registers a second transform when called."""

    @register_transform("fakeplug_black", family="test_plugins", severities=(1.0,))
    def fakeplug_black(x: Tensor, level: float, rng) -> Tensor:
        """All black."""
        return x * 0.0
