"""Reference tests of the capacity metrics on arrays small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from experiments.calibration import Calibrator, calibration_table
from experiments.metrics import (
    brier,
    capacity_metrics,
    pr_auc,
    precision_at,
    precision_curve,
    recall_at,
    revenue_at,
    roc_auc,
    slice_metrics,
    top_count,
)

# Ten items ranked by score: 0.9 0.8 0.7 ... 0.0; violations at ranks 1, 2, 4 and 7.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
LABELS = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
DUTY = np.array([100.0, 50.0, 0.0, 850.0, 0.0, 0.0, 1000.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("n", "share", "expected"),
    [(10, 0.1, 1), (10, 0.05, 1), (10, 0.25, 3), (100, 0.05, 5), (1000, 0.01, 10), (0, 0.1, 0)],
)
def test_top_count_rounds_up_and_takes_at_least_one(n: int, share: float, expected: int) -> None:
    assert top_count(n, share) == expected


@pytest.mark.parametrize(
    ("share", "precision", "recall"),
    [(0.1, 1.0, 0.25), (0.2, 1.0, 0.5), (0.3, 2 / 3, 0.5), (0.4, 0.75, 0.75), (1.0, 0.4, 1.0)],
)
def test_precision_and_recall_at_capacity(share: float, precision: float, recall: float) -> None:
    assert precision_at(LABELS, SCORES, share) == pytest.approx(precision)
    assert recall_at(LABELS, SCORES, share) == pytest.approx(recall)


def test_ranking_ignores_input_order() -> None:
    order = np.random.default_rng(3).permutation(len(SCORES))
    assert precision_at(LABELS[order], SCORES[order], 0.4) == pytest.approx(0.75)


def test_ties_are_broken_by_input_order() -> None:
    # All scores equal: the top 2 are the first two rows as given.
    assert precision_at([0, 1, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.5) == pytest.approx(0.5)


def test_ranking_scores_break_ties_of_calibrated_probabilities() -> None:
    # A step-wise calibration maps the raw scores .9 and .1 to the same probability.
    labels, probability, raw = [0, 1, 0, 0], [0.5, 0.5, 0.1, 0.1], [0.1, 0.9, 0.2, 0.05]
    assert capacity_metrics(labels, probability, shares=(0.25,))["precision_at_25pct"] == 0.0
    figures = capacity_metrics(labels, probability, shares=(0.25,), ranking=raw)
    assert figures["precision_at_25pct"] == 1.0
    assert figures["brier"] == pytest.approx(brier(labels, probability))


def test_revenue_is_duty_found_over_all_duty() -> None:
    # Top 40%: ranks 1-4 hold 100 + 50 + 0 + 850 of 2000.
    assert revenue_at(DUTY, SCORES, 0.4) == pytest.approx(0.5)
    assert revenue_at(DUTY, SCORES, 0.7) == pytest.approx(1.0)
    assert math.isnan(revenue_at(np.zeros(10), SCORES, 0.5))


def test_auc_brier_against_hand_figures() -> None:
    # Positives at ranks 1, 2, 4, 7: average precision = (1 + 1 + 3/4 + 4/7) / 4.
    assert pr_auc(LABELS, SCORES) == pytest.approx((1 + 1 + 0.75 + 4 / 7) / 4)
    # Pairs (positive above negative): rank 1: 6, rank 2: 6, rank 4: 5, rank 7: 3 of 24.
    assert roc_auc(LABELS, SCORES) == pytest.approx(20 / 24)
    assert brier([1, 0], [0.75, 0.25]) == pytest.approx(0.0625)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_capacity_metrics_names_and_values() -> None:
    figures = capacity_metrics(LABELS, SCORES, duty=DUTY, shares=(0.1, 0.4))
    assert figures["precision_at_10pct"] == pytest.approx(1.0)
    assert figures["recall_at_40pct"] == pytest.approx(0.75)
    assert figures["revenue_at_40pct"] == pytest.approx(0.5)
    assert figures["items"] == 10 and figures["violations"] == 4
    assert "revenue_at_10pct" not in capacity_metrics(LABELS, SCORES, shares=(0.1,))


def test_precision_curve_is_precision_at_each_share() -> None:
    curve = precision_curve(LABELS, SCORES, [0.1, 0.3, 1.0])
    np.testing.assert_allclose(curve, [1.0, 2 / 3, 0.4])


def test_slices_rank_each_slice_on_its_own() -> None:
    frame = pl.DataFrame(
        {
            "crossing": ["A"] * 4 + ["B"] * 6,
            "label": LABELS,
            "risk": SCORES,
            "duty_usd": DUTY,
        }
    )
    table = slice_metrics(frame, "crossing", duty="duty_usd", shares=(0.5,))
    rows = {row["value"]: row for row in table.iter_rows(named=True)}
    assert set(rows) == {"A", "B"}
    # A: scores .9 .8 .7 .6, labels 1 1 0 1 -> top 2 both violations.
    assert rows["A"]["precision_at_50pct"] == pytest.approx(1.0)
    # B: scores .5 .. .0, labels 0 0 1 0 0 0 -> top 3 hold one violation.
    assert rows["B"]["precision_at_50pct"] == pytest.approx(1 / 3)
    assert rows["B"]["items"] == 6 and table["slice"].unique().to_list() == ["crossing"]


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_matches_observed_rates(method: str) -> None:
    rng = np.random.default_rng(5)
    raw = rng.uniform(0, 1, 20_000)
    truth = raw**2  # the raw score overstates the probability
    y = (rng.uniform(0, 1, raw.size) < truth).astype(float)
    calibrator = Calibrator(method).fit(raw, y)  # type: ignore[arg-type]
    probability = calibrator.predict(raw)
    mean_p, rate, _ = calibration_table(y, probability, bins=5)
    tolerance = 0.03 if method == "isotonic" else 0.08
    np.testing.assert_allclose(mean_p, rate, atol=tolerance)
    # Ranking is kept (up to ties inside an isotonic step).
    assert np.all(np.diff(probability[np.argsort(raw)]) >= -1e-12)
    restored = Calibrator.from_dict(calibrator.to_dict())
    np.testing.assert_allclose(restored.predict(raw[:100]), probability[:100])
