"""The native look-up of a compacted price reference (``features.reference_kernel``) gives the
general sort-and-count path's numbers: on seeded traffic edited to hold ties, nulls, keys the
snapshot lacks, values equal to past values and strings too long for a view; and piece by
piece, pair codes and bucketed searches against plain Python."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime

import numpy as np
import polars as pl
import pytest
from feature_traffic import Traffic
from polars.testing import assert_frame_equal

from features import reference
from features.pipeline import KEYS
from features.reference import METRICS, UnitValueReference
from features.reference_kernel import bucket_tables, pair_codes, positions

PERIOD = datetime(2024, 2, 1)
CUTOFF = datetime(2024, 2, 10)
MakeTraffic = Callable[..., Traffic]


def _edited_batch(traffic: Traffic, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows before ``CUTOFF`` and a batch after it: a quarter of the batch copies a past
    row's goods and numbers (values equal to past values), some rows carry an HS code or an
    origin the past never saw, some a zero mass or a null quantity (null metrics)."""
    rows = traffic.declarations
    past = rows.filter(pl.col("declared_at") < CUTOFF)
    batch = rows.filter(pl.col("declared_at") >= CUTOFF)
    rng = np.random.default_rng(seed)
    n = batch.height
    copied = past[pl.Series(rng.integers(0, past.height, n))]
    copy = pl.Series(rng.random(n) < 0.25)
    goods = ["hs_code", "origin_country", "customs_value_usd", "net_mass_kg", "quantity"]
    batch = batch.with_columns(
        pl.when(copy).then(copied.get_column(name)).otherwise(pl.col(name)).alias(name)
        for name in goods
    )
    pick = rng.random(n)
    batch = batch.with_columns(
        pl.when(pl.Series(pick < 0.05))
        .then(pl.lit("9999990000"))  # a chapter the past never saw: no level at all
        .when(pl.Series(pick > 0.95))
        .then(pl.col("hs_code").str.slice(0, 6) + "7777")  # only coarser levels
        .otherwise(pl.col("hs_code"))
        .alias("hs_code"),
        pl.when(pl.Series(rng.random(n) < 0.05))
        .then(pl.lit("ZZ"))
        .otherwise(pl.col("origin_country"))
        .alias("origin_country"),
        pl.when(pl.Series(rng.random(n) < 0.05))
        .then(0.0)
        .otherwise(pl.col("net_mass_kg"))
        .alias("net_mass_kg"),
        pl.when(pl.Series(rng.random(n) < 0.05))
        .then(None)
        .otherwise(pl.col("quantity"))
        .alias("quantity"),
    )
    return past, batch


def _both_paths(
    past: pl.DataFrame, batch: pl.DataFrame, min_rows: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[pl.DataFrame, pl.DataFrame]:
    fitted = UnitValueReference(min_rows=min_rows).fit(past)
    out = []
    for snapshot in (False, True):
        monkeypatch.setattr(reference, "SNAPSHOT", snapshot)
        compacted = fitted.compact(PERIOD)
        out.append(compacted.transform(batch.lazy()).collect())
    return out[0], out[1]


@pytest.mark.parametrize(("seed", "min_rows"), [(3, 10), (11, 3), (5, 1)])
def test_kernel_equals_the_general_path(
    seed: int, min_rows: int, make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    past, batch = _edited_batch(make_traffic(500, seed=seed, days=59), seed)
    general, kernel = _both_paths(past, batch, min_rows, monkeypatch)
    assert_frame_equal(kernel.select(KEYS), batch.select(KEYS))  # the batch's own order
    assert kernel.schema == general.schema
    assert_frame_equal(kernel.sort(KEYS), general.sort(KEYS))
    # The edits reach what they are meant to: nulls, levels of each kind, exact ties.
    for metric in METRICS:
        levels = kernel.get_column(f"{metric}_reference_level")
        assert 0 < levels.null_count() < kernel.height
    assert kernel.get_column("unit_value_kg_reference_level").n_unique() >= 3
    ties = kernel.join(
        batch.select(*KEYS, *reference.log_metrics()).rename({"unit_value_kg": "v"}), on=KEYS
    ).filter(pl.col("v").is_in(past.select(reference.log_metrics()[0]).to_series().implode()))
    assert ties.get_column("unit_value_kg_position").drop_nulls().len() > 10


def test_a_pickled_reference_leaves_its_look_up_arrays_behind(make_traffic: MakeTraffic) -> None:
    past, batch = _edited_batch(make_traffic(200, seed=4, days=59), 4)
    compacted = UnitValueReference().fit(past).compact(PERIOD)
    before = compacted.transform(batch.lazy()).collect()
    assert compacted._lookup_memo is not None
    copy = pickle.loads(pickle.dumps(compacted))
    assert getattr(copy, "_lookup_memo", None) is None
    assert_frame_equal(copy.transform(batch.lazy()).collect(), before)


def test_strings_a_view_cannot_hold_take_the_join(
    make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    past, batch = _edited_batch(make_traffic(300, seed=2, days=59), 2)
    long_code = pl.Series([i == 3 for i in range(batch.height)])
    batch = batch.with_columns(
        pl.when(long_code).then(pl.lit("85171300001234")).otherwise("hs_code").alias("hs_code")
    )
    assert pair_codes(batch.get_column("hs_code"), batch.get_column("origin_country")) is None
    general, kernel = _both_paths(past, batch, 10, monkeypatch)
    assert_frame_equal(kernel.select(KEYS), batch.select(KEYS))
    assert_frame_equal(kernel.sort(KEYS), general.sort(KEYS))


def test_pair_codes_number_pairs_in_order_of_first_appearance() -> None:
    rng = np.random.default_rng(5)
    words = [
        "",
        "A",
        "AB",
        "AB ",
        "ABC",
        "ABCD",
        "ABCDE",
        "ABCDEFGH",
        "ABCDEFGHIJK",
        "ABCDEFGHIJKL",
    ]
    # Many distinct pairs (the table grows past its first size) and many repeats.
    first = [
        f"{rng.integers(0, 3000)}" if rng.random() < 0.5 else words[i % 10] for i in range(20_000)
    ]
    second = [words[i] for i in rng.integers(0, len(words), len(first))]
    coded = pair_codes(pl.Series(first), pl.Series(second))
    assert coded is not None
    codes, firsts = coded
    seen: dict[tuple[str, str], int] = {}
    expected = [seen.setdefault(pair, len(seen)) for pair in zip(first, second, strict=True)]
    assert codes.tolist() == expected
    assert len(firsts) == len(seen) > 8192  # more than the first table holds
    assert [(first[i], second[i]) for i in firsts] == list(seen)
    # A slice of a series is read from its own first row; nulls are left to the join.
    assert pair_codes(pl.Series(first)[7:], pl.Series(second)[7:]) is not None
    assert pair_codes(pl.Series(["A", None]), pl.Series(["B", "C"])) is None


def test_bucketed_search_counts_past_values_strictly_below() -> None:
    rng = np.random.default_rng(9)
    # Keys of one value, of a few, of many with heavy tails; multiplicities up to 4.
    keys = [np.array([1.5]), np.array([-2.0, 0.0, 3.0]), np.round(rng.standard_t(2, 3000), 2)]
    keys += [np.round(rng.normal(size=int(s)), 1) for s in rng.integers(1, 200, 20)]
    distinct = [np.unique(v) for v in keys]
    counts = [rng.integers(1, 5, len(v)) for v in distinct]
    values = np.concatenate(distinct)
    below = np.concatenate([np.cumsum(c) for c in counts])
    sizes = np.array([len(v) for v in distinct])
    starts = np.cumsum(sizes) - sizes
    tables = bucket_tables(values, starts, sizes)
    # One pair per key, one metric; queries: past values themselves, between, outside.
    rows = 4000
    codes = rng.integers(0, len(keys), rows).astype(np.int32)
    pool = np.concatenate([values, rng.normal(scale=4.0, size=500), [-1e300, 1e300]])
    query = pool[rng.integers(0, len(pool), rows)]
    query[::50] = np.nan  # read as null below
    rows_per_key = np.array([c.sum() for c in counts])
    choice = {
        "level": np.where(np.arange(len(keys)) == 4, -1, 0).astype(np.int32),
        "rows": rows_per_key,
        "median": np.zeros(len(keys)),
        "start": starts,
        "low": tables["low"],
        "scale": tables["scale"],
        "buckets": tables["buckets"],
        "table_at": tables["table_at"],
    }
    series = pl.Series(query, nan_to_null=True)
    (ratio, position, level, n) = positions(
        codes, [series], choice, tables["table"], values, below
    )[0]
    for row in range(rows):
        key = codes[row]
        if key == 4 or np.isnan(query[row]):
            assert position[row] is None and level[row] is None and n[row] is None
            continue
        strictly = counts[key][distinct[key] < query[row]].sum()
        assert position[row] == strictly / rows_per_key[key]
        assert (level[row], n[row], ratio[row]) == (0, rows_per_key[key], query[row])


def test_an_empty_batch_gives_the_empty_result(
    make_traffic: MakeTraffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    past, batch = _edited_batch(make_traffic(100, seed=6, days=59), 6)
    general, kernel = _both_paths(past, batch.clear(), 10, monkeypatch)
    assert kernel.height == 0
    assert kernel.schema == general.schema == reference.result_schema()
