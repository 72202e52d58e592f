"""Features and predictions of a scoring batch: the model's inputs built once, read once.

``compute_features`` builds the model's features over a whole batch from the entity profiles
(scoring-time edges: ``as_of_cutoff``, ``LatestReference``), ``predict_matrix`` turns them
into calibrated risk and expected duty at risk. ``Scorer`` says what scoring needs of a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
import pyarrow as pa

from risk.schemas import InspectionOutcome, empty

if TYPE_CHECKING:
    from features.config import FeatureConfig
    from features.profiles import EntityProfiles

KEYS = ["declaration_id", "item_no"]
TRUCK = ["truck_key", "crossing"]
ROW = "_row"


class Scorer(Protocol):
    """What batch scoring needs of a trained model (``experiments.registry.load_scorer``)."""

    model_version: str
    run_id: str
    feature_names: list[str]
    feature_config: FeatureConfig
    profiles: EntityProfiles | None

    def predict_risk(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of a violation per row of the feature matrix."""
        ...

    def expected_duty(self, features: pl.DataFrame, risk: np.ndarray) -> np.ndarray:
        """Expected duty at risk (USD) per row."""
        ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions per row and feature (log-odds), without the bias column."""
        ...


@dataclass(frozen=True)
class ItemScores:
    """Phase 1 of one batch: scored items, with the features kept for the reasons phase."""

    items: pl.DataFrame
    features: pl.DataFrame  # ROW (the item's row in ``items``), the model's features
    feature_rows: np.ndarray  # for each row of ``items``, its row in ``features``
    raw: pl.DataFrame  # the source columns of categorical features, to show their values
    model_version: str
    run_id: str
    # Each rule reason as ``items`` states it (``rule_reason``, in the language scored with)
    # -> the same reason in Russian and in English.
    rule_texts: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def feature_frame(self, rows: np.ndarray) -> pl.DataFrame:
        """The features of the given rows of ``items``, in that order."""
        return self.features[self.feature_rows[rows]]


def as_polars(batch: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """A Polars frame from an Arrow table or a Polars frame (no copy where possible)."""
    if isinstance(batch, pl.DataFrame):
        return batch
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame


def as_of_cutoff(declarations: pl.DataFrame, profiles: EntityProfiles) -> pl.DataFrame:
    """Declarations filed before the profile's cut-off, moved to the cut-off.

    Entity profiles answer for declarations from their cut-off on, which keeps training-time
    features free of look-ahead. Scoring is another matter: whatever is known now may be used.
    A queue holds papers lodged hours before the model's cut-off; they are scored with what
    was known at the cut-off (more, not less, than at their filing). Later rows are untouched.
    """
    cutoff = pl.lit(profiles.cutoff, dtype=pl.Datetime("us"))
    return declarations.with_columns(pl.col("declared_at").clip(lower_bound=cutoff))


@dataclass(frozen=True)
class LatestReference:
    """A profile's price reference, serving rows of later periods as of its own period.

    A profile keeps the price reference of its cut-off's period and refuses rows of later
    periods, whose history-mode reference would include months it never saw. At scoring time
    the latest reference there is is the right one, so rows of later periods are looked up as
    of the last instant of the profile's period; only the reference sees that date, the
    entity history keeps every row's own time.
    """

    reference: Any
    latest: datetime

    def transform(self, items: pl.LazyFrame) -> pl.LazyFrame:
        latest = pl.lit(self.latest, dtype=pl.Datetime("us"))
        return self.reference.transform(
            items.with_columns(pl.col("declared_at").clip(upper_bound=latest))
        )


def scoring_profiles(profiles: EntityProfiles) -> EntityProfiles:
    """The profile with its price reference wrapped in ``LatestReference``."""
    reference = profiles.reference
    start = getattr(reference, "valid_from_", None)
    if start is None or isinstance(reference, LatestReference):
        return profiles
    latest = pl.select(
        pl.lit(start, dtype=pl.Datetime("us"))
        .dt.offset_by(profiles.config.reference_period)
        .dt.offset_by("-1us")
    ).item()
    # Duck-typed: in profile mode the feature pipeline only calls ``reference.transform``.
    wrapped = LatestReference(reference, latest)
    return dataclasses.replace(profiles, reference=wrapped)  # type: ignore[arg-type]


def compute_features(
    declarations: pl.DataFrame,
    scorer: Scorer,
    *,
    profiles: EntityProfiles | None = None,
    arrivals: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The model's features of every item, with ``ROW``, the item's row in ``declarations``.

    The rows stay in the order the feature pipeline produced them (the batch's, when it keeps
    it): reordering a hundred-column frame costs more than the rest of scoring bar the model,
    so the scores are put back in order instead (a gather on one column). Entity history
    counts the batch's own earlier declarations too, so features are computed over a whole
    batch at once, never per partition of it. Items outside the time the entity profile
    serves are scored as of its edges (``as_of_cutoff``, ``scoring_profiles``).
    """
    from features.pipeline import build_features

    past = profiles if profiles is not None else scorer.profiles
    if past is not None:
        declarations_then = as_of_cutoff(declarations, past)
        past = scoring_profiles(past)
    else:
        declarations_then = declarations
    frame = build_features(
        declarations_then.lazy(),
        empty(InspectionOutcome).lazy(),
        profiles=past,
        config=scorer.feature_config,
        arrivals=arrivals.lazy() if arrivals is not None else None,
    ).collect()
    if frame.height != declarations.height:
        raise ValueError(
            f"features for {frame.height} items, batch has {declarations.height}: "
            "duplicate (declaration_id, item_no) keys?"
        )
    if frame.select(KEYS).equals(declarations.select(KEYS)):
        row = pl.int_range(frame.height, dtype=pl.UInt32, eager=True).alias(ROW)
    else:
        order = declarations.select(KEYS).with_row_index(ROW)
        joined = frame.select(KEYS).join(order, on=KEYS, how="left", maintain_order="left")
        row = joined.get_column(ROW)
        if row.null_count():
            raise ValueError("features for items that are not in the batch")
    return frame.select(scorer.feature_names).with_columns(row)


def take_features(features: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The features of the given batch rows, in that order, renumbered 0..len(rows)-1."""
    position = inverse_rows(features.get_column(ROW).to_numpy(), features.height)
    return features[position[rows]].with_columns(
        pl.Series(ROW, np.arange(len(rows)), dtype=pl.UInt32)
    )


def inverse_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` positions, where it sits in ``rows`` (a permutation of 0..n-1)."""
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.arange(len(rows))
    return inverse


def feature_matrix(features: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Float32 matrix of the named columns, nulls as NaN (what LightGBM reads as missing)."""
    return features.select(pl.col(list(names)).cast(pl.Float32)).to_numpy()


def dense_matrix(
    scorer: Scorer, features: pl.DataFrame, *, row_major: bool = True
) -> np.ndarray | None:
    """The float32 matrix the project's boosters read, built in one pass, row-major (or
    column-major, which the compiled boosters read as well and costs a fifth to build);
    None for a scorer without dense category indices.

    ``experiments.scorer.Scorer`` replaces each categorical code by its position among the
    codes seen in training (unknown: missing). Doing that in Polars before the one conversion
    to NumPy, in the row-major order LightGBM reads, spares a copy and a remap of the whole
    matrix and LightGBM's own reordering copy.
    """
    categories = getattr(scorer, "categories", None)
    codes = getattr(categories, "codes", None)
    if codes is None:
        return None
    columns = []
    for name in scorer.feature_names:
        column = pl.col(name).cast(pl.Float64)
        if name in codes:
            known = [float(c) for c in codes[name]]
            column = column.replace_strict(
                known, list(range(len(known))), default=None, return_dtype=pl.Float64
            )
        columns.append(column.cast(pl.Float32).alias(name))
    return features.select(columns).to_numpy(order="c" if row_major else "fortran")


def predict_features(scorer: Scorer, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated risk and expected duty at risk per row of ``features``.

    For the project's scorer the classifier and the duty regressor read one dense float32
    matrix (``dense_matrix``), through their compiled twins where the policy allows
    (``experiments.compiled``: large batches, or a model already compiled); this mirrors
    ``Scorer.predict_risk`` and ``Scorer.expected_duty`` exactly (a test holds them equal).
    Any other scorer is asked through the protocol.
    """
    booster = getattr(scorer, "booster", None)
    calibrator = getattr(scorer, "calibrator", None)
    fast_booster = getattr(scorer, "fast_booster", None)
    duty_booster = getattr(scorer, "duty_booster", None)
    rows = features.height
    dense = None
    if booster is not None and calibrator is not None and fast_booster is not None and rows:
        boosters = [fast_booster(b) for b in (booster, duty_booster) if b is not None]
        compiled = all(b.compiled_for(rows) is not None for b in boosters)
        dense = dense_matrix(scorer, features, row_major=not compiled)
    if dense is None or calibrator is None or fast_booster is None:
        risk = np.asarray(
            scorer.predict_risk(feature_matrix(features, scorer.feature_names)), dtype=np.float64
        )
        return risk, np.asarray(scorer.expected_duty(features, risk), dtype=np.float64)
    threads = getattr(scorer, "num_threads", 0)
    both = [fast_booster(b).compiled for b in (booster, duty_booster) if b is not None]
    if duty_booster is not None and all(c is not None for c in both):
        from experiments.compiled import predict_together

        # One pass over the matrix for both compiled boosters.
        raw, duty_raw = predict_together([c for c in both if c is not None], dense, threads)
        risk = np.asarray(calibrator.predict(raw))
        duty_if_wrong = np.clip(duty_raw, 0.0, None)
        return risk, risk * duty_if_wrong
    risk = np.asarray(calibrator.predict(fast_booster(booster).predict(dense, threads)))
    if duty_booster is not None:
        duty_if_wrong = np.clip(fast_booster(duty_booster).predict(dense, threads), 0.0, None)
    else:
        duty_if_wrong = np.asarray(scorer.expected_duty(features, np.ones(len(risk))))
    return risk, risk * np.asarray(duty_if_wrong, dtype=np.float64)
