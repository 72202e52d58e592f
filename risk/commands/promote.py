"""`risk promote`: make a registered model the champion, only if it finds more.

The candidate (default: the latest version) replaces the champion only if its precision at
the inspection capacity, on the candidate's held-out period with both models re-scoring the
same items, is strictly higher; otherwise the command prints both figures and exits 1.
Rolling back: ``risk promote --rollback --reason TEXT`` moves ``champion`` back to the
version it replaced last; ``risk promote --version N --force --reason TEXT`` moves it to any
version without comparison. ``risk score`` uses ``models:/NAME@champion``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from risk.errors import RiskError


def _default_model(base: str) -> str:
    """The model family member (``base`` or ``base-PROFILE``) with the newest version, so that
    `risk promote` right after `risk train --profile kcs ...` promotes the kcs model."""
    from mlflow import MlflowClient

    client = MlflowClient()
    versions = [
        v
        for model in client.search_registered_models()
        if model.name == base or model.name.startswith(f"{base}-")
        for v in client.search_model_versions(f"name = '{model.name}'")
    ]
    if not versions:
        raise RiskError(f"no registered model named {base!r} or {base}-*: run `risk train` first")
    return max(versions, key=lambda v: (v.creation_timestamp, int(v.version))).name


def command(
    model: Annotated[
        str | None,
        typer.Option(
            help="Registered model name (default: the settings' model family member that was "
            "trained last, e.g. grey-import-risk-kcs after a kcs run)."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Pick the model of this source profile (instead of --model)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Candidate version (default: the latest).")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Candidate by the MLflow run that trained it.")
    ] = None,
    capacity: Annotated[
        float, typer.Option(help="Inspection capacity share to compare precision at.")
    ] = 0.05,
    force: Annotated[
        bool, typer.Option(help="Move the alias without comparison (needs --reason).")
    ] = False,
    rollback: Annotated[
        bool, typer.Option(help="Move the alias back to the previous champion (needs --reason).")
    ] = False,
    reason: Annotated[
        str, typer.Option(help="Why, recorded on the version (required by --force/--rollback).")
    ] = "",
) -> None:
    """Set the 'champion' alias if the candidate beats the champion at the capacity."""
    # OpenMP threads that spin while waiting slow LightGBM down many times over when other
    # processes share the cores; sleeping waits cost little when the machine is idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from experiments.promotion import promote
        from experiments.registry import registered_model_name
        from risk.settings import get_settings

        if not 0 < capacity <= 1:
            raise RiskError(f"--capacity {capacity}: expected a share in (0, 1]")
        if version is not None and run is not None:
            raise RiskError("give --version or --run, not both")
        settings = get_settings()
        settings.configure_mlflow()
        if model is None and profile is not None:
            model = registered_model_name(settings.registered_model, profile)
        name = model or _default_model(settings.registered_model)
        decision = promote(
            name,
            version=version,
            run_id=run,
            capacity=capacity,
            force=force,
            rollback=rollback,
            reason=reason,
        )
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    pct = f"P@{capacity * 100:g}%"
    if decision.candidate_precision is not None:
        typer.echo(
            f"{decision.period}: candidate version {decision.candidate} {pct} "
            f"{decision.candidate_precision:.4f}, champion version {decision.champion} "
            f"{pct} {decision.champion_precision:.4f}"
        )
    if decision.promoted:
        was = f"; was version {decision.champion}" if decision.champion else ""
        typer.echo(
            f"{decision.model_name} version {decision.candidate} is now champion "
            f"({decision.method}{was})"
        )
    elif decision.method == "unchanged":
        typer.echo(f"{decision.model_name} version {decision.candidate} is already champion")
    else:
        typer.echo(
            f"refused: version {decision.candidate} does not beat champion version "
            f"{decision.champion} at {pct}",
            err=True,
        )
        raise typer.Exit(1)
