"""Model behaviour on the crossing simulation, and the score/simulate commands end to end."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from score_support import world
from typer.testing import CliRunner

from pipelines.generate import write_traffic
from pipelines.score import score_batch
from risk.cli import app
from risk.lanes import CapacityConfig, LaneCapacity
from risk.simulation import Detection, load_queue
from risk.simulation.compare import PolicySettings, compare_policies, headline, legacy_rules

# A small crossing for a small queue: one bay, one document officer, one booth per crossing.
SMALL = LaneCapacity(
    physical_per_hour=1.0,
    document_per_hour=3.0,
    horizon_hours=8.0,
    booths=1,
    minutes_green=2.0,
    min_risk_red=0.02,
    min_risk_yellow=0.01,
)
CAPACITY = CapacityConfig(seed=3, default=SMALL)


@pytest.fixture(scope="module")
def comparison() -> list:  # type: ignore[type-arg]
    w = world()
    scored = score_batch(w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    queue = load_queue(w.queue, w.truth, w.arrivals)
    return compare_policies(
        queue,
        w.queue,
        scored.trucks,
        CAPACITY,
        rules=legacy_rules(),
        detection=Detection(default_physical=0.9, document_factor=0.5),
        settings=PolicySettings(replan_hours=(16.0,)),
    )


def test_model_lanes_clear_the_queue_several_times_faster(comparison) -> None:  # type: ignore[no-untyped-def]
    by_name = {r.policy: r for r in comparison}
    everything = by_name["inspect nearly all (95%)"]
    model = by_name["model lanes"]
    assert everything.hours_to_clear > 3 * model.hours_to_clear
    assert model.p95_wait_hours < everything.p95_wait_hours
    # Far fewer inspections, yet a good part of what full inspection finds, and more found
    # per inspection than by random picks or by the old rules at the same capacity.
    assert model.red + model.yellow < 0.5 * (everything.red + everything.yellow)
    assert model.duty_recovered_usd > 0.3 * everything.duty_recovered_usd
    rules = by_name["rules only"]
    assert model.duty_recovered_usd > rules.duty_recovered_usd
    random = by_name["random 10%"]
    per_model = model.violations_caught / (model.red + model.yellow)
    assert per_model > random.violations_caught / random.red
    # More officer time buys more finds and a later clearance.
    longer = by_name["model lanes, 16 h plan"]
    assert longer.duty_recovered_usd >= model.duty_recovered_usd
    assert longer.hours_to_clear >= model.hours_to_clear
    assert len(headline(comparison)) == 2


def test_every_policy_sees_the_same_queue(comparison) -> None:  # type: ignore[no-untyped-def]
    assert len({(r.trucks, r.violations, round(r.duty_evaded_usd)) for r in comparison}) == 1


def _write_capacity(path: Path) -> Path:
    fields = SMALL.model_dump()
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    path.write_text(f"seed = 3\n[default]\n{body}\n", encoding="utf-8")
    return path


def test_score_and_simulate_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    write_traffic(w.traffic, tmp_path / "traffic")
    monkeypatch.setattr("pipelines.score_job.load_scorer", lambda uri: w.scorer)
    capacity = _write_capacity(tmp_path / "capacity.toml")
    runner = CliRunner()
    out = tmp_path / "scores" / "queue.parquet"
    scored = runner.invoke(
        app,
        [
            "score",
            str(tmp_path / "traffic" / "queue" / "declarations.parquet"),
            "--output",
            str(out),
            "--arrivals",
            str(tmp_path / "traffic" / "queue" / "arrivals.parquet"),
            "--capacity",
            str(capacity),
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert f"scored {w.queue.height:,} + quarantined 0" in scored.output
    trucks = out.parent / "queue.trucks.parquet"
    assert pl.read_parquet(trucks).height == w.queue["truck_id"].n_unique()

    simulated = runner.invoke(
        app,
        [
            "simulate",
            "--traffic",
            str(tmp_path / "traffic"),
            "--scores",
            str(trucks),
            "--capacity",
            str(capacity),
            "--out",
            str(tmp_path / "sim"),
        ],
    )
    assert simulated.exit_code == 0, simulated.output
    assert "model lanes" in simulated.output
    assert "faster than inspecting nearly all" in simulated.output
    table = pl.read_csv(tmp_path / "sim" / "simulation.csv")
    assert table["policy"].to_list()[0] == "inspect nearly all (95%)"
    assert (tmp_path / "sim" / "queue.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xlsx"], "--format 'xlsx'"),
        (["--lang", "de"], "--lang 'de'"),
        (["--capacity", "missing.toml"], "capacity file not found"),
    ],
)
def test_score_command_refuses_bad_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr("pipelines.score_job.load_scorer", lambda uri: world().scorer)
    queue = tmp_path / "queue.parquet"
    world().queue.head(20).write_parquet(queue)
    result = CliRunner().invoke(
        app, ["score", str(queue), "--output", str(tmp_path / "s.parquet"), *args]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_simulate_without_traffic_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--traffic", str(tmp_path)])
    assert result.exit_code == 2
    assert "no generated traffic" in result.output


def test_demo_reports_a_refused_promotion_as_information() -> None:
    from experiments.promotion import Decision
    from risk.commands.demo import promotion_note

    refused = Decision(
        promoted=False,
        model_name="grey-import-risk",
        candidate="3",
        champion="2",
        capacity=0.05,
        method="refused",
        candidate_precision=0.71,
        champion_precision=0.72,
    )
    assert promotion_note(refused) == (
        "version 3 not promoted, champion stays version 2 (refused: P@5% 0.7100 against 0.7200)"
    )
    same = Decision(False, "grey-import-risk", "2", "2", 0.05, "unchanged")
    assert promotion_note(same) == "version 2 not promoted, champion stays version 2 (unchanged)"
