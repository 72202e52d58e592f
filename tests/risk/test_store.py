"""The decisions store on SQLite and PostgreSQL: migrations, publishing, results, audit."""

from __future__ import annotations

import threading
from collections.abc import Callable

import polars as pl
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from store_data import (
    ScoredQueue,
    publish,
    scored_queue,
)

from risk import store
from risk.errors import RiskError
from risk.schemas import InspectionOutcome
from risk.store.models import AuditEntry, Truck


@pytest.fixture
def queue() -> ScoredQueue:
    return scored_queue()


@pytest.fixture
def published(sessions: sessionmaker[Session], queue: ScoredQueue) -> store.PublishSummary:
    with sessions.begin() as session:
        return publish(session, queue, run_id="run-1")


@pytest.fixture
def users(sessions: sessionmaker[Session]) -> dict[str, store.User]:
    with sessions() as session:
        return {user.role: user for user in store.list_users(session=session)}


def first_truck(session: Session, lane: str) -> Truck:
    return next(t for t in store.queue(session=session) if t.lane == lane)


def test_migrate_creates_every_table_and_is_idempotent(database_url: str, engine: Engine) -> None:
    store.migrate(database_url)  # the template was migrated already: a second run is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {"trucks", "declarations", "items", "inspections", "audit_log", "users"} <= tables
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
        )


def test_the_migrations_build_exactly_the_models_tables(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from risk.store.models import Base

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_publish_puts_every_truck_declaration_and_item_in_the_store(
    sessions: sessionmaker[Session], queue: ScoredQueue, published: store.PublishSummary
) -> None:
    assert published.added == queue.trucks.height
    with sessions() as session:
        rows = store.queue(session=session, limit=10_000)
        assert len(rows) == queue.trucks.height
        details = [store.get_truck(session=session, truck_pk=t.id) for t in rows]
        assert sum(len(t.declarations) for t in details) == queue.declarations.height
        assert sum(len(d.items) for t in details for d in t.declarations) == queue.items.height
        assert store.audit.count(session=session, action="lane_assigned") == queue.trucks.height


def test_queue_is_in_lane_order_and_riskiest_first(
    sessions: sessionmaker[Session], published: store.PublishSummary
) -> None:
    with sessions() as session:
        rows = store.queue(session=session)
    lanes = [t.lane for t in rows]
    assert lanes == sorted(lanes, key=store.LANE_ORDER.index)
    for lane in set(lanes):
        risks = [t.risk for t in rows if t.lane == lane]
        assert risks == sorted(risks, reverse=True)
    assert {"red", "green"} <= set(lanes)


def test_queue_filters_by_crossing_and_lane(
    sessions: sessionmaker[Session], queue: ScoredQueue, published: store.PublishSummary
) -> None:
    crossing = queue.trucks.get_column("crossing").mode().first()
    expected = queue.trucks.filter(crossing=crossing, lane="green").height
    with sessions() as session:
        rows = store.queue(session=session, crossing=crossing, lane="green")
        assert store.lane_counts(session=session, crossing=crossing)["green"] == expected
    assert len(rows) == expected
    assert {(t.crossing, t.lane) for t in rows} == {(crossing, "green")}


def test_a_bad_row_refuses_the_whole_batch_naming_the_row(
    sessions: sessionmaker[Session], queue: ScoredQueue
) -> None:
    bad_truck = queue.trucks.get_column("truck_id")[3]
    trucks = queue.trucks.with_columns(
        risk=pl.when(pl.col("truck_id") == bad_truck).then(1.5).otherwise(pl.col("risk"))
    )
    with sessions() as session, pytest.raises(RiskError, match=rf"{bad_truck}.*risk\|max"):
        store.publish_scores(
            session=session,
            trucks=trucks,
            declarations=queue.declarations,
            items=queue.items,
            run_id="bad",
            model_version="m",
            published_by="test",
        )
    with sessions() as session:
        assert store.queue(session=session) == []


def test_republishing_rescores_waiting_trucks_and_keeps_overrides(
    sessions: sessionmaker[Session],
    queue: ScoredQueue,
    published: store.PublishSummary,
    users: dict[str, store.User],
) -> None:
    with sessions.begin() as session:
        truck = first_truck(session, "green")
        store.override_lane(
            session=session,
            truck_pk=truck.id,
            seen_version=truck.version,
            by=users["supervisor"],
            lane="red",
            reason="tip-off from the border guard",
        )
        overridden = truck.id
    with sessions.begin() as session:
        summary = publish(session, queue, run_id="run-2")
    assert summary.rescored == queue.trucks.height and summary.added == 0
    with sessions() as session:
        truck = store.get_truck(session=session, truck_pk=overridden)
        assert (truck.lane, truck.model_lane, truck.decided_by) == ("red", "green", "override")
        assert truck.run_id == "run-2"
        assert len(store.queue(session=session, limit=10_000)) == queue.trucks.height


def test_recording_a_result_stores_it_audits_it_and_exports_valid_outcomes(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions.begin() as session:
        truck = first_truck(session, "red")
        detail = store.get_truck(session=session, truck_pk=truck.id)
        violating = detail.declarations[0].declaration_id
        store.record_result(
            session=session,
            truck_pk=truck.id,
            seen_version=truck.version,
            by=users["officer"],
            result="undervaluation",
            extra_duty_usd=1234.5,
            notes="invoice shows a third of the market price",
            declaration_id=violating,
        )
        n_declarations = len(detail.declarations)
    with sessions() as session:
        exported = store.export_outcomes(session=session)
        log = store.entries(session=session, action="result_recorded")
        assert store.get_truck(session=session, truck_pk=truck.id).status == "inspected"
    InspectionOutcome.validate(exported)  # the next training reads exactly this
    assert exported.height == n_declarations
    hit = exported.filter(pl.col("declaration_id") == violating).row(0, named=True)
    assert (hit["result"], hit["extra_duty_usd"], hit["officer_id"]) == (
        "undervaluation",
        1234.5,
        "officer1",
    )
    assert exported.filter(pl.col("declaration_id") != violating)["result"].to_list() == [
        "clean"
    ] * (n_declarations - 1)
    assert [(e.actor, e.truck_id, e.details["result"]) for e in log] == [
        ("officer1", truck.truck_id, "undervaluation")
    ]


def test_a_whole_truck_violation_splits_the_extra_duty_by_value(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions.begin() as session:
        truck = max(
            store.queue(session=session, lane="red"),
            key=lambda t: len(store.get_truck(session=session, truck_pk=t.id).declarations),
        )
        store.record_result(
            session=session,
            truck_pk=truck.id,
            seen_version=truck.version,
            by=users["officer"],
            result="misclassification",
            extra_duty_usd=1000.0,
        )
    with sessions() as session:
        exported = store.export_outcomes(session=session)
    assert set(exported["result"]) == {"misclassification"}
    assert exported["extra_duty_usd"].sum() == pytest.approx(1000.0)


@pytest.mark.parametrize(
    ("role", "action", "error"),
    [
        ("analyst", "result", store.PermissionDeniedError),
        ("officer", "override", store.PermissionDeniedError),
        ("analyst", "override", store.PermissionDeniedError),
        ("supervisor", "result", None),
        ("supervisor", "override", None),
    ],
)
def test_roles_are_checked_in_the_service_layer(
    sessions: sessionmaker[Session],
    published: store.PublishSummary,
    users: dict[str, store.User],
    role: str,
    action: str,
    error: type[Exception] | None,
) -> None:
    with sessions() as session:
        truck = first_truck(session, "red")
        act: Callable[[], object]
        if action == "result":
            act = lambda: store.record_result(  # noqa: E731
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users[role],
                result="clean",
            )
        else:
            act = lambda: store.override_lane(  # noqa: E731
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users[role],
                lane="yellow",
                reason="capacity moved to documents",
            )
        if error is None:
            act()
        else:
            with pytest.raises(error, match=role):
                act()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"result": "smuggling"}, "result 'smuggling'"),
        ({"result": "clean", "extra_duty_usd": 10.0}, "clean inspection"),
        ({"result": "other", "extra_duty_usd": -1.0}, "extra duty"),
        ({"result": "other", "extra_duty_usd": float("nan")}, "extra duty"),
        ({"result": "other", "declaration_id": "not-on-this-truck"}, "not on truck"),
    ],
)
def test_bad_results_are_refused(
    sessions: sessionmaker[Session],
    published: store.PublishSummary,
    users: dict[str, store.User],
    kwargs: dict[str, object],
    message: str,
) -> None:
    with sessions() as session:
        truck = first_truck(session, "red")
        with pytest.raises(store.DecisionError, match=message):
            store.record_result(
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users["officer"],
                **kwargs,  # type: ignore[arg-type]
            )


def test_a_green_truck_needs_an_override_before_a_result(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions() as session:
        truck = first_truck(session, "green")
        with pytest.raises(store.DecisionError, match="green lane"):
            store.record_result(
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users["officer"],
                result="clean",
            )


def test_an_override_needs_a_reason(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions() as session:
        truck = first_truck(session, "green")
        with pytest.raises(store.DecisionError, match="reason"):
            store.override_lane(
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users["supervisor"],
                lane="red",
                reason="  ",
            )


def test_a_stale_version_gets_a_conflict_naming_who_changed_the_truck(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions() as session:
        truck = first_truck(session, "red")
        pk, seen = truck.id, truck.version
    with sessions.begin() as session:
        store.record_result(
            session=session, truck_pk=pk, seen_version=seen, by=users["officer"], result="clean"
        )
    with sessions() as session, pytest.raises(store.ConflictError, match="officer1") as caught:
        store.record_result(
            session=session,
            truck_pk=pk,
            seen_version=seen,
            by=users["supervisor"],
            result="other",
            extra_duty_usd=5.0,
        )
    assert caught.value.actor == "officer1"
    with sessions() as session:
        assert [i.result for i in store.outcomes.latest_inspections(session=session)] == ["clean"]


def test_truly_concurrent_results_let_exactly_one_through(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    """Both sessions read the same version, then write at the same moment."""
    with sessions() as session:
        truck = first_truck(session, "red")
        pk, seen = truck.id, truck.version
    officers = [users["officer"], users["supervisor"]]
    barrier = threading.Barrier(len(officers))
    outcomes: dict[str, str] = {}

    def save(officer: store.User) -> None:
        with sessions() as session:
            store.get_truck(session=session, truck_pk=pk)  # the page both officers see
            barrier.wait()
            try:
                store.record_result(
                    session=session,
                    truck_pk=pk,
                    seen_version=seen,
                    by=officer,
                    result="other",
                    extra_duty_usd=1.0,
                    notes=officer.username,
                )
                session.commit()
                outcomes[officer.username] = "saved"
            except store.ConflictError:
                session.rollback()
                outcomes[officer.username] = "conflict"

    threads = [threading.Thread(target=save, args=(o,)) for o in officers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["conflict", "saved"]
    with sessions() as session:
        saved = store.outcomes.latest_inspections(session=session)
        winner = next(name for name, what in outcomes.items() if what == "saved")
        assert [i.notes for i in saved] == [winner]
        assert store.audit.count(session=session, action="result_recorded") == 1


def test_the_audit_log_refuses_changes_in_the_orm_and_in_the_database(
    sessions: sessionmaker[Session], engine: Engine, published: store.PublishSummary
) -> None:
    with sessions() as session:
        entry = session.get(AuditEntry, 1)
        assert entry is not None
        entry.actor = "someone else"
        with pytest.raises(store.AuditTamperingError):
            session.flush()
    statements = ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
    with sessions() as session:
        assert store.audit.count(session=session, action="lane_assigned") == published.added
        assert store.audit.count(session=session) == published.added + len(store.ROLES)


def test_track_record_adds_console_results_to_imported_history(
    sessions: sessionmaker[Session],
    queue: ScoredQueue,
    published: store.PublishSummary,
    users: dict[str, store.User],
) -> None:
    with sessions.begin() as session:
        imported = store.import_history(
            session=session,
            declarations=queue.history_declarations,
            outcomes=queue.history_outcomes,
        )
        truck = store.get_truck(session=session, truck_pk=first_truck(session, "red").id)
        importer = truck.declarations[0].importer_id
        before = store.track_records(session=session, importer_ids=[importer])[importer]
        store.record_result(
            session=session,
            truck_pk=truck.id,
            seen_version=truck.version,
            by=users["officer"],
            result="false_origin",
            extra_duty_usd=300.0,
            declaration_id=truck.declarations[0].declaration_id,
        )
    with sessions() as session:
        after = store.track_records(session=session, importer_ids=[importer])[importer]
    assert imported == queue.history_declarations["importer_id"].n_unique()
    assert after.violations == before.violations + 1
    assert after.extra_duty_usd == pytest.approx(before.extra_duty_usd + 300.0)
    assert after.inspected >= before.inspected + 1


def test_dashboard_counts_hit_rates_by_selection(
    sessions: sessionmaker[Session], published: store.PublishSummary, users: dict[str, store.User]
) -> None:
    with sessions.begin() as session:
        red = store.queue(session=session, lane="red")
        targeted = next(t for t in red if t.selection == "targeted")
        random_pick = next(t for t in red if t.selection == "random")
        for truck, result, duty in (
            (targeted, "undervaluation", 500.0),
            (random_pick, "clean", 0.0),
        ):
            store.record_result(
                session=session,
                truck_pk=truck.id,
                seen_version=truck.version,
                by=users["officer"],
                result=result,
                extra_duty_usd=duty,
            )
    with sessions() as session:
        figures = store.dashboard(session=session)
    rates = {h.selection: (h.inspections, h.violations) for h in figures.hit_rates}
    assert rates["targeted"] == (1, 1) and rates["random"] == (1, 0)
    assert figures.duty_recovered_usd == 500.0
    assert figures.inspected == 2 and figures.model_version == "grey-import-risk/1"
    assert figures.share_inspected == pytest.approx(2 / published.added)


def test_a_vehicle_back_with_new_papers_is_a_new_visit_and_old_papers_a_rescore(
    sessions: sessionmaker[Session], queue: ScoredQueue, users: dict[str, store.User]
) -> None:
    truck_id = queue.trucks.get_column("truck_id")[0]
    one = queue.trucks.filter(truck_id=truck_id)
    papers = queue.declarations.filter(truck_id=truck_id)
    goods = queue.items.join(papers.select("declaration_id"), on="declaration_id")

    def publish_one(run_id: str, suffix: str = "") -> store.PublishSummary:
        renamed = pl.col("declaration_id") + suffix
        with sessions.begin() as session:
            return store.publish_scores(
                session=session,
                trucks=one,
                declarations=papers.with_columns(renamed),
                items=goods.with_columns(renamed),
                run_id=run_id,
                model_version="m",
                published_by="test",
            )

    assert publish_one("first").added == 1
    assert publish_one("again").rescored == 1  # the same papers: the same visit
    with sessions.begin() as session:
        visit = store.find_truck(session=session, crossing=one["crossing"][0], truck_id=truck_id)
        assert visit is not None
        if visit.lane != "green":
            store.record_result(
                session=session,
                truck_pk=visit.id,
                seen_version=visit.version,
                by=users["officer"],
                result="clean",
            )
    assert publish_one("next-week", suffix="-B").added == 1  # new papers: a new visit
    with sessions() as session:
        visits = [
            t
            for t in store.queue(session=session, include_inspected=True)
            if t.truck_id == truck_id
        ]
    assert len(visits) == 2


def test_papers_already_on_another_truck_are_refused(
    sessions: sessionmaker[Session], queue: ScoredQueue, published: store.PublishSummary
) -> None:
    moved = queue.trucks.get_column("truck_id")[1]
    papers = queue.declarations.filter(truck_id=moved).with_columns(truck_id=pl.lit("ELSEWHERE"))
    truck = queue.trucks.filter(truck_id=moved).with_columns(truck_id=pl.lit("ELSEWHERE"))
    goods = queue.items.join(papers.select("declaration_id"), on="declaration_id")
    with sessions() as session, pytest.raises(RiskError, match="already.*not on ELSEWHERE"):
        store.publish_scores(
            session=session,
            trucks=truck,
            declarations=papers,
            items=goods,
            run_id="moved",
            model_version="m",
            published_by="test",
        )
