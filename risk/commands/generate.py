"""`risk generate`: synthetic border traffic (history, outcomes, today's queue, ground truth)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from risk.errors import RiskError

_SCHEME_HELP = (
    "Share of items under a scheme, as NAME=RATE (repeatable), e.g. "
    "--scheme-rate undervaluation=0.05. Schemes: undervaluation, reexport, "
    "cargo_consolidation, transit_diversion, misclassification, false_origin, one_day_firm, "
    "weight_misdeclaration, splitting."
)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RiskError(f"--as-of {text!r}: expected a date as YYYY-MM-DD") from None


def _parse_rates(pairs: list[str]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            rates[name.strip()] = float(value)
        except ValueError:
            raise RiskError(
                f"--scheme-rate {pair!r}: expected NAME=RATE, e.g. undervaluation=0.05"
            ) from None
    return rates


def command(
    seed: Annotated[
        int, typer.Option(help="Seed of every random draw; same seed, same bytes.")
    ] = 7,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder. Default: <data dir>/traffic (RISK_DATA_DIR)."),
    ] = None,
    history_days: Annotated[int, typer.Option(help="Days of past traffic with outcomes.")] = 120,
    queue_trucks: Annotated[int, typer.Option(help="Trucks standing in today's queue.")] = 7000,
    items: Annotated[int, typer.Option(help="Goods items of past traffic (the scale).")] = 200_000,
    as_of: Annotated[
        str, typer.Option(help="'Today' (YYYY-MM-DD): the queue ends here. Fixed by default.")
    ] = "2026-11-02",
    scheme_rate: Annotated[list[str] | None, typer.Option(help=_SCHEME_HELP)] = None,
) -> None:
    """Generate synthetic Kazakhstan–Russia border traffic with every grey-import scheme."""
    try:
        _run(seed, out, history_days, queue_trucks, items, as_of, scheme_rate or [])
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(
    seed: int,
    out: Path | None,
    history_days: int,
    queue_trucks: int,
    items: int,
    as_of: str,
    scheme_rate: list[str],
) -> None:
    from pydantic import ValidationError

    from pipelines.generate import TrafficConfig, generate_traffic, write_traffic
    from risk.settings import get_settings

    try:
        config = TrafficConfig(
            seed=seed,
            as_of=_parse_date(as_of),
            history_days=history_days,
            queue_trucks=queue_trucks,
            history_items=items,
            scheme_rates=_parse_rates(scheme_rate),
        )
    except ValueError as error:  # includes pydantic's ValidationError
        if isinstance(error, ValidationError):
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                for e in error.errors()
            )
            raise RiskError(f"invalid generator settings: {details}") from None
        raise RiskError(f"invalid generator settings: {error}") from None

    target = out if out is not None else get_settings().data_dir / "traffic"
    traffic = generate_traffic(config)
    paths = write_traffic(traffic, target)

    from pipelines.generate import LAYOUT, realised_scheme_rates

    typer.echo(f"Synthetic traffic (seed {seed}, as of {config.as_of}) written to {target}")
    for name, rel in LAYOUT.items():
        typer.echo(f"  {rel:<32} {getattr(traffic, name).height:>10,} rows")
    typer.echo(f"  {paths['manifest'].name}")
    history = realised_scheme_rates(traffic.history_truth)
    queue = realised_scheme_rates(traffic.queue_truth)
    typer.echo("Realised scheme rates (share of items)   history   queue   configured")
    for name in history:
        configured = config.scheme_rates.get(name)
        shown = f"{configured:.4f}" if configured is not None else "-"
        typer.echo(f"  {name:<38} {history[name]:.4f}   {queue[name]:.4f}   {shown}")
