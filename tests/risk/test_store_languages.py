"""The store keeps reasons in Russian and in English; older scores (one language) still
publish, and migration 0004 sorts the rows already stored by their script."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import text
from store_data import (
    ScoredQueue,
    fresh_postgres_database,
    postgres_admin_url,
    publish,
    scored_queue,
)

from risk import store
from risk.store.db import MIGRATIONS, make_engine, normalise_url
from risk.store.models import Declaration, Item, Truck

ENTRY = {
    "name": "watch-importer",
    "lane": "red",
    "reason_en": "importer on the watch list after a seizure",
    "reason_ru": "импортёр в списке наблюдения после изъятия",
}
RULE_EN = "Rule watch-importer: importer on the watch list after a seizure"
RULE_RU = "Правило watch-importer: импортёр в списке наблюдения после изъятия"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'risk.db'}"
        store.migrate(url)
        yield url
        return
    with fresh_postgres_database(postgres_admin_url()) as url:
        store.migrate(url)
        yield url


def _publish(url: str, queue: ScoredQueue, run_id: str) -> store.PublishSummary:
    engine = make_engine(url)
    try:
        with store.session_factory(engine).begin() as session:
            return publish(session, queue, run_id)
    finally:
        engine.dispose()


def _rows(url: str) -> dict[str, list[tuple[list[str], list[str], list[str]]]]:
    engine = make_engine(url)
    try:
        with store.session_factory(engine)() as session:
            return {
                model.__tablename__: [
                    (list(r.reasons), list(r.reasons_ru), list(r.reasons_en))
                    for r in session.query(model).order_by(model.id)
                ]
                for model in (Truck, Declaration, Item)
            }
    finally:
        engine.dispose()


def test_older_scores_in_one_language_publish_into_its_column(database_url: str) -> None:
    queue = scored_queue()  # reasons in English only, as `risk score` wrote them before
    assert "reasons_ru" not in queue.trucks.columns
    _publish(database_url, queue, "old")
    for table, rows in _rows(database_url).items():
        assert rows and any(reasons for reasons, _, _ in rows), table
        for reasons, russian, english in rows:
            assert english == reasons and russian == [], table


def _watch(url: str, importer: str) -> None:
    engine = make_engine(url)
    with store.session_factory(engine).begin() as session:
        supervisor = store.add_user(
            session=session,
            username="supervisor1",
            password="correct horse battery",
            role="supervisor",
        )
        store.add_entry(
            session=session,
            by=supervisor,
            values={**ENTRY, "importer_ids": importer},
            reason="seizure report 2026/114",
        )
    engine.dispose()


def test_a_watch_list_reason_leads_each_language_of_older_scores(database_url: str) -> None:
    queue = scored_queue()  # English only
    _watch(database_url, queue.declarations.get_column("importer_id")[0])
    assert _publish(database_url, queue, "old").watch_listed >= 1
    listed = 0
    for table, rows in _rows(database_url).items():
        for reasons, russian, english in rows:
            assert english == reasons, table
            if reasons and reasons[0] == RULE_EN:
                listed += 1
                # The rule in Russian, then the model's reasons as scored (no Russian ones).
                assert russian == [RULE_RU, *reasons[1:]], table
            else:
                assert russian == [], table
    assert listed >= 2  # a truck and its items at least


def test_both_languages_are_stored_and_watch_lists_lead_each(database_url: str) -> None:
    base = scored_queue()

    def russian(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            reasons_en=pl.col("reasons"),
            reasons_ru=pl.col("reasons").list.eval(pl.lit("Заявленная стоимость ") + pl.element()),
        )

    queue = dataclasses.replace(
        base,
        trucks=russian(base.trucks),
        declarations=russian(base.declarations),
        items=russian(base.items),
    )
    _watch(database_url, queue.declarations.get_column("importer_id")[0])
    summary = _publish(database_url, queue, "both")
    assert summary.watch_listed >= 1
    rows = _rows(database_url)
    for table, stored in rows.items():
        for reasons, in_russian, in_english in stored:
            if reasons and reasons[0] == RULE_EN:  # a watch-listed truck or item
                assert in_english[0] == RULE_EN and in_russian[0] == RULE_RU, table
                assert in_russian[1:] == [f"Заявленная стоимость {r}" for r in in_english[1:]]
            else:
                assert in_english == reasons, table
                assert in_russian == [f"Заявленная стоимость {r}" for r in reasons], table
    ruled = [r for r in rows["trucks"] if r[0] and r[0][0] == RULE_EN]
    assert len(ruled) == summary.watch_listed
    assert any(r[0] and r[0][0] == RULE_EN for r in rows["items"])
    engine = make_engine(database_url)
    with store.session_factory(engine)() as session:
        assigned = store.entries(session=session, action="lane_assigned", limit=1000)
        logged = next(entry for entry in assigned if entry.actor == "rule")
        assert logged.details["reasons_ru"][0] == RULE_RU
        assert logged.details["reasons_en"][0] == RULE_EN
    engine.dispose()


def test_migration_0004_copies_each_rows_reasons_by_their_script(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    _publish(database_url, scored_queue(), "old")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    engine = make_engine(database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    with engine.begin() as connection:
        first = connection.execute(text("SELECT min(id) FROM trucks")).scalar()
        connection.execute(
            text("UPDATE trucks SET reasons = :reasons WHERE id = :id"),
            {"reasons": '["Правило x: импортёр", "Origin CN"]', "id": first},
        )
    engine.dispose()
    store.migrate(database_url)
    rows = _rows(database_url)
    truck_rows = rows["trucks"]
    assert truck_rows[0] == (
        ["Правило x: импортёр", "Origin CN"],
        ["Правило x: импортёр", "Origin CN"],
        [],
    )
    for table, stored in rows.items():
        for reasons, russian, english in stored[1 if table == "trucks" else 0 :]:
            assert english == reasons and russian == [], table


def test_csv_scores_read_back_every_reasons_list(tmp_path: Path) -> None:
    from pipelines.score_job import _flatten_lists
    from risk.store.files import read_frame

    lists = pl.List(pl.String)
    frame = pl.DataFrame(
        {
            "truck_key": ["T1", "T2"],
            "reasons": [["Declared value 5,189 USD", "Origin CN"], []],
            "reasons_ru": [["Заявленная стоимость 5 189 USD", "Происхождение CN"], []],
            "reasons_en": [["Declared value 5,189 USD", "Origin CN"], []],
        },
        schema={"truck_key": pl.String, "reasons": lists, "reasons_ru": lists, "reasons_en": lists},
    )
    path = tmp_path / "scores.trucks.csv"
    _flatten_lists(frame).write_csv(path)
    assert read_frame(path).equals(frame)
