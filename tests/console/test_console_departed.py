"""A newer queue of a crossing replaces the older one: its trucks that are not in the new
queue have left, are marked departed (audited) and leave the queue page; other crossings
and inspected trucks keep theirs."""

from __future__ import annotations

import polars as pl
import store_data
from console_support import Console, csrf
from store_data import ScoredQueue, scored_queue

from risk import store


def newer_queue(crossing: str, without: str) -> ScoredQueue:
    """The test queue's trucks at ``crossing``, less the truck ``without``."""
    queue = scored_queue()
    keep = (pl.col("crossing") == crossing) & (pl.col("truck_id") != without)
    declarations = queue.declarations.filter(keep)
    return ScoredQueue(
        trucks=queue.trucks.filter(keep),
        declarations=declarations,
        items=queue.items.join(declarations.select("declaration_id"), on="declaration_id"),
        history_declarations=queue.history_declarations,
        history_outcomes=queue.history_outcomes,
    )


def publish(console: Console, queue: ScoredQueue, run_id: str) -> store.PublishSummary:
    with console.sessions.begin() as session:
        return store_data.publish(
            session,
            queue,
            run_id,
            model_version="grey-import-risk-canonical/2",
            published_by="cli:test",
            replaces_queue=True,
        )


def waiting(console: Console) -> dict[str, tuple[str, str]]:
    with console.sessions() as session:
        return {
            t.truck_id: (t.crossing, t.status) for t in store.queue(session=session, limit=10_000)
        }


def test_trucks_missing_from_a_newer_queue_depart_and_leave_the_queue_page(
    console: Console,
) -> None:
    before = waiting(console)
    crossing = scored_queue().trucks.get_column("crossing").mode().sort().first()
    gone = sorted(t for t, (c, _) in before.items() if c == crossing)[0]
    with console.sessions() as session:
        officer = next(u for u in store.list_users(session=session) if u.role == "officer")
        # A truck inspected before the newer queue came: it keeps its record.
        truck = next(
            t
            for t in store.queue(session=session, crossing=crossing)
            if t.lane != "green" and t.truck_id != gone
        )
        inspected = truck.truck_id
    with console.sessions.begin() as session:
        store.record_result(
            session=session,
            truck_pk=truck.id,
            seen_version=truck.version,
            by=officer,
            result="clean",
        )

    summary = publish(console, newer_queue(crossing, without=gone), "run-2")
    assert summary.departed == 1

    after = waiting(console)
    assert gone not in after and inspected not in after
    assert {t for t, (c, _) in after.items() if c != crossing} == {
        t for t, (c, _) in before.items() if c != crossing
    }  # the other crossings' queues are untouched
    with console.sessions() as session:
        left = store.find_truck(session=session, crossing=crossing, truck_id=gone)
        kept = store.find_truck(session=session, crossing=crossing, truck_id=inspected)
        assert left is not None and left.status == "departed"
        assert kept is not None and kept.status == "inspected"
        (entry,) = store.entries(session=session, action="truck_departed")
        assert (entry.truck_id, entry.actor, entry.details["run_id"]) == (gone, "cli:test", "run-2")
        assert entry.details["last_run_id"] == "run-1"

    officer_page = console.login("officer1")
    rows = officer_page.get("/queue", params={"crossing": crossing}).text
    assert f">{gone}<" not in rows
    truck_page = officer_page.get(f"/trucks/{left.id}", params={"lang": "en"}).text
    assert "left the queue" in truck_page
    supervisor = console.login("supervisor1")
    page = supervisor.get(f"/trucks/{left.id}").text
    assert f'action="/trucks/{left.id}/override"' not in page
    refused = supervisor.post(
        f"/trucks/{left.id}/override",
        data={
            "csrf_token": csrf(page),
            "version": str(left.version),
            "lane": "red" if left.lane != "red" else "yellow",
            "reason": "it came back, check it",
        },
    )
    assert refused.status_code == 400 and "has left the queue" in refused.text
    audit = officer_page.get("/audit", params={"action": "truck_departed", "lang": "en"}).text
    assert gone in audit and "newer queue (run-2)" in audit


def test_a_departed_truck_back_in_a_later_queue_waits_again(console: Console) -> None:
    crossing = scored_queue().trucks.get_column("crossing").mode().sort().first()
    gone = sorted(t for t, (c, _) in waiting(console).items() if c == crossing)[0]
    publish(console, newer_queue(crossing, without=gone), "run-2")
    assert gone not in waiting(console)
    summary = publish(console, newer_queue(crossing, without="-"), "run-3")
    assert summary.departed == 0 and summary.skipped_inspected == 0
    assert waiting(console)[gone] == (crossing, "waiting")


def test_an_on_the_spot_publication_replaces_nothing(console: Console) -> None:
    queue = scored_queue()
    before = waiting(console)
    one = queue.trucks.head(1)
    declarations = queue.declarations.join(
        one.select("truck_id", "crossing"), on=["truck_id", "crossing"]
    )
    with console.sessions.begin() as session:
        summary = store.publish_scores(
            session=session,
            trucks=one,
            declarations=declarations,
            items=queue.items.join(declarations.select("declaration_id"), on="declaration_id"),
            run_id="api-1",
            model_version="grey-import-risk-canonical/2",
            published_by="officer1",
        )
    assert summary.departed == 0 and summary.rescored == 1
    assert waiting(console) == before
