"""Errors a user can cause: shown as one line, exit code 2."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad path, unknown name, refused file): exit 2."""

    exit_code = 2


class ConditionFailed(Exception):
    """A transform or model misbehaved on one condition; the rest of the run goes on."""
