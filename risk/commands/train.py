"""`risk train`: retrain from history and recorded inspection results as an MLflow run.

Inputs: the canonical files of ``--data-dir`` (default: the generated history under
``<data dir>/traffic/history``), or source files read through ``--profile`` (for example
``risk train --profile kcs TRAIN.csv VALID.csv``: the first file trains, the second validates;
one file is split by time).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from risk.errors import RiskError

if TYPE_CHECKING:
    from experiments.config import LightGBMParams, TrainJob
    from experiments.train import TrainResult

SourcesArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Source files read through --profile: TRAIN [VALID]. With two files the first "
        "trains and the second validates; with one, periods are split by time.",
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str, typer.Option(help="Source profile of the files ('canonical' = the project's files).")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder with canonical declarations.parquet, outcomes.parquet and optionally "
        "arrivals.parquet (default: <data dir>/traffic/history)."
    ),
]
ValidFromOpt = Annotated[
    str | None, typer.Option(help="First day of validation, YYYY-MM-DD (default: by fraction).")
]
TestFromOpt = Annotated[
    str | None,
    typer.Option(help="First day of the test period, YYYY-MM-DD (default: by fraction)."),
]
ValidFractionOpt = Annotated[
    float, typer.Option(help="Validation share of the labelled time span (without dates).")
]
TestFractionOpt = Annotated[
    float, typer.Option(help="Test share of the labelled time span; 0 = no test period.")
]
IpwOpt = Annotated[
    bool,
    typer.Option(
        help="Weight inspected rows by 1/P(inspected) per crossing x HS chapter x origin, "
        "correcting for rule-picked labels."
    ),
]
CalibrationOpt = Annotated[str, typer.Option(help="Calibration: isotonic, platt or none.")]
DutyModelOpt = Annotated[
    str,
    typer.Option(
        help="Duty at risk: regressor (LightGBM on extra duty), stake (value x rate x "
        "--evasion-share) or auto (regressor when enough duty labels)."
    ),
]
EvasionOpt = Annotated[
    float, typer.Option(help="Share of the duty at stake evaded, for the 'stake' duty rule.")
]
CapacityOpt = Annotated[
    float, typer.Option(help="Inspection capacity share used for promotion figures.")
]
ExtraOpt = Annotated[
    str,
    typer.Option(
        help="Source columns as extra categorical features: 'auto' (every low-cardinality "
        "src_* column), 'none', or a comma-separated list."
    ),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-features",
        help="Shell pattern of features to leave out (repeatable), e.g. '*_declarations'. "
        "Default: the source profile's preset (experiments/presets/PROFILE.toml), else none.",
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="LightGBM hyperparameter NAME=VALUE (repeatable), e.g. --param num_leaves=63.",
    ),
]
RoundsOpt = Annotated[
    int | None,
    typer.Option(help="Most boosting rounds; early stopping cuts (default: preset, else 2000)."),
]
ThreadsOpt = Annotated[int, typer.Option(help="LightGBM threads (0 = all cores).")]
ModelNameOpt = Annotated[
    str | None,
    typer.Option(help="Registered model name (default: settings name, -PROFILE suffixed)."),
]
RunNameOpt = Annotated[str | None, typer.Option(help="MLflow run name.")]
RegisterOpt = Annotated[bool, typer.Option(help="Register the model in the MLflow registry.")]


def _date(option: str, text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise RiskError(f"{option} {text!r}: expected a date as YYYY-MM-DD") from None


def build_job(
    *,
    sources: list[Path] | None,
    profile: str,
    data_dir: Path | None,
    valid_from: str | None,
    test_from: str | None,
    valid_fraction: float,
    test_fraction: float,
    ipw: bool,
    calibration: str,
    duty_model: str,
    evasion_share: float,
    capacity: float,
    extra_categoricals: str,
    exclude_features: list[str] | None,
    model_name: str | None,
    run_name: str | None,
    register: bool,
) -> TrainJob:
    """The typed job from command-line options (shared by `risk train` and `risk tune`)."""
    from pydantic import ValidationError

    from experiments.config import SplitConfig, TrainJob
    from experiments.presets import load_preset
    from features.config import FeatureConfig

    files = tuple(sources or ())
    if files and profile == "canonical":
        raise RiskError("source files need --profile (e.g. --profile kcs); or use --data-dir")
    named = extra_categoricals.strip()
    extras = () if named in ("auto", "none", "") else tuple(n.strip() for n in named.split(","))
    excluded = load_preset(profile)["job"].get("exclude_features", ())
    if exclude_features is not None:
        excluded = exclude_features
    try:
        return TrainJob(
            exclude_features=tuple(excluded),
            profile=profile,
            sources=files,
            data_dir=data_dir,
            split=SplitConfig(
                valid_from=_date("--valid-from", valid_from),
                test_from=_date("--test-from", test_from),
                valid_fraction=valid_fraction,
                test_fraction=test_fraction,
            ),
            ipw=ipw,
            calibration=calibration,  # type: ignore[arg-type]
            duty_model=duty_model,  # type: ignore[arg-type]
            evasion_share=evasion_share,
            capacity=capacity,
            features=FeatureConfig(extra_categoricals=extras),
            auto_extra_categoricals=named == "auto",
            model_name=model_name,
            run_name=run_name,
            register_model=register,
        )
    except ValidationError as exc:
        raise RiskError(_first_error(exc)) from None


def build_params(pairs: list[str], profile: str, **given: Any) -> LightGBMParams:
    """LightGBM hyperparameters: the profile's preset, then options given (None = not
    given), then NAME=VALUE pairs."""
    from pydantic import ValidationError

    from experiments.config import LightGBMParams
    from experiments.presets import load_preset

    values: dict[str, Any] = load_preset(profile)["params"]
    values.update({name: value for name, value in given.items() if value is not None})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name.strip() not in LightGBMParams.model_fields:
            known = ", ".join(LightGBMParams.model_fields)
            raise RiskError(f"--param {pair!r}: expected NAME=VALUE with NAME one of {known}")
        values[name.strip()] = value.strip()
    try:
        return LightGBMParams(**values)
    except ValidationError as exc:
        raise RiskError(_first_error(exc)) from None


def _first_error(exc: Any) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def print_summary(result: TrainResult, tracking_uri: str) -> None:
    """The run, the model and the headline figures of the evaluated period."""
    split = result.eval_split
    typer.echo(f"run {result.run_id} (experiment {result.experiment_id}) at {tracking_uri}")
    if result.model_version:
        typer.echo(f"registered {result.model_name} version {result.model_version}")
    note = "" if split == "test" else " (also used for early stopping and calibration)"
    typer.echo(f"metrics on the {split} period{note}:")
    for subset in (split, f"{split}_random"):
        items = result.metrics.get(f"{subset}_items")
        if items is None:
            continue
        figures = [
            f"{label} {result.metrics[f'{subset}_{key}']:.3f}"
            for label, key in (
                ("P@1%", "precision_at_1pct"),
                ("P@5%", "precision_at_5pct"),
                ("P@10%", "precision_at_10pct"),
                ("R@5%", "recall_at_5pct"),
                ("revenue@5%", "revenue_at_5pct"),
                ("revenue@5% by duty", "duty_ranked_revenue_at_5pct"),
                ("PR-AUC", "pr_auc"),
                ("ROC-AUC", "roc_auc"),
                ("Brier", "brier"),
            )
            if f"{subset}_{key}" in result.metrics
        ]
        what = "random picks" if subset.endswith("_random") else "all inspected"
        typer.echo(f"  {what} ({int(items)} items): " + ", ".join(figures))
    typer.echo(f"next: risk promote --model {result.model_name}")


def command(
    sources: SourcesArg = None,
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
    """Train LightGBM on past inspections (time split, calibration), log and register it."""
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
        params = build_params(param or [], profile, num_boost_round=rounds, num_threads=threads)
        from experiments.train import train
        from risk.settings import get_settings

        settings = get_settings()
        result = train(job, params, settings=settings)
    except RiskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    print_summary(result, str(settings.mlflow_tracking_uri))
