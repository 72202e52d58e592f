"""The officers' web console and JSON API (FastAPI); ``create_app(settings)`` builds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from risk.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, **kwargs: Any) -> FastAPI:
    """Build the console (see ``risk.console.app.create_app``)."""
    from risk.console.app import create_app as _create_app

    return _create_app(settings, **kwargs)
