"""``risk console``: the officers' web console and JSON API."""

from __future__ import annotations

from typing import Annotated

import typer

from risk.errors import RiskError
from risk.settings import get_settings


def command(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    model_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow model the API scores with (default: the canonical profile's "
            "@champion), loaded on the first score request."
        ),
    ] = None,
) -> None:
    """Serve the console: migrate the store, then listen (Ctrl-C stops it)."""
    import uvicorn

    from risk import store
    from risk.console import create_app

    settings = get_settings()
    try:
        settings.ensure_data_dir()
        store.migrate(str(settings.database_url))
        app = create_app(settings, model_uri=model_uri)
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"console on http://{host}:{port}/ (API docs at /api/docs)")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
