"""Watch lists in the store, on SQLite and PostgreSQL: entries are created, changed and
retired by supervisors only, audited with their reasons, never deleted, and applied to the
trucks published into the queue; the rules in force export to a file `risk score` reads."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from store_data import (
    ScoredQueue,
    prepare_store,
    publish,
    scored_queue,
)
from typer.testing import CliRunner

from risk import store
from risk.cli import app as cli
from risk.rules import HardRule, RuleSet, dump_rules, load_rules, merge_rules
from risk.settings import get_settings
from risk.store.models import WatchListEntry

REASON = "seizure report 2026/114"


@pytest.fixture
def users(sessions: sessionmaker[Session]) -> dict[str, store.User]:
    with sessions() as session:
        return {user.role: user for user in store.list_users(session=session)}


@pytest.fixture
def queue() -> ScoredQueue:
    return scored_queue()


def watch(**values: object) -> dict[str, object]:
    return {
        "name": "watch-importer",
        "lane": "red",
        "reason_en": "importer on the watch list after a seizure",
        "reason_ru": "импортёр в списке наблюдения после изъятия",
        "importer_ids": "IMP-000123",
        **values,
    }


def add(sessions: sessionmaker[Session], by: store.User, **values: object) -> WatchListEntry:
    with sessions.begin() as session:
        return store.add_entry(session=session, by=by, values=watch(**values), reason=REASON)


def test_a_supervisor_adds_an_entry_and_it_is_audited(
    sessions: sessionmaker[Session], users: dict[str, store.User]
) -> None:
    entry = add(
        sessions,
        users["supervisor"],
        importer_ids="IMP-000123, IMP-000124 IMP-000123",
        origin_countries="cn; kz",
    )
    with sessions() as session:
        (active,) = store.list_entries(session=session)
        assert active.id == entry.id and active.created_by == "supervisor1"
        assert active.importer_ids == ["IMP-000123", "IMP-000124"]  # split, deduplicated
        assert active.origin_countries == ["CN", "KZ"]  # upper-cased
        (logged,) = store.entries(session=session, action="watch_list_added")
        assert logged.actor == "supervisor1"
        assert logged.details["reason"] == REASON
        assert logged.details["after"]["importer_ids"] == ["IMP-000123", "IMP-000124"]
        rules = store.active_rules(session=session)
    assert [r.name for r in rules.rules] == ["watch-importer"]
    assert rules.rules[0].reason("ru").startswith("Правило watch-importer: импортёр")


@pytest.mark.parametrize("role", ["officer", "analyst"])
def test_officers_and_analysts_may_not_edit_watch_lists(
    sessions: sessionmaker[Session], users: dict[str, store.User], role: str
) -> None:
    with sessions() as session, pytest.raises(store.PermissionDeniedError, match=role):
        store.add_entry(session=session, by=users[role], values=watch(), reason=REASON)
    entry = add(sessions, users["supervisor"])
    with sessions() as session, pytest.raises(store.PermissionDeniedError):
        store.retire_entry(
            session=session, entry_id=entry.id, seen_version=1, by=users[role], reason=REASON
        )
    with sessions() as session:
        assert len(store.list_entries(session=session)) == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"importer_ids": ""}, "names no criterion"),
        ({"lane": "yellow"}, "lane"),
        ({"reason_en": "  "}, "reason_en"),
        ({"name": "two words"}, "name"),
        ({"hs_prefixes": "85x7"}, "HS prefix"),
        ({"origin_countries": "CHN"}, "ISO 3166"),
        ({"valid_from": date(2026, 5, 1), "valid_until": date(2026, 4, 1)}, "before"),
    ],
)
def test_a_bad_entry_is_refused_with_a_clear_message(
    sessions: sessionmaker[Session],
    users: dict[str, store.User],
    values: dict[str, object],
    message: str,
) -> None:
    with sessions() as session, pytest.raises(store.WatchListError, match=message):
        store.add_entry(
            session=session, by=users["supervisor"], values=watch(**values), reason=REASON
        )


def test_a_change_needs_a_reason_and_keeps_before_and_after(
    sessions: sessionmaker[Session], users: dict[str, store.User]
) -> None:
    entry = add(sessions, users["supervisor"])
    with sessions() as session, pytest.raises(store.WatchListError, match="reason"):
        store.change_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            values=watch(hs_prefixes="8517"),
            reason="",
        )
    with sessions.begin() as session:
        changed = store.change_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            values=watch(hs_prefixes="8517", name="ignored: the name stays"),
            reason="narrowed to phones",
        )
        assert changed.version == 2 and changed.name == "watch-importer"
    with sessions() as session:
        (logged,) = store.entries(session=session, action="watch_list_changed")
        assert logged.details["reason"] == "narrowed to phones"
        assert "hs_prefixes" not in logged.details["before"]
        assert logged.details["after"]["hs_prefixes"] == ["8517"]
        assert store.active_rules(session=session).rules[0].hs_prefixes == ("8517",)


def test_a_stale_form_gets_a_conflict_and_saves_nothing(
    sessions: sessionmaker[Session], users: dict[str, store.User]
) -> None:
    entry = add(sessions, users["supervisor"])
    with sessions.begin() as session:
        store.change_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            values=watch(crossings="KZRU-ZHS"),
            reason="only at Zhaisan",
        )
    with sessions() as session, pytest.raises(store.WatchListConflictError, match="supervisor1"):
        store.retire_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            reason=REASON,
        )
    with sessions() as session:
        assert store.get_entry(session=session, entry_id=entry.id).retired_at is None


def test_retired_entries_stay_listed_stop_applying_and_cannot_be_deleted(
    sessions: sessionmaker[Session], users: dict[str, store.User], engine: Engine
) -> None:
    entry = add(sessions, users["supervisor"])
    with sessions.begin() as session:
        store.retire_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            reason="importer cleared by the investigation",
        )
    with sessions() as session:
        assert store.list_entries(session=session) == []
        (retired,) = store.list_entries(session=session, retired=True)
        assert retired.retired_by == "supervisor1"
        assert store.active_rules(session=session).rules == ()
        assert store.rules_in_force(session=session).rules == ()
        (logged,) = store.entries(session=session, action="watch_list_retired")
        assert logged.details["reason"] == "importer cleared by the investigation"
        with pytest.raises(store.WatchListError, match="retired"):
            store.change_entry(
                session=session,
                entry_id=entry.id,
                seen_version=2,
                by=users["supervisor"],
                values=watch(),
                reason=REASON,
            )
    with sessions() as session, pytest.raises(store.WatchListError, match="taken"):
        store.add_entry(session=session, by=users["supervisor"], values=watch(), reason=REASON)
    with pytest.raises(DBAPIError, match="never deleted"), engine.begin() as connection:
        connection.execute(text("DELETE FROM watch_list_entries"))


def test_entries_apply_by_their_validity_dates(
    sessions: sessionmaker[Session], users: dict[str, store.User]
) -> None:
    add(sessions, users["supervisor"], name="spring", valid_until=date(2026, 5, 31))
    add(sessions, users["supervisor"], name="autumn", valid_from=date(2026, 9, 1))
    with sessions() as session:
        names = lambda day: [r.name for r in store.active_rules(session=session, on=day).rules]  # noqa: E731
        assert names(date(2026, 4, 1)) == ["spring"]
        assert names(date(2026, 7, 1)) == []
        assert names(date(2026, 11, 1)) == ["autumn"]
        assert names(None) == ["spring", "autumn"]


def test_rules_in_force_are_the_files_then_the_stores_and_follow_changes(
    sessions: sessionmaker[Session], users: dict[str, store.User]
) -> None:
    base = RuleSet(
        rules=(HardRule(name="file-rule", lane="green", reason_en="AEO", importer_ids=("I7",)),)
    )
    with sessions() as session:
        assert store.rules_in_force(session=session, base=base) == base
    entry = add(sessions, users["supervisor"])
    with sessions() as session:
        names = [r.name for r in store.rules_in_force(session=session, base=base).rules]
        assert names == ["file-rule", "watch-importer"]
    with sessions.begin() as session:
        store.change_entry(
            session=session,
            entry_id=entry.id,
            seen_version=1,
            by=users["supervisor"],
            values=watch(lane="green"),
            reason="trusted after audit",
        )
    with sessions() as session:
        assert store.rules_in_force(session=session).rules[0].lane == "green"


def _published_lanes(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str, list[str]]]:
    with sessions() as session:
        return {
            t.truck_id: (t.lane, t.decided_by, list(t.reasons))
            for t in store.queue(session=session, limit=10_000)
        }


def test_publishing_applies_the_active_watch_lists(
    sessions: sessionmaker[Session], users: dict[str, store.User], queue: ScoredQueue
) -> None:
    green = queue.trucks.filter(pl.col("lane") == "green").get_column("truck_id").to_list()
    target = green[0]
    importer = queue.declarations.filter(pl.col("truck_id") == target).get_column("importer_id")[0]
    hit = queue.declarations.filter(pl.col("importer_id") == importer)
    watched_trucks = set(hit.get_column("truck_id"))
    with sessions.begin() as session:
        assert publish(session, queue, "before").watch_listed == 0
    before = _published_lanes(sessions)
    assert before[target][0] == "green"

    add(sessions, users["supervisor"], importer_ids=importer)
    with sessions.begin() as session:
        summary = publish(session, queue, "after")
    assert summary.watch_listed == len(watched_trucks)
    after = _published_lanes(sessions)
    for truck_id, (lane, decided_by, reasons) in after.items():
        if truck_id in watched_trucks:
            assert (lane, decided_by) == ("red", "rule")
            # The scores' reasons are English: the rule's reason follows them.
            assert reasons[0] == "Rule watch-importer: importer on the watch list after a seizure"
        else:
            assert after[truck_id] == before[truck_id]
    with sessions() as session:
        truck = store.find_truck(
            session=session, crossing=_crossing(queue, target), truck_id=target
        )
        assert truck is not None and truck.selection == "rule"
        detail = store.get_truck(session=session, truck_pk=truck.id)
        item_reasons = [
            i.reasons[0] for d in detail.declarations if d.importer_id == importer for i in d.items
        ]
        assert item_reasons and all(r.startswith("Rule watch-importer") for r in item_reasons)
        logged = store.entries(session=session, action="lane_assigned", truck_id=target)[0]
        assert logged.actor == "rule" and logged.lane_after == "red"
        assert logged.details["reasons"][0].startswith("Rule watch-importer")


def _crossing(queue: ScoredQueue, truck_id: str) -> str:
    return queue.trucks.filter(pl.col("truck_id") == truck_id).get_column("crossing")[0]


def test_a_green_entry_releases_a_truck_only_when_every_item_is_on_it(
    sessions: sessionmaker[Session], users: dict[str, store.User], queue: ScoredQueue
) -> None:
    per_truck = queue.declarations.group_by("truck_id").agg(pl.col("importer_id").unique())
    one_importer = per_truck.filter(pl.col("importer_id").list.len() == 1)
    reds = queue.trucks.filter(pl.col("lane") == "red", pl.col("decided_by") == "model")
    candidates = one_importer.join(reds.select("truck_id"), on="truck_id")
    assert candidates.height, "the test queue has a model-red truck of one importer"
    target, (importer,) = candidates.row(0)
    add(sessions, users["supervisor"], name="aeo", lane="green", importer_ids=importer)
    with sessions.begin() as session:
        publish(session, queue, "run")
    lane, decided_by, reasons = _published_lanes(sessions)[target]
    assert (lane, decided_by) == ("green", "rule")
    assert reasons == ["Rule aeo: importer on the watch list after a seizure"]


def test_dumped_rules_load_back_equal() -> None:
    rules = RuleSet(
        rules=(
            HardRule(
                name="priority-8517",
                lane="red",
                reason_en='phones "via" KZ\\ back\tslash\x7f',
                reason_ru="связь и дроны, отправка из KZ",
                hs_prefixes=("8517", "8806"),
                origin_countries=("CN",),
                dispatch_countries=("KZ",),
                valid_from=date(2026, 1, 1),
                valid_until=date(2026, 6, 30),
            ),
            HardRule(name="aeo", lane="green", reason_en="AEO", importer_ids=("IMP-7",)),
        )
    )
    text_ = dump_rules(rules, header="two rules\nfor a test")
    assert text_.startswith("# two rules\n# for a test\n")
    loaded = RuleSet(rules=tuple(HardRule(**r) for r in tomllib.loads(text_)["rule"]))
    assert loaded == rules
    assert merge_rules(rules, RuleSet()).rules == rules.rules


def test_rules_export_writes_the_file_and_the_stores_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    url = str(get_settings().database_url)
    prepare_store(url)
    engine = store.make_engine(url)
    sessions = store.session_factory(engine)
    with sessions() as session:
        supervisor = next(u for u in store.list_users(session=session) if u.role == "supervisor")
    add(sessions, supervisor, name="spring", valid_until=date(2026, 5, 31))
    add(sessions, supervisor, name="autumn", valid_from=date(2026, 9, 1))
    engine.dispose()
    base = tmp_path / "base.toml"
    base.write_text(
        '[[rule]]\nname = "aeo"\nlane = "green"\nreason_en = "AEO"\nimporter_ids = ["I7"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "rules" / "in-force.toml"
    result = CliRunner().invoke(cli, ["rules", "export", "-o", str(out), "--rules", str(base)])
    assert result.exit_code == 0, result.output
    assert "3 rules written" in result.output
    assert [r.name for r in load_rules(out).rules] == ["aeo", "spring", "autumn"]
    dated = CliRunner().invoke(cli, ["rules", "export", "-o", str(out), "--on", "2026-10-01"])
    assert dated.exit_code == 0, dated.output
    assert [r.name for r in load_rules(out).rules] == ["autumn"]
    missing = CliRunner().invoke(
        cli, ["rules", "export", "-o", str(out), "--rules", str(tmp_path / "nope.toml")]
    )
    assert missing.exit_code == 2 and "rules file not found" in missing.output
