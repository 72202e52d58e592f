"""Labels, periods, weights and fingerprints of the training set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from experiments.config import SplitConfig, TrainJob
from experiments.dataset import assign_split, frame_hash, item_labels, resolve_periods
from experiments.train import prepare
from experiments.weights import inspection_propensity, inverse_propensity_weights
from pipelines.generate import Traffic
from risk.errors import RiskError
from risk.schemas import InspectionOutcome
from risk.settings import Settings

KEYS = ["declaration_id", "item_no"]


def _declaration_with_items(traffic: Traffic, items: int) -> pl.DataFrame:
    counts = traffic.declarations.group_by("declaration_id").len()
    chosen = counts.filter(pl.col("len") == items).sort("declaration_id")["declaration_id"][0]
    return traffic.declarations.filter(pl.col("declaration_id") == chosen).sort("item_no")


def _outcome(rows: pl.DataFrame, **values: object) -> pl.DataFrame:
    """Outcome rows shaped like the generator's, with the named columns replaced."""
    template = rows.select(
        "declaration_id",
        "item_no",
        "truck_id",
        "crossing",
        pl.lit("red").alias("lane"),
        pl.lit(True).alias("inspected"),
        pl.lit("targeted").alias("selection"),
        pl.lit("clean").alias("result"),
        pl.lit(None, dtype=pl.Float64).alias("extra_duty_usd"),
        pl.lit("OFF-1").alias("officer_id"),
        (pl.col("declared_at") + pl.duration(hours=5)).alias("recorded_at"),
    ).with_columns(**{name: pl.lit(value) for name, value in values.items()})
    return InspectionOutcome.cast(template)


def test_declaration_level_result_labels_every_item_and_shares_the_duty(traffic: Traffic) -> None:
    items = _declaration_with_items(traffic, 3)
    whole = _outcome(items.head(1), item_no=None, result="undervaluation", extra_duty_usd=300.0)
    labels = item_labels(items, whole)
    assert labels["label"].to_list() == [1, 1, 1]
    shares = items["customs_value_usd"] / items["customs_value_usd"].sum()
    assert labels["duty_usd"].to_list() == pytest.approx((shares * 300.0).to_list())


def test_item_results_and_uninspected_items(traffic: Traffic) -> None:
    items = _declaration_with_items(traffic, 3)
    outcomes = pl.concat(
        [
            _outcome(items[0:1], result="clean", selection="random"),
            _outcome(items[1:2], result="misclassification", extra_duty_usd=50.0),
            _outcome(items[2:3], inspected=False, selection="none", result=None, lane="green"),
        ]
    )
    labels = item_labels(items, outcomes).sort("item_no")
    assert labels["label"].to_list() == [0, 1, None]
    assert labels["inspected"].to_list() == [True, True, False]
    assert labels["selection"].to_list() == ["random", "targeted", "none"]
    assert labels["duty_usd"].to_list() == [0.0, 50.0, 0.0]


def test_items_without_any_outcome_are_unlabelled(traffic: Traffic) -> None:
    items = _declaration_with_items(traffic, 2)
    labels = item_labels(items, InspectionOutcome.create_empty())
    assert labels.height == 2 and labels["label"].null_count() == 2
    assert not labels["inspected"].any()


def test_periods_from_fractions_round_to_midnight() -> None:
    start = dt.datetime(2026, 1, 1, 6)
    declared = pl.Series([start + dt.timedelta(days=d) for d in range(101)])
    periods = resolve_periods(declared, SplitConfig(valid_fraction=0.2, test_fraction=0.1))
    assert periods.test_from == dt.datetime(2026, 4, 1)  # 100 days x 0.9 after 6 am, Jan 1
    assert periods.valid_from == dt.datetime(2026, 3, 12)
    assert periods.eval_split == "test"
    no_test = resolve_periods(declared, SplitConfig(test_fraction=0.0, valid_fraction=0.5))
    assert no_test.test_from is None and no_test.eval_split == "valid"


def test_split_by_time_and_empty_period_refused() -> None:
    start = dt.datetime(2026, 1, 1)
    frame = pl.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(10)],
            "item_no": [1] * 10,
            "declared_at": [start + dt.timedelta(days=i) for i in range(10)],
            "label": [1, 0] * 5,
        },
        schema_overrides={"item_no": pl.Int32},
    )
    periods = resolve_periods(
        frame["declared_at"],
        SplitConfig(valid_from=dt.datetime(2026, 1, 6), test_from=dt.datetime(2026, 1, 9)),
    )
    split = assign_split(frame, periods)["split"].to_list()
    assert split == ["train"] * 5 + ["valid"] * 3 + ["test"] * 2
    late = resolve_periods(
        frame["declared_at"],
        SplitConfig(valid_from=dt.datetime(2026, 2, 1), test_fraction=0.0),
    )
    with pytest.raises(RiskError, match="valid period holds no labelled items"):
        assign_split(frame, late)


def test_split_by_file_puts_the_second_file_in_validation() -> None:
    frame = pl.DataFrame(
        {"declaration_id": ["A", "B", "C"], "item_no": [1, 1, 1], "label": [1, 0, 1]},
        schema_overrides={"item_no": pl.Int32},
    ).with_columns(declared_at=pl.lit(dt.datetime(2026, 1, 1)))
    periods = resolve_periods(frame["declared_at"], SplitConfig(), by_file=True)
    second = frame.filter(pl.col("declaration_id") != "A").select(KEYS)
    assert assign_split(frame, periods, second)["split"].to_list() == ["train", "valid", "valid"]
    assert periods.eval_split == "valid"


def test_inverse_propensity_weights_by_hand() -> None:
    # Stratum a: 1 of 4 inspected; stratum b: 3 of 4. Overall 4 of 8 = 0.5.
    items = pl.DataFrame(
        {
            "crossing": ["a"] * 4 + ["b"] * 4,
            "inspected": [True, False, False, False, True, True, True, False],
        }
    )
    propensity = inspection_propensity(items, ["crossing"], prior_strength=4.0)
    # (1 + 4 x 0.5) / (4 + 4) = 0.375 and (3 + 2) / 8 = 0.625.
    assert propensity.to_list() == pytest.approx([0.375] * 4 + [0.625] * 4)
    weights = inverse_propensity_weights(items, ["crossing"], prior_strength=4.0)
    raw_a, raw_b = 1 / 0.375, 1 / 0.625
    mean = (raw_a + 3 * raw_b) / 4  # over the inspected rows
    assert weights[0] == pytest.approx(raw_a / mean)
    assert weights[4] == pytest.approx(raw_b / mean)
    # The rarely inspected stratum's labels count more.
    assert weights[0] > weights[4]


def test_everyone_inspected_gives_unit_weights() -> None:
    items = pl.DataFrame({"crossing": ["a", "a", "b"], "inspected": [True, True, True]})
    assert inverse_propensity_weights(items, ["crossing"]).to_list() == pytest.approx([1.0] * 3)


def test_content_hash_ignores_row_order_and_sees_a_change(traffic: Traffic) -> None:
    frame = traffic.declarations.head(500)
    assert frame_hash(frame) == frame_hash(frame.reverse())
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.col("customs_value_usd") + 1)
        .otherwise(pl.col("customs_value_usd"))
    )
    assert frame_hash(changed) != frame_hash(frame)


def test_ipw_training_set_weights_rarely_inspected_strata_up(traffic_dir: Path) -> None:
    job = TrainJob(data_dir=traffic_dir / "history", ipw=True, ipw_strata=("hs_chapter",))
    ts = prepare(job, Settings.model_validate({"data_dir": traffic_dir / "unused"}))
    weights = ts.labelled.select("hs_chapter", "weight")
    assert (weights["weight"] > 0).all() and weights["weight"].n_unique() > 1
    declarations = pl.read_parquet(traffic_dir / "history" / "declarations.parquet")
    outcomes = pl.read_parquet(traffic_dir / "history" / "outcomes.parquet")
    rates = (
        declarations.select(
            "declaration_id", "item_no", pl.col("hs_code").str.slice(0, 2).alias("hs_chapter")
        )
        .join(outcomes.select("declaration_id", "item_no", "inspected"), on=KEYS)
        .group_by("hs_chapter")
        .agg(pl.col("inspected").mean().alias("rate"), pl.len().alias("n"))
        .filter(pl.col("n") >= 200)
        .sort("rate")
    )
    rare, common = rates["hs_chapter"][0], rates["hs_chapter"][-1]
    mean_weight = dict(weights.group_by("hs_chapter").agg(pl.col("weight").mean()).iter_rows())
    assert mean_weight[rare] > mean_weight[common]
