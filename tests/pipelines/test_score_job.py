"""The score job: bad rows quarantined and counted, outputs written atomically and repeatably."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from score_support import world

from pipelines.score_job import output_paths, score_files, write_outputs
from risk.lanes import CapacityConfig, LaneCapacity

CAPACITY = CapacityConfig(
    seed=3, default=LaneCapacity(physical_per_hour=1.0, document_per_hour=3.0, horizon_hours=8.0)
)


def _queue_files(tmp_path: Path) -> tuple[Path, Path]:
    w = world()
    queue = tmp_path / "queue.csv"
    broken = w.queue.with_columns(pl.col("declared_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f"))
    broken = broken.cast({"net_mass_kg": pl.String, "hs_code": pl.String})
    broken = broken.with_columns(
        net_mass_kg=pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.lit("-3"))
        .otherwise(pl.col("net_mass_kg")),
        hs_code=pl.when(pl.int_range(pl.len()) == 9).then(pl.lit("85AB")).otherwise("hs_code"),
    )
    broken.write_csv(queue)
    arrivals = tmp_path / "arrivals.parquet"
    w.arrivals.write_parquet(arrivals)
    return queue, arrivals


def test_counts_add_up_and_bad_rows_go_to_quarantine(tmp_path: Path) -> None:
    queue, arrivals = _queue_files(tmp_path)
    out = tmp_path / "out" / "scores.parquet"
    summary = score_files(
        [queue], output=out, scorer=world().scorer, capacity=CAPACITY, arrivals=arrivals
    )
    rows_in = world().queue.height
    assert summary.rows_in == rows_in
    assert summary.rows_quarantined == 2
    assert summary.rows_scored + summary.rows_quarantined == rows_in
    paths = output_paths(out, "parquet")
    items = pl.read_parquet(paths["items"])
    quarantine = pl.read_parquet(paths["quarantine"])
    # A bad item takes its declaration with it only if ingest says so; here rows = items.
    assert items.height == summary.rows_scored
    assert quarantine.height == 2
    assert {"declaration_id", "item_no", "truck_id", "risk", "duty_at_risk_usd", "lane",
            "reasons", "model_version", "run_id"} <= set(items.columns)  # fmt: skip
    trucks = pl.read_parquet(paths["trucks"])
    assert sum(summary.lanes.values()) == trucks.height
    assert trucks["n_items"].sum() == items.height
    assert pl.read_parquet(paths["declarations"])["n_items"].sum() == items.height
    assert any("quarantined 2" in line for line in summary.lines())


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    queue, arrivals = _queue_files(tmp_path)
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name / "scores.parquet"
        score_files(
            [queue], output=out, scorer=world().scorer, capacity=CAPACITY, arrivals=arrivals
        )
        outputs.append(output_paths(out, "parquet"))
    for kind in ("items", "declarations", "trucks", "quarantine"):
        assert outputs[0][kind].read_bytes() == outputs[1][kind].read_bytes(), kind


def test_csv_output_joins_reasons(tmp_path: Path) -> None:
    queue, arrivals = _queue_files(tmp_path)
    out = tmp_path / "scores.csv"
    score_files(
        [queue], output=out, fmt="csv", scorer=world().scorer, capacity=CAPACITY, arrivals=arrivals
    )
    trucks = pl.read_csv(output_paths(out, "csv")["trucks"])
    flagged = trucks.filter(pl.col("lane") != "green")
    assert flagged["reasons"].str.contains(" | ", literal=True).any()
    assert output_paths(out, "csv")["quarantine"].suffix == ".parquet"


def test_outputs_are_all_or_nothing(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    paths = {
        "items": tmp_path / "s.parquet",
        "declarations": tmp_path / "s.declarations.parquet",
        "trucks": blocker / "s.trucks.parquet",
    }
    with pytest.raises(OSError):
        write_outputs({k: frame for k in paths}, paths, "parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


@pytest.mark.parametrize("failing", ["items", "trucks"])
def test_a_writer_that_fails_leaves_no_output(tmp_path: Path, failing: str) -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    unwritable = pl.DataFrame({"a": pl.Series([object(), object()], dtype=pl.Object)})
    paths = output_paths(tmp_path / "s.parquet", "parquet")
    frames = {k: unwritable if k == failing else frame for k in paths}
    with pytest.raises(pl.exceptions.ComputeError):  # an Object column cannot be written
        write_outputs(frames, paths, "parquet")
    assert list(tmp_path.iterdir()) == []
    write_outputs({k: frame for k in paths}, paths, "parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


def test_a_failed_run_leaves_earlier_outputs_untouched(tmp_path: Path) -> None:
    queue, arrivals = _queue_files(tmp_path)
    out = tmp_path / "scores.parquet"
    score_files([queue], output=out, scorer=world().scorer, capacity=CAPACITY, arrivals=arrivals)
    before = out.read_bytes()
    with pytest.raises(Exception, match="boom"):
        score_files([queue], output=out, scorer=_Exploding(), capacity=CAPACITY)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".*.part"))


class _Exploding:
    """A scorer that fails half-way: after prediction and lanes, in the reasons."""

    def __getattr__(self, name: str) -> object:
        if name == "contributions":
            raise RuntimeError("boom")
        return getattr(world().scorer, name)
