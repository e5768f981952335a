"""Errors of the triggers service."""

from __future__ import annotations

__all__ = ["TriggersError", "Unprocessable"]


class TriggersError(Exception):
    """Base of the triggers service's errors."""


class Unprocessable(TriggersError, ValueError):
    """A record that can never be processed; it goes to the DLQ with this reason."""
