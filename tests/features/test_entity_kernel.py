"""The entity-history kernels' pieces: key slots by hash table and the batch's time order."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features import entity_kernel, history
from features.entity_kernel import KeySlots


def _expected_slots(keys: list[int | None]) -> list[int]:
    """Slots numbered in order of first appearance, -1 for a null key."""
    seen: dict[int, int] = {}
    return [-1 if key is None else seen.setdefault(key, len(seen)) for key in keys]


@pytest.mark.parametrize("first_room", [1, 4096])
def test_key_slots_number_keys_in_order_of_first_appearance(
    first_room: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With room for one key at first the table is built again and again as keys come.
    monkeypatch.setattr(entity_kernel, "FIRST_TABLE_KEYS", first_room)
    rng = np.random.default_rng(4)
    pool = rng.integers(0, 2**63, 700, dtype=np.int64).astype(np.uint64).tolist()
    keys: list[int | None] = [
        None if rng.random() < 0.1 else pool[int(i)] for i in rng.integers(0, 700, 5000)
    ]
    slots = KeySlots.of(pl.Series(keys, dtype=pl.UInt64))
    expected = _expected_slots(keys)
    assert slots.slots.tolist() == expected
    assert slots.count == max(expected) + 1
    # Look-ups find the same slots, and -1 for keys the table has never seen.
    unseen = [k + 1 for k in pool if k + 1 not in set(pool)][:50]
    probe = [*keys[:100], *unseen, None]
    found = slots.look_up(pl.Series(probe, dtype=pl.UInt64)).tolist()
    assert found == [*expected[:100], *([-1] * len(unseen)), -1]


def test_key_slots_of_a_sliced_column_read_its_nulls_at_the_right_rows() -> None:
    keys = pl.Series([5, None, 7, 5, None, 9, 7, None, 11, 5] * 3, dtype=pl.UInt64)
    sliced = keys.slice(3, 20)
    slots = KeySlots.of(sliced)
    assert slots.slots.tolist() == _expected_slots(sliced.to_list())
    validity = slots.validity()
    assert validity is not None
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    assert bits[: sliced.len()].tolist() == sliced.is_not_null().cast(pl.UInt8).to_list()


def _items(ids: list[str], minutes: list[int]) -> pl.DataFrame:
    start = datetime(2024, 3, 1)
    return pl.DataFrame(
        {
            "declaration_id": ids,
            "declared_at": [start + timedelta(minutes=m) for m in minutes],
        }
    )


def test_batch_order_keeps_adjacent_declarations_in_runs_stably_by_time() -> None:
    items = _items(["A", "A", "B", "C", "C", "C", "D"], [5, 5, 1, 5, 5, 5, 1])
    order = history.batch_order(items)
    assert order.declaration_of_row.to_list() == [0, 0, 1, 2, 2, 2, 3]
    assert order.permutation.tolist() == [2, 6, 0, 1, 3, 4, 5]
    assert order.codes.tolist() == [1, 3, 0, 0, 2, 2, 2]
    start = items["declared_at"].to_physical()[2]
    assert (order.times - start).tolist() == [0, 0, *([4 * 60_000_000] * 5)]


@pytest.mark.parametrize("packed_bits", [63, 0], ids=["packed", "two columns"])
def test_batch_order_of_scattered_items_ranks_declarations_and_sorts_by_time_and_code(
    packed_bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PACKED_BITS", packed_bits)
    rng = np.random.default_rng(8)
    n = 400
    ids = [f"D{int(i):03d}" for i in rng.integers(0, 60, n)]
    minutes = [int(i) % 7 for i in rng.integers(0, 60, n)]  # many declarations share a time
    by_id = dict(zip(ids, minutes, strict=False))
    items = _items(ids, [by_id[i] for i in ids])
    order = history.batch_order(items)
    ranks = {d: r for r, d in enumerate(sorted(set(ids)))}
    assert order.declaration_of_row.to_list() == [ranks[i] for i in ids]
    # Every row once, in (time, declaration) order: each declaration's rows together.
    assert sorted(order.permutation.tolist()) == list(range(n))
    pairs = list(zip(order.times.tolist(), order.codes.tolist(), strict=True))
    assert pairs == sorted(pairs)
    times = items["declared_at"].to_physical().to_numpy()
    assert (order.times == times[order.permutation]).all()


@pytest.mark.parametrize("span", [10, 2**40, 2**62], ids=["one pass", "four", "six"])
def test_the_time_sort_is_stable_and_gives_the_sorted_times(span: int) -> None:
    rng = np.random.default_rng(span % 97)
    times = rng.integers(-(span // 2), span // 2, 5000, dtype=np.int64)
    times[::7] = times[3]  # ties, whose rows must keep their order
    rows, in_order = entity_kernel.sort_by_time(times)
    expected = np.argsort(times, kind="stable")
    assert rows.dtype == np.uint32
    assert rows.tolist() == expected.tolist()
    assert in_order.tolist() == times[expected].tolist()
    empty_rows, empty_times = entity_kernel.sort_by_time(np.empty(0, dtype=np.int64))
    assert len(empty_rows) == len(empty_times) == 0
