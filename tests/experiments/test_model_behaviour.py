"""Model behaviour (Made-With-ML's tests/model): invariance, direction, slices, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from training_support import Trained

from experiments.evaluation import slices
from experiments.scorer import Scorer
from pipelines.generate import Traffic


def _risk(scorer: Scorer, declarations: pl.DataFrame) -> np.ndarray:
    return scorer.score(declarations)["risk"].to_numpy()


def test_plate_string_does_not_move_a_score(trained: Trained, traffic: Traffic) -> None:
    queue = traffic.queue_declarations
    renamed = queue.with_columns(pl.lit("A 000 AA").alias("vehicle_plate"))
    np.testing.assert_array_equal(_risk(trained.scorer, queue), _risk(trained.scorer, renamed))


def test_declaration_id_does_not_move_a_score(trained: Trained, traffic: Traffic) -> None:
    queue = traffic.queue_declarations
    renamed = queue.with_columns(
        (pl.lit("X-") + pl.col("declaration_id").str.reverse()).alias("declaration_id")
    )
    np.testing.assert_array_equal(_risk(trained.scorer, queue), _risk(trained.scorer, renamed))


def test_deeper_undervaluation_never_lowers_the_model_risk(trained: Trained) -> None:
    """Same rows, unit value pushed further below the HS x origin reference."""
    features = trained.training_set.rows("test")
    ratio = pl.col("unit_value_kg_log_ratio")
    deeper = features.with_columns(
        ratio - 1.0,
        pl.min_horizontal(pl.col("unit_value_kg_position") * 0.5, 1.0).alias(
            "unit_value_kg_position"
        ),
    )
    before = trained.scorer.predict_items(features)
    after = trained.scorer.predict_items(deeper)
    assert features["unit_value_kg_log_ratio"].null_count() < features.height
    assert np.all(after >= before - 1e-12)
    assert after.mean() > before.mean()


def test_declaring_a_lower_value_does_not_lower_risk_on_average(
    trained: Trained, traffic: Traffic
) -> None:
    """End to end, from declaration rows: the same queue declared at a fifth of its value."""
    queue = traffic.queue_declarations
    cheaper = queue.with_columns(pl.col("customs_value_usd", "invoice_value") / 5)
    before = _risk(trained.scorer, queue)
    after = _risk(trained.scorer, cheaper)
    assert after.mean() > before.mean()
    assert np.mean(after >= before - 1e-9) >= 0.8


def test_slices_cover_every_crossing_and_chapter_of_the_period(trained: Trained) -> None:
    scored = trained.fitted.scored
    table = slices(scored, "test", with_duty=True)
    test_rows = scored.filter(pl.col("split") == "test")
    for column in ("crossing", "hs_chapter"):
        part = table.filter(pl.col("slice") == column)
        assert set(part["value"].to_list()) == set(test_rows[column].cast(pl.String).to_list())
        assert part["items"].sum() == test_rows.height
        assert part["precision_at_5pct"].is_between(0, 1).all()


def test_calibrated_risk_matches_the_validation_rate(trained: Trained) -> None:
    valid = trained.fitted.scored.filter(pl.col("split") == "valid")
    # Isotonic regression preserves the mean of the labels it was fitted on.
    assert valid["risk"].mean() == pytest.approx(valid["label"].mean(), abs=1e-6)
    assert valid["risk"].is_between(0, 1).all()


def test_model_beats_the_base_rate_on_the_test_period(trained: Trained) -> None:
    metrics = trained.fitted.metrics
    assert metrics["test_precision_at_10pct"] > metrics["test_violation_rate"]
    assert metrics["test_roc_auc"] > 0.6


def test_scorer_survives_save_and_load(trained: Trained, traffic: Traffic, tmp_path: Path) -> None:
    folder = trained.scorer.save(tmp_path / "scorer")
    loaded = Scorer.load(folder, model_version="m/1")
    queue = traffic.queue_declarations
    expected = trained.scorer.score(queue)
    got = loaded.score(queue)
    np.testing.assert_array_equal(expected["risk"].to_numpy(), got["risk"].to_numpy())
    np.testing.assert_allclose(
        expected["expected_duty_usd"].to_numpy(), got["expected_duty_usd"].to_numpy()
    )
    assert got["model_version"].unique().to_list() == ["m/1"]
    assert loaded.run_id == "run-0" and loaded.feature_names == trained.scorer.feature_names
