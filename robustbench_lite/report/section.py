"""One section of the report, shared by the HTML and Markdown renderers."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Section:
    """A heading, then in reading order: paragraphs (plain text; `code` in backticks), plots (name, caption),
    tables (caption, frame), folded details (caption, frame or paragraphs: shown on request), file links."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)  # (plot name, caption)
    details: list[tuple[str, pd.DataFrame | list[str]]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # files beside the report, linked by relative path

    @property
    def anchor(self) -> str:
        """The section's id in the HTML page (its title, lower-case, words joined by hyphens)."""
        return "-".join("".join(c if c.isalnum() else " " for c in self.title.lower()).split())
