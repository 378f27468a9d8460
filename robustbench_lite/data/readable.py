"""Whether a photo set can be read at all, decided before any weights load.

A header check (Pillow opens a file lazily: the header, never the pixels) stops at the first photo that
opens, so a usable folder costs one file open; only a folder of nothing but unreadable files is read
through. Photos that open but cannot be decoded whole are found, and skipped, by the run itself.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from .datasets import Sample
from .decode import not_a_file_reason

SHOWN = 3  # unreadable files named in the one-line error; the rest are counted


def header_problem(path: Path) -> str | None:
    """Why `path` is not a photo Pillow can open (empty, a folder, a FIFO, not an image...), or None."""
    try:
        reason = not_a_file_reason(path)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if reason:
        return reason
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decompression-bomb and metadata warnings: the run decides those
            with open(path, "rb") as f, Image.open(f):
                return None
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except Exception as exc:  # OSError (permissions), corrupt headers: Pillow raises many types
        return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def unreadable_listing(problems: Sequence[tuple[str, str]], total: int) -> str:
    """`a.JPEG: not an image Pillow can read; b.JPEG: empty file; and 4 more` for a one-line message."""
    shown = "; ".join(f"{path}: {reason}" for path, reason in problems[:SHOWN])
    return shown + (f"; and {total - SHOWN} more" if total > SHOWN else "")


def check_some_readable(samples: Sequence[Sample], what: str) -> None:
    """A one-line UserError naming `what` (the option) when not one of `samples` opens as an image."""
    problems = []
    for sample in samples:
        reason = header_problem(sample.path)
        if reason is None:
            return
        problems.append((sample.id, reason))
    if problems:
        raise UserError(f"{what}: none of its {len(problems)} photo file(s) can be read as an image "
                        f"({unreadable_listing(problems, len(problems))}); nothing was run, no model loaded")


def no_photo_decoded(what: str, undecodable: Sequence[dict], rows: int, failed: Sequence) -> str | None:
    """The one-line error of a run that decoded no photo at all (every file opened but none decoded whole),
    or None: records exist, or conditions failed (that is reported as failures, not as unreadable photos)."""
    if rows or failed or not undecodable:
        return None
    listing = unreadable_listing([(item["path"], item["reason"]) for item in undecodable], len(undecodable))
    return f"{what}: none of its {len(undecodable)} photo(s) could be decoded ({listing}); no records were written"
