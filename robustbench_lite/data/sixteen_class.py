"""model-vs-human's 16 entry-level categories and their decision rule over ImageNet-1k outputs.

A model's answer is the arg-max over the 16 categories of its softmax probability averaged over
each category's member classes (207 of the 1000; the other 793 are ignored, no renormalising).
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

import numpy as np
import torch

from ..errors import UserError


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads((files("robustbench_lite") / "human_data" / "sixteen_classes.json").read_text())


CATEGORIES: tuple[str, ...] = tuple(_data()["categories"])
"""The 16 names, sorted, as in sixteen_classes.json; answers index into this tuple."""

MEMBERS: dict[str, tuple[int, ...]] = {name: tuple(_data()["imagenet_indices"][name]) for name in CATEGORIES}
"""Each category's member ImageNet-1k indices (0-based, sorted-WNID order), 207 in all."""

_CATEGORY_OF: dict[int, str] = {index: name for name, members in MEMBERS.items() for index in members}


def category_of_label(label: int) -> str | None:
    """The category an ImageNet-1k label belongs to, or None for the 793 outside the 16."""
    return _CATEGORY_OF.get(int(label))


def category_index(name: str) -> int:
    """Position of a category name in CATEGORIES."""
    try:
        return CATEGORIES.index(name)
    except ValueError:
        raise UserError(f"unknown 16-class category {name!r}; known: {', '.join(CATEGORIES)}") from None


def sixteen_class_probabilities(probs: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """(N, 1000) softmax probabilities -> (N, 16) means over each category's members."""
    if probs.ndim != 2 or probs.shape[1] != 1000:
        raise UserError(f"16-class decisions need (N, 1000) probabilities, not shape {tuple(probs.shape)}")
    if isinstance(probs, torch.Tensor):
        return torch.stack([probs[:, list(MEMBERS[name])].mean(dim=1) for name in CATEGORIES], dim=1)
    probs = np.asarray(probs)
    return np.stack([probs[:, list(MEMBERS[name])].mean(axis=1) for name in CATEGORIES], axis=1)


def sixteen_class_decision(probs: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """(N, 1000) softmax probabilities -> (N,) indices into CATEGORIES (first of ties)."""
    scores = sixteen_class_probabilities(probs)
    if isinstance(scores, torch.Tensor):
        return scores.argmax(dim=1)
    return scores.argmax(axis=1)


def sixteen_class_answers(logits: torch.Tensor) -> list[str]:
    """Category names answered for (N, 1000) logits (softmax in float64 first, as records need)."""
    decisions = sixteen_class_decision(torch.softmax(logits.detach().double().cpu(), dim=1))
    return [CATEGORIES[int(i)] for i in decisions]


def sixteen_class_fields(logits: torch.Tensor, labels) -> tuple[list[str], list[bool | None]]:
    """Records' `sixteen_class_answer` and `sixteen_class_correct` for (N, 1000) logits.

    `correct` is None where the label is outside the 16 categories (such photos do not count).
    """
    answers = sixteen_class_answers(logits)
    truths = [category_of_label(int(label)) for label in labels]
    return answers, [None if truth is None else answer == truth for answer, truth in zip(answers, truths)]
