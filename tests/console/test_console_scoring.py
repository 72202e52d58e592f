"""Scoring on the spot with a real champion: a tiny model trained on generated traffic into a
temporary MLflow store, promoted, loaded by the console on its first score request. Also the
batch path: `risk score`'s files published with `risk publish`."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest
from console_support import PASSWORD, SECRET, serve
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from risk import store
from risk.cli import app as cli
from risk.lanes import truck_key
from risk.schemas import LANES
from risk.settings import Settings, get_settings

# MLflow 3.17's tracking store maps a relationship with ``noload``, deprecated in SQLAlchemy
# 2.1; as an error it would break the mapping of every ORM class in the process.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)


@dataclass(frozen=True)
class Champion:
    mlflow_uri: str
    model_version: str
    traffic_dir: Path
    queue: pl.DataFrame  # DeclarationItem rows of the standing queue


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    import warnings

    from experiments.config import LightGBMParams, TrainJob
    from experiments.promotion import promote
    from experiments.train import train
    from pipelines.generate import TrafficConfig, generate_traffic, write_traffic

    root = tmp_path_factory.mktemp("champion")
    traffic = generate_traffic(
        TrafficConfig(
            seed=11,
            as_of=dt.date(2026, 10, 20),
            history_days=45,
            history_items=4000,
            queue_trucks=40,
        )
    )
    write_traffic(traffic, root / "traffic")
    settings = Settings(data_dir=root, mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    settings.configure_mlflow()
    here = Path.cwd()
    # MLflow puts a SQLite store's artifacts under ./mlruns: keep them in the temporary folder.
    os.chdir(root)
    try:
        with warnings.catch_warnings():
            # MLflow 3.17 warns from inside while logging a pyfunc model under pandas 3 and
            # SQLAlchemy 2.1 (type-hint inference, deprecations in its input-example code).
            # Only this set-up is silenced: the model is the console's input, not its subject.
            warnings.simplefilter("ignore")
            result = train(
                TrainJob(data_dir=root / "traffic" / "history"),
                LightGBMParams(num_boost_round=20, early_stopping_rounds=5, num_threads=2),
                settings=settings,
            )
            promote(result.model_name)
    finally:
        os.chdir(here)
    return Champion(
        mlflow_uri=str(settings.mlflow_tracking_uri),
        model_version=f"{result.model_name}/{result.model_version}",
        traffic_dir=root / "traffic",
        queue=traffic.queue_declarations,
    )


@dataclass
class Live:
    url: str
    sessions: sessionmaker[Session]
    tokens: dict[str, str]


@pytest.fixture
def live(champion: Champion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.mlflow_uri)
    get_settings.cache_clear()
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        mlflow_tracking_uri=champion.mlflow_uri,
        secret_key=SECRET,  # type: ignore[arg-type]
    )
    url = str(settings.database_url)
    store.migrate(url)
    engine = store.make_engine(url)
    sessions = store.session_factory(engine)
    tokens = {}
    with sessions.begin() as session:
        for role in store.ROLES:
            store.add_user(session=session, username=role, password=PASSWORD, role=role)
            tokens[role] = store.add_token(session=session, username=role, label="test")
    for base in serve(settings):
        yield Live(url=base, sessions=sessions, tokens=tokens)
    engine.dispose()


def one_truck(queue: pl.DataFrame, *, items: int = 3) -> list[dict[str, object]]:
    """The items of a queue truck carrying a few items, as the API's JSON."""
    keyed = queue.with_columns(truck_key())
    counts = keyed.group_by("truck_key").len().sort("truck_key")
    key = counts.filter(pl.col("len") >= items)["truck_key"][0]
    rows = keyed.filter(pl.col("truck_key") == key).drop("truck_key")
    return [
        {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in r.items()}
        for r in rows.to_dicts()
    ]


def score(
    live: Live, items: list[dict[str, object]], role: str = "officer", **params: str
) -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/v1/trucks/score",
        json={"items": items},
        params=params,
        headers={"Authorization": f"Bearer {live.tokens[role]}"},
        timeout=120,
    )


def test_one_truck_is_scored_with_the_champion(live: Live, champion: Champion) -> None:
    items = one_truck(champion.queue)
    response = score(live, items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == champion.model_version
    assert body["lane"] in LANES and 0.0 <= body["risk"] <= 1.0
    assert body["truck_id"] == items[0]["truck_id"] and body["published"] is False
    assert sorted(
        (d["declaration_id"], i["item_no"]) for d in body["declarations"] for i in d["items"]
    ) == sorted((i["declaration_id"], i["item_no"]) for i in items)
    item_risks = [i["risk"] for d in body["declarations"] for i in d["items"]]
    assert body["risk"] >= max(item_risks)  # 1 - prod(1 - p) is at least the largest p
    assert body["reasons"], "the truck's own score is always explained on the spot"
    assert "features;dur=" in response.headers["server-timing"]
    again = score(live, items).json()
    assert again == body  # the same papers, the same answer
    with live.sessions() as session:
        assert store.queue(session=session) == []  # not published unless asked


def test_publishing_puts_the_truck_into_the_queue_with_an_audited_lane(
    live: Live, champion: Champion
) -> None:
    items = one_truck(champion.queue)
    response = score(live, items, publish="true")
    assert response.status_code == 200 and response.json()["published"] is True
    queue = httpx.get(
        f"{live.url}/api/v1/queue",
        headers={"Authorization": f"Bearer {live.tokens['analyst']}"},
    ).json()
    assert [t["truck_id"] for t in queue["trucks"]] == [items[0]["truck_id"]]
    assert queue["trucks"][0]["lane"] == response.json()["lane"]
    with live.sessions() as session:
        (entry,) = store.entries(session=session, action="lane_assigned")
        assert entry.details["published_by"] == "officer"
        assert entry.details["model_version"] == champion.model_version
        truck = store.get_truck(session=session, truck_pk=queue["trucks"][0]["id"])
        assert {i.hs_code for d in truck.declarations for i in d.items} == {
            i["hs_code"] for i in items
        }


def test_an_analyst_may_score_but_not_publish(live: Live, champion: Champion) -> None:
    items = one_truck(champion.queue)
    assert score(live, items, role="analyst").status_code == 200
    refused = score(live, items, role="analyst", publish="true")
    assert refused.status_code == 403 and "analyst" in refused.json()["detail"]


def test_risk_score_files_are_published_with_risk_publish(
    champion: Champion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.score_job import score_files

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.mlflow_uri)
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    queue_dir = champion.traffic_dir / "queue"
    summary = score_files(
        [queue_dir / "declarations.parquet"],
        output=tmp_path / "scores" / "queue.parquet",
        arrivals=queue_dir / "arrivals.parquet",
    )
    result = CliRunner().invoke(
        cli,
        [
            "publish",
            str(tmp_path / "scores"),
            "--declarations",
            str(queue_dir / "declarations.parquet"),
            "--arrivals",
            str(queue_dir / "arrivals.parquet"),
            "--history",
            str(champion.traffic_dir / "history"),
        ],
    )
    assert result.exit_code == 0, result.output
    trucks = sum(summary.lanes.values())
    assert f"{trucks:,} trucks added" in result.output
    engine = store.make_engine(str(get_settings().database_url))
    with store.session_factory(engine)() as session:
        published = store.queue(session=session, limit=10_000)
        assert len(published) == trucks
        assert {t.model_version for t in published} == {champion.model_version}
        lanes = {lane: sum(t.lane == lane for t in published) for lane in summary.lanes}
        assert lanes == summary.lanes
        assert all(t.arrived_at is not None for t in published)
        flagged = [t for t in published if t.lane in ("red", "yellow")]
        assert flagged and all(t.reasons for t in flagged)
    engine.dispose()
    again = CliRunner().invoke(
        cli,
        ["publish", str(tmp_path / "scores"), "-d", str(queue_dir / "declarations.parquet")],
    )
    assert f"{trucks:,} re-scored" in again.output


@pytest.fixture(scope="module")
def champion_scorer(champion: Champion) -> object:
    import warnings

    from experiments.registry import champion_uri, load_scorer, registered_model_name

    settings = Settings(mlflow_tracking_uri=champion.mlflow_uri)
    settings.configure_mlflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own warnings while loading (see above)
        return load_scorer(
            champion_uri(registered_model_name(settings.registered_model, "canonical"))
        )


def test_on_the_spot_features_are_the_batch_pipelines(
    champion: Champion, champion_scorer: object
) -> None:
    from polars.testing import assert_frame_equal

    from pipelines.score_features import ROW, compute_features
    from risk.console.scoring import ScoringService

    scorer = champion_scorer
    service = ScoringService(scorer=scorer)  # type: ignore[arg-type]
    keyed = champion.queue.with_columns(truck_key())
    trucks = keyed.partition_by("truck_key", maintain_order=True)
    assert len(trucks) >= 30
    for truck in trucks[:30]:
        items = truck.drop("truck_key")
        online = service.truck_features(items, scorer)  # type: ignore[arg-type]
        batch = compute_features(items, scorer)  # type: ignore[arg-type]
        assert online.get_column(ROW).to_list() == list(range(items.height))
        assert_frame_equal(online, batch.sort(ROW), check_exact=False, abs_tol=1e-9, rel_tol=1e-12)


def test_a_truck_the_online_path_cannot_mirror_is_scored_by_the_pipeline(
    champion: Champion, champion_scorer: object
) -> None:
    from features.online import UnsupportedBatchError
    from risk.console.scoring import ScoringService

    scorer = champion_scorer
    service = ScoringService(scorer=scorer)  # type: ignore[arg-type]
    first = champion.queue.head(1)
    # One declaration whose items carry two filing times: the pipeline picks one of them.
    odd = pl.concat(
        [
            first,
            first.with_columns(
                item_no=pl.lit(2, dtype=pl.Int32),
                declared_at=pl.col("declared_at") + dt.timedelta(minutes=5),
            ),
        ]
    )
    online = service.online_features(scorer)  # type: ignore[arg-type]
    assert online is not None
    with pytest.raises(UnsupportedBatchError):
        online.features(odd)
    features = service.truck_features(odd, scorer)  # type: ignore[arg-type]
    assert features.height == 2 and features.columns[:-1] == scorer.feature_names  # type: ignore[attr-defined]


def _random_queue(seed: int, size: int) -> list[object]:
    import numpy as np

    from risk.console.spot_lane import Waiting

    rng = np.random.default_rng(seed)
    fixed = rng.choice(np.array([None, None, None, None, "red", "green"], dtype=object), size)
    return [
        Waiting(
            truck_key=f"TRK-{seed}-{i:04d}",
            n_items=int(rng.integers(1, 12)),
            risk=float(rng.beta(0.6, 6.0)),
            # Round amounts tie on duty per minute now and then: the risk and key decide.
            duty_at_risk_usd=float(np.round(rng.lognormal(5.0, 1.5), int(rng.integers(-2, 3)))),
            rule_lane=fixed[i],
            draw_key=f"TRK-{seed}-{i:04d}|KZ-1|queue",
        )
        for i in range(size)
    ]


@pytest.mark.parametrize(
    "capacity",
    [
        pytest.param({}, id="default"),
        pytest.param({"physical_per_hour": 1.0, "document_per_hour": 3.0}, id="tight"),
        pytest.param(
            {"random_share": 0.3, "min_risk_red": 0.2, "min_risk_yellow": 0.05}, id="thresholds"
        ),
    ],
)
def test_the_spot_lane_is_the_one_assign_lanes_gives(capacity: dict[str, float]) -> None:
    from risk.console.scoring import lane_by_assign_lanes
    from risk.console.spot_lane import lane_in_queue
    from risk.lanes import CapacityConfig, LaneCapacity

    config = CapacityConfig(seed=3, crossing={"KZ-1": LaneCapacity(**capacity)})
    seen = set()
    for seed in range(60):
        queue = _random_queue(seed, size=[0, 1, 40, 400][seed % 4])
        newcomer = _random_queue(1000 + seed, size=1)[0]
        mine = lane_in_queue(newcomer, queue, config, "KZ-1")  # type: ignore[arg-type]
        assert mine is not None
        truck = pl.DataFrame(
            [{**newcomer.__dict__, "crossing": "KZ-1"}],
            schema={
                "truck_key": pl.String,
                "n_items": pl.Int64,
                "risk": pl.Float64,
                "duty_at_risk_usd": pl.Float64,
                "rule_lane": pl.String,
                "draw_key": pl.String,
                "crossing": pl.String,
            },
        )
        expected = lane_by_assign_lanes(truck, queue, config, "KZ-1").row(0, named=True)  # type: ignore[arg-type]
        assert mine.__dict__ == {k: expected[k] for k in mine.__dict__}, seed
        seen.add((mine.lane, mine.selection))
    # Every way into a lane is exercised: rule, random draw, targeted red and yellow, release.
    assert {
        ("red", "rule"),
        ("red", "random"),
        ("red", "targeted"),
        ("yellow", "targeted"),
        ("green", "none"),
    } <= seen


def test_the_spot_response_is_the_assembled_batchs(
    champion: Champion, champion_scorer: object
) -> None:
    from pipelines.score import aggregate_trucks, assemble, explain, score_items
    from risk.console.scoring import _response, response_of_parts
    from risk.console.spot_reasons import truck_reasons
    from risk.lanes import CapacityConfig, LaneCapacity, assign_lanes

    capacity = CapacityConfig(default=LaneCapacity(random_share=0.4))
    keyed = champion.queue.with_columns(truck_key())
    selections: set[str] = set()
    for truck in keyed.partition_by("truck_key", maintain_order=True)[:24]:
        scored = score_items(truck.drop("truck_key"), champion_scorer)  # type: ignore[arg-type]
        with_lane = assign_lanes(aggregate_trucks(scored.items), capacity, draw_key="draw_key")
        for lang in ("en", "ru"):
            reasons = explain(
                scored,
                with_lane,
                champion_scorer,  # type: ignore[arg-type]
                reasons_for=LANES,
                random_share={c: 0.4 for c in with_lane["crossing"]},
                lang=lang,
            )
            batch = assemble(scored, with_lane, reasons)
            expected = _response(batch, batch.trucks.row(0, named=True), published=False)
            spot = truck_reasons(
                scored,
                with_lane.row(0, named=True),
                champion_scorer,  # type: ignore[arg-type]
                random_share=0.4,
                lang=lang,
            )
            assert response_of_parts(scored, with_lane, spot, published=False) == expected
        selections.add(expected.selection)
        assert expected.reasons
    assert {"random", "targeted"} <= selections


def test_categorical_reasons_show_the_value_itself(
    champion: Champion, champion_scorer: object
) -> None:
    from pipelines.score import score_items
    from risk.console.spot_reasons import _display_value

    items = champion.queue.head(3)
    scored = score_items(items, champion_scorer)  # type: ignore[arg-type]
    row = items.row(2, named=True)
    assert _display_value(scored, 2, "origin_country_code", 7) == row["origin_country"]
    assert _display_value(scored, 2, "hs_chapter_code", 7) == row["hs_code"][:2]
    assert _display_value(scored, 2, "procedure_code", 7) == row["procedure"]
    assert _display_value(scored, 2, "crossing_code", 7) == row["crossing"]
    assert _display_value(scored, 2, "importer_declarations", 7) == 7
