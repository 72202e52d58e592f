"""Features and predictions of a scoring batch: the model's inputs built once, read once.

``compute_features`` builds the model's features over a whole batch from the entity profiles
(scoring-time edges: ``as_of_cutoff``, ``LatestReference``), ``predict_features`` turns them
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
    from experiments.compiled import Column
    from features.config import FeatureConfig
    from features.profiles import EntityProfiles

KEYS = ["declaration_id", "item_no"]
TRUCK = ["truck_key", "crossing"]
ROW = "_row"
# Columns of ``DeclarationItem`` the feature pipeline never reads (unless the feature config
# names one as an extra categorical).
UNREAD_BY_FEATURES = (
    "goods_description",
    "vehicle_plate",
    "soft_flags",
    "quantity_unit",
    "currency",
)


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
    # Free text and other columns no feature reads stay behind, and the columns read are put
    # in one piece each, once, here: Polars' in-memory engine would copy every column of a
    # batch read in pieces (goods descriptions are a third of a batch) on one thread, and the
    # kernels need them whole.
    unread = [
        c
        for c in UNREAD_BY_FEATURES
        if c in declarations.columns and c not in scorer.feature_config.extra_categoricals
    ]
    declarations_then = declarations.drop(unread).rechunk()
    if past is not None:
        declarations_then = as_of_cutoff(declarations_then, past)
        past = scoring_profiles(past)
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


def dense_matrix(scorer: Scorer, features: pl.DataFrame) -> np.ndarray | None:
    """The row-major float32 matrix the project's boosters read, built in one pass, for
    LightGBM (the compiled boosters read the frame's columns: ``feature_columns``); None for
    a scorer without dense category indices.

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
    return features.select(columns).to_numpy(order="c")


def _values(series: pl.Series) -> np.ndarray:
    """The series' values as NumPy, without a copy where Arrow has them in one buffer; rows
    with a null hold whatever the buffer holds there (the caller masks them)."""
    if series.null_count() == 0:
        return series.to_numpy()
    array = series.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    dtype = np.dtype(array.type.to_pandas_dtype())
    buffer = np.frombuffer(array.buffers()[1], dtype=dtype)
    return buffer[array.offset : array.offset + len(array)]


# Dense category indices through a lookup table when the codes are small non-negative integers
# (country numbers, HS chapters, CRC buckets below this): one gather instead of a search.
_LOOKUP_MAX_CODE = 1 << 24


def _code_lookup(values: np.ndarray, known: np.ndarray) -> np.ndarray | None:
    """The table ``experiments.compiled.Column.lookup`` for codes ``known`` (sorted): each
    code's position, NaN for codes never seen; None where the codes are not small
    non-negative integers held as integers (then ``_dense_codes`` searches them)."""
    integral = len(known) > 0 and bool(np.all(known == np.round(known)))
    if not (integral and known[0] >= 0 and known[-1] < _LOOKUP_MAX_CODE):
        return None
    if values.dtype.kind != "i":  # (unsigned codes cannot be clipped onto -1)
        return None
    # Two NaN at the end: codes past the table are clipped onto the first, -1 reads the last.
    lookup = np.full(int(known[-1]) + 3, np.nan, dtype=np.float32)
    lookup[known.astype(np.int64)] = np.arange(len(known), dtype=np.float32)
    return lookup


def _dense_codes(values: np.ndarray, missing: np.ndarray | None, known: np.ndarray) -> np.ndarray:
    """Each code's position among ``known`` (sorted), NaN where unknown or missing: what
    ``experiments.categories.CategoryIndex.transform`` makes of the float32 matrix."""
    lookup = _code_lookup(values, known)
    if lookup is not None:
        dense = lookup[np.clip(values, -1, len(lookup) - 2)]
    else:
        from experiments.categories import dense_indices

        dense = dense_indices(values.astype(np.float32).astype(np.float64), known)
    if missing is not None:
        dense[missing] = np.nan
    return dense


def feature_columns(scorer: Scorer, features: pl.DataFrame) -> list[Column] | None:
    """The columns of the matrix ``dense_matrix`` would build, as the compiled boosters read
    them (``experiments.compiled.predict_columns``): numbers as they are (no copy where
    Polars holds them in one buffer), categorical codes as dense indices; None where a
    feature is not a plain number or the scorer has no dense category indices."""
    from experiments.compiled import Column

    codes = getattr(getattr(scorer, "categories", None), "codes", None)
    if codes is None:
        return None
    columns = []
    for name in scorer.feature_names:
        series = features.get_column(name)
        if series.dtype == pl.Boolean:
            series = series.cast(pl.Int8)
        if not series.dtype.is_numeric() or series.dtype == pl.Decimal:
            return None
        values = _values(series)
        missing = series.is_null().to_numpy() if series.null_count() else None
        if name in codes:
            known = np.asarray(codes[name], dtype=np.float64)
            lookup = _code_lookup(values, known)
            if lookup is not None:  # read through the table on the predicting threads
                columns.append(Column(values, missing, lookup))
            else:
                columns.append(Column(_dense_codes(values, missing, known)))
        else:
            columns.append(Column(values, missing))
    return columns


def predict_features(scorer: Scorer, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated risk and expected duty at risk per row of ``features``.

    For the project's scorer the classifier and the duty regressor read the features as
    one float32 matrix: through their compiled twins where the policy allows
    (``experiments.compiled``: large batches, or a model already compiled), straight from
    the frame's columns (``feature_columns``, ``predict_columns``: the matrix is never
    built), otherwise from ``dense_matrix``; this mirrors ``Scorer.predict_risk`` and
    ``Scorer.expected_duty`` exactly (a test holds them equal). Any other scorer is asked
    through the protocol.
    """
    booster = getattr(scorer, "booster", None)
    calibrator = getattr(scorer, "calibrator", None)
    fast_booster = getattr(scorer, "fast_booster", None)
    duty_booster = getattr(scorer, "duty_booster", None)
    rows = features.height
    if booster is None or calibrator is None or fast_booster is None or not rows:
        return _predict_by_protocol(scorer, features)
    threads = getattr(scorer, "num_threads", 0)
    boosters = [b for b in (booster, duty_booster) if b is not None]
    compiled = [fast_booster(b).compiled_for(rows) for b in boosters]
    columns = feature_columns(scorer, features) if None not in compiled else None
    if columns is not None:
        from experiments.compiled import predict_columns

        # One pass over the columns for both compiled boosters, calibrated as they come.
        risk, *duty = predict_columns(
            [c for c in compiled if c is not None],
            columns,
            threads,
            then=[calibrator.predict, _no_negative_duty],
        )
    else:
        dense = dense_matrix(scorer, features)
        if dense is None:
            return _predict_by_protocol(scorer, features)
        raw = [fast_booster(b).predict(dense, threads) for b in boosters]
        risk = np.asarray(calibrator.predict(raw[0]))
        duty = [_no_negative_duty(r) for r in raw[1:]]
    if duty_booster is not None:
        duty_if_wrong = duty[0]
    else:
        duty_if_wrong = np.asarray(scorer.expected_duty(features, np.ones(len(risk))))
    return risk, risk * np.asarray(duty_if_wrong, dtype=np.float64)


def _no_negative_duty(raw: np.ndarray) -> np.ndarray:
    return np.clip(raw, 0.0, None)


def _predict_by_protocol(scorer: Scorer, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    risk = np.asarray(
        scorer.predict_risk(feature_matrix(features, scorer.feature_names)), dtype=np.float64
    )
    return risk, np.asarray(scorer.expected_duty(features, risk), dtype=np.float64)
