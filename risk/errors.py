"""Errors meant for the person at the keyboard: the CLI prints them in one line, exit code 2."""

from __future__ import annotations


class RiskError(Exception):
    """A failure with a clear cause the user can act on (bad file, missing column, no model)."""


class InputError(RiskError):
    """The input cannot be read at all: unreadable file, wrong encoding, missing column."""
