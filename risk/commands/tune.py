"""`risk tune`: random hyperparameter search, each trial a nested MLflow run, the best kept.

Takes the same inputs and job options as `risk train`; the parent run holds the best trial's
model (registered like `risk train`'s), the nested runs every trial's params and metrics.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from risk.commands.train import (
    CalibrationOpt,
    CapacityOpt,
    DataDirOpt,
    DutyModelOpt,
    EvasionOpt,
    ExcludeOpt,
    ExtraOpt,
    IpwOpt,
    ModelNameOpt,
    ParamOpt,
    ProfileOpt,
    RegisterOpt,
    RoundsOpt,
    RunNameOpt,
    SourcesArg,
    TestFractionOpt,
    TestFromOpt,
    ThreadsOpt,
    ValidFractionOpt,
    ValidFromOpt,
    build_job,
    build_params,
    print_summary,
)
from risk.errors import RiskError


def command(
    sources: SourcesArg = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials to run (trial 0 = base params).")] = 20,
    objective: Annotated[
        str,
        typer.Option(
            help="Validation metric to maximise, e.g. valid_pr_auc, valid_precision_at_5pct."
        ),
    ] = "valid_pr_auc",
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 7,
    profile: ProfileOpt = "canonical",
    data_dir: DataDirOpt = None,
    valid_from: ValidFromOpt = None,
    test_from: TestFromOpt = None,
    valid_fraction: ValidFractionOpt = 0.15,
    test_fraction: TestFractionOpt = 0.15,
    ipw: IpwOpt = False,
    calibration: CalibrationOpt = "isotonic",
    duty_model: DutyModelOpt = "auto",
    evasion_share: EvasionOpt = 0.3,
    capacity: CapacityOpt = 0.05,
    extra_categoricals: ExtraOpt = "auto",
    exclude_features: ExcludeOpt = None,
    rounds: RoundsOpt = None,
    threads: ThreadsOpt = 2,
    param: ParamOpt = None,
    model_name: ModelNameOpt = None,
    run_name: RunNameOpt = None,
    register: RegisterOpt = True,
) -> None:
    """Search LightGBM hyperparameters; log every trial and register the best model."""
    # OpenMP threads that spin while waiting slow LightGBM down many times over when other
    # processes share the cores; sleeping waits cost little when the machine is idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        job = build_job(
            sources=sources,
            profile=profile,
            data_dir=data_dir,
            valid_from=valid_from,
            test_from=test_from,
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
            ipw=ipw,
            calibration=calibration,
            duty_model=duty_model,
            evasion_share=evasion_share,
            capacity=capacity,
            extra_categoricals=extra_categoricals,
            exclude_features=exclude_features,
            model_name=model_name,
            run_name=run_name,
            register=register,
        )
        base = build_params(
            param or [], profile, num_boost_round=rounds, num_threads=threads, seed=seed
        )
        from experiments.config import LightGBMParams
        from experiments.tune import tune
        from risk.settings import get_settings

        def report(trial: int, score: float, params: LightGBMParams) -> None:
            typer.echo(
                f"trial {trial}: {objective} {score:.4f} (learning_rate "
                f"{params.learning_rate:.3g}, num_leaves {params.num_leaves}, "
                f"min_data_in_leaf {params.min_data_in_leaf})"
            )

        settings = get_settings()
        result = tune(
            job,
            base,
            trials=trials,
            objective=objective,
            seed=seed,
            settings=settings,
            on_trial=report,
        )
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"best trial {result.best_trial} of {trials} by {objective}")
    print_summary(result.best, str(settings.mlflow_tracking_uri))
