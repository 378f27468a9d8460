"""Recipe parity of a placed condition: whether the run made it the way its published line's population did.

A condition placed against a published line says "this model is above or below what models of its clean
accuracy do under this condition"; that holds only if the condition was made by the population's recipe.
`recipe(condition, protocol)` is `release` where it was (the built-in corruptions' recipes are checked
against the population's code by golden tests: tests/test_testbed_goldens.py for `native`, the
testbed's in-memory code; tests/test_corruption_goldens.py for `imagenet-c`, the release's), else the
reason it is not placed. The facts live beside the recipes, in transforms/_release.py (RECIPES), and in
the bundled population (a column that recorded clean accuracy places nothing: `defective_line`).
"""
from __future__ import annotations

from ..conditions.keys import parse_condition_key
from ..conditions.registry import builtin_module
from .references import CORRUPTIONS, EXTRA_CORRUPTIONS, is_mapped, population_points

DEFECTIVE_SHARE = 0.5  # a line whose fit models mostly score their clean accuracy measured no corruption

RELEASE = "release"
PROTOCOL_RECIPES = {  # the report's paragraph: which recipe each protocol uses
    "native": "the imagenet-testbed's in-memory recipe (its torch ports of ImageNet-C, on each model's own "
              "resized and cropped photo; glass_blur, which it never ran in memory, by the release's sweep), "
              "placed on its _in-memory lines (glass_blur on the _on-disk line, indicative)",
    "imagenet-c": "the released ImageNet-C's recipe (make_imagenet_c.py at 224 px, 8-bit cut, JPEG 85), placed on "
                  "the testbed's _on-disk lines (the released JPEGs)",
}


def recipe(condition: str, protocol: str) -> str:
    """`release` when the run's recipe of `condition` is its published line's, else why it is not placed."""
    name, _ = parse_condition_key(condition)
    if name not in CORRUPTIONS + EXTRA_CORRUPTIONS:
        return RELEASE  # greyscale (the testbed's BT.601 formula) and natural shifts (the published photos)
    parity = builtin_module("_release").recipe(name, protocol)
    return parity if parity != RELEASE else (defective_line(condition, protocol) or RELEASE)


def defective_line(condition: str, protocol: str) -> str | None:
    """Why the published line of `condition` cannot place anything, or None: most of its line-fit models
    score exactly their clean top-1 there (the testbed's zoom_blur.1_in-memory: 52 of 78), so the column
    recorded clean accuracy, not the corruption."""
    if not is_mapped(condition, protocol):
        return None
    fit = population_points(condition, protocol).query("in_fit")
    same = int((fit["shifted"] - fit["clean"]).abs().lt(1e-9).sum())
    if len(fit) and same > DEFECTIVE_SHARE * len(fit):
        return (f"its published column equals clean val top-1 for {same} of the line's {len(fit)} models (a defect of "
                "the testbed's data: it recorded no corruption)")
    return None


def recipes_text(protocol: str, recipes: dict[str, str]) -> str:
    """One paragraph: the protocol's recipe, how many conditions are placed, and why any are not."""
    placed = [c for c, r in recipes.items() if r == RELEASE]
    why: dict[str, list[str]] = {}
    for condition, reason in recipes.items():
        if reason != RELEASE:
            why.setdefault(reason, []).append(condition)
    text = (f"Recipes: this run's corruption protocol is {protocol}: {PROTOCOL_RECIPES.get(protocol, protocol)}. "
            f"{len(placed)} of its {len(recipes)} mapped condition(s) are placed (references.csv's recipe = release: "
            "made by their line's own recipe, checked by golden tests).")
    for reason, conditions in why.items():
        shown = ", ".join(conditions[:6]) + (f" and {len(conditions) - 6} more" if len(conditions) > 6 else "")
        text += f" Not placed (no effective robustness against their line): {shown}: {reason}."
    return text
