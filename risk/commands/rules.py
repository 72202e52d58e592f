"""``risk rules``: the hard rules in force, for batch jobs that run away from the store."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from risk.errors import RiskError
from risk.settings import get_settings

app = typer.Typer(
    help="Hard rules: the rules file plus the supervisors' watch lists in the store.",
    no_args_is_help=True,
)


@app.command("export")
def export(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Rules file to write (TOML, as risk/reference/rules.toml), atomically; "
            "`risk score --rules FILE` reads it.",
        ),
    ],
    rules: Annotated[
        Path | None,
        typer.Option(help="Rules file whose rules come first. Default: risk/reference/rules.toml."),
    ] = None,
    on: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Only entries valid on this day (YYYY-MM-DD). Default: every active entry, "
            "each keeping its own validity dates.",
        ),
    ] = None,
) -> None:
    """Write the rules in force: the rules file's, then the store's active watch lists."""
    from risk import store
    from risk.atomic import atomic_path
    from risk.rules import dump_rules, load_rules, merge_rules

    settings = get_settings()
    url = str(settings.database_url)
    day: date | None = on.date() if on is not None else None
    try:
        base = load_rules(rules)
        settings.ensure_data_dir()
        store.migrate(url)
        engine = store.make_engine(url)
        try:
            with store.session_factory(engine)() as session:
                watched = store.active_rules(session=session, on=day)
        finally:
            engine.dispose()
        exported_at = f"{store.utcnow():%Y-%m-%d %H:%M} UTC"
        validity = f" valid on {day}" if day else ""
        header = (
            f"Hard rules in force, exported by `risk rules export` at {exported_at}:\n"
            f"{len(base.rules)} from {rules or 'the shipped rules file'}, "
            f"{len(watched.rules)} watch-list entries of the store{validity}.\n"
            "Read by `risk score --rules FILE`."
        )
        text = dump_rules(merge_rules(base, watched), header=header)
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write {output}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{len(base.rules) + len(watched.rules)} rules written to {output} "
        f"({len(base.rules)} from the rules file, {len(watched.rules)} from watch lists)"
    )
