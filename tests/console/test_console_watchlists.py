"""The watch-list page over HTTP: everyone reads, supervisors add, change and retire with a
reason; other roles are refused on the server; the entries reach published and API-scored
trucks with their reasons."""

from __future__ import annotations

import re

import httpx
import polars as pl
import pytest
from console_support import Console, csrf
from store_data import scored_queue

# The trained champion and a console serving it, shared with the scoring tests.
from test_console_scoring import Champion, Live, champion, live, one_truck, score  # noqa: F401

from risk import store
from risk.store.models import WatchListEntry

# The champion fixture (imported above) trains with MLflow, whose tracking store maps a
# relationship with ``noload``, deprecated in SQLAlchemy 2.1; as an error it would break the
# mapping of every ORM class in the process.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)

ENTRY = {
    "name": "watch-imp",
    "lane": "red",
    "reason_en": "importer on the watch list after a seizure",
    "reason_ru": "импортёр в списке наблюдения после изъятия",
    "importer_ids": "IMP-000123",
    "hs_prefixes": "",
    "origin_countries": "",
    "dispatch_countries": "",
    "crossings": "",
    "valid_from": "",
    "valid_until": "",
    "reason": "seizure report 2026/114",
}


def add_form(page: str, **values: str) -> dict[str, str]:
    return {"csrf_token": csrf(page), **ENTRY, **values}


def add_entry(client: httpx.Client, **values: str) -> httpx.Response:
    page = client.get("/watchlists").text
    return client.post("/watchlists", data=add_form(page, **values))


def entries(console: Console) -> list[WatchListEntry]:
    with console.sessions() as session:
        return [
            *store.list_entries(session=session),
            *store.list_entries(session=session, retired=True),
        ]


def test_the_navigation_links_the_watch_lists_for_every_role(console: Console) -> None:
    for username in ("officer1", "analyst1", "supervisor1"):
        page = console.login(username).get("/queue").text
        assert '<a href="/watchlists"' in page and "Списки наблюдения" in page


def test_a_supervisor_adds_an_entry_that_is_listed_and_audited(console: Console) -> None:
    client = console.login("supervisor1")
    response = add_entry(client)
    assert response.status_code == 200 and "saved=added" in str(response.url)
    assert "Правило добавлено." in response.text
    active = re.search(
        r'<table class="watchlist" id="active-entries">.*?</table>', response.text, re.S
    )
    assert active and "watch-imp" in active.group(0) and "IMP-000123" in active.group(0)
    assert "импортёр в списке наблюдения после изъятия" in active.group(0)  # the page's language
    (entry,) = entries(console)
    assert (entry.created_by, entry.lane, entry.importer_ids) == (
        "supervisor1",
        "red",
        ["IMP-000123"],
    )
    audit = client.get("/audit", params={"action": "watch_list_added"}).text
    assert "supervisor1" in audit and "seizure report 2026/114" in audit and "watch-imp" in audit


def test_an_officer_sees_the_entries_read_only(console: Console) -> None:
    add_entry(console.login("supervisor1"))
    page = console.login("officer1").get("/watchlists", params={"lang": "en"}).text
    assert "watch-imp" in page and "importer on the watch list after a seizure" in page
    assert "Supervisors keep the watch lists; you can view them." in page
    assert 'action="/watchlists' not in page and "/edit" not in page


def test_an_entry_naming_no_criterion_is_refused_with_the_reason(console: Console) -> None:
    client = console.login("supervisor1")
    response = add_entry(client, importer_ids="")
    assert response.status_code == 400
    assert "names no criterion" in response.text and "would match every truck" in response.text
    assert 'id="add-entry" open' in response.text  # the form stays open with what was typed
    assert 'value="watch-imp"' in response.text
    assert entries(console) == []


def test_an_entry_without_a_reason_for_the_change_is_refused(console: Console) -> None:
    response = add_entry(console.login("supervisor1"), reason="")
    assert response.status_code == 400 and "needs a reason" in response.text
    assert entries(console) == []


@pytest.mark.parametrize("username", ["officer1", "analyst1"])
def test_officers_and_analysts_get_403_on_every_change(console: Console, username: str) -> None:
    add_entry(console.login("supervisor1"))
    (entry,) = entries(console)
    client = console.login(username)
    page = client.get("/watchlists").text
    token = csrf(page)
    attempts = [
        client.post("/watchlists", data={**add_form(page), "name": "other"}),
        client.post(f"/watchlists/{entry.id}", data={**add_form(page), "version": "1"}),
        client.post(
            f"/watchlists/{entry.id}/retire",
            data={"csrf_token": token, "version": "1", "reason": "not mine to retire"},
        ),
        client.get(f"/watchlists/{entry.id}/edit"),
    ]
    for response in attempts:
        assert response.status_code == 403, response.request.url
        assert "Недостаточно прав" in response.text
    (unchanged,) = entries(console)
    assert unchanged.version == 1 and unchanged.retired_at is None


def test_a_change_without_csrf_token_is_refused(console: Console) -> None:
    client = console.login("supervisor1")
    form = add_form(client.get("/watchlists").text)
    del form["csrf_token"]
    assert client.post("/watchlists", data=form).status_code == 403
    assert entries(console) == []


def test_a_supervisor_edits_through_htmx_and_a_stale_form_gets_a_conflict(
    console: Console,
) -> None:
    client = console.login("supervisor1")
    add_entry(client)
    (entry,) = entries(console)
    listing = client.get("/watchlists").text
    assert f'hx-get="/watchlists/{entry.id}/edit"' in listing and 'hx-target="#editor"' in listing
    editor = client.get(f"/watchlists/{entry.id}/edit", headers={"HX-Request": "true"}).text
    assert "<html" not in editor and 'name="version" value="1"' in editor
    assert 'value="IMP-000123"' in editor  # the form shows the entry as it stands
    change = add_form(editor, version="1", hs_prefixes="8517 8806", reason="narrowed to phones")
    response = client.post(f"/watchlists/{entry.id}", data=change)
    assert response.status_code == 200 and "Правило изменено." in response.text
    (changed,) = entries(console)
    assert changed.hs_prefixes == ["8517", "8806"] and changed.version == 2
    stale = client.post(f"/watchlists/{entry.id}", data={**change, "crossings": "KZRU-ZHS"})
    assert stale.status_code == 409 and "nothing was saved" in stale.text
    audit = client.get("/audit", params={"action": "watch_list_changed"}).text
    assert "narrowed to phones" in audit and "8517, 8806" in audit


def test_a_retired_entry_moves_to_the_retired_list(console: Console) -> None:
    client = console.login("supervisor1")
    page = add_entry(client).text
    (entry,) = entries(console)
    retire = {"csrf_token": csrf(page), "version": "1", "reason": ""}
    assert client.post(f"/watchlists/{entry.id}/retire", data=retire).status_code == 400
    retire["reason"] = "importer cleared by the investigation"
    response = client.post(f"/watchlists/{entry.id}/retire", data=retire)
    assert response.status_code == 200 and "Правило снято." in response.text
    retired = re.search(r'id="retired-entries">.*?</table>', response.text, re.S)
    assert retired and "watch-imp" in retired.group(0)
    assert 'id="active-entries"' not in response.text
    audit = client.get("/audit", params={"action": "watch_list_retired"}).text
    assert "importer cleared by the investigation" in audit


def test_a_published_truck_on_the_list_states_the_entrys_reason(console: Console) -> None:
    queue = scored_queue()
    target = queue.trucks.filter(pl.col("lane") == "green").row(0, named=True)
    importer = queue.declarations.filter(pl.col("truck_id") == target["truck_id"])["importer_id"][0]
    client = console.login("supervisor1")
    add_entry(client, importer_ids=importer)
    with console.sessions.begin() as session:  # the next `risk publish` of the same queue
        store.publish_scores(
            session=session,
            trucks=queue.trucks,
            declarations=queue.declarations,
            items=queue.items,
            run_id="run-2",
            model_version="grey-import-risk-canonical/1",
            published_by="test",
        )
        truck = store.find_truck(
            session=session, crossing=target["crossing"], truck_id=target["truck_id"]
        )
        assert truck is not None
    page = console.login("officer1").get(f"/trucks/{truck.id}", params={"lang": "en"}).text
    assert re.search(r"<h1>.*lane-red", page, re.S)
    first_reason = re.search(r'<ul class="reasons"><li>([^<]+)</li>', page)
    assert first_reason is not None
    assert first_reason.group(1) == ("Rule watch-imp: importer on the watch list after a seizure")


def test_the_api_scores_a_listed_truck_red_with_the_entrys_reason(
    live: Live,  # noqa: F811 (the fixtures imported above)
    champion: Champion,  # noqa: F811
) -> None:
    items = one_truck(champion.queue)
    before = score(live, items, lang="en").json()
    with live.sessions.begin() as session:
        supervisor = next(u for u in store.list_users(session=session) if u.role == "supervisor")
        store.add_entry(
            session=session,
            by=supervisor,
            values={**ENTRY, "name": "api-watch", "importer_ids": items[0]["importer_id"]},
            reason="tip-off from the border service",
        )
    after = score(live, items, lang="en").json()
    assert (after["lane"], after["decided_by"], after["selection"]) == ("red", "rule", "rule")
    assert after["reasons"][0] == "Rule api-watch: importer on the watch list after a seizure"
    assert after["risk"] == before["risk"]  # the rule sets the lane, not the score
    with live.sessions.begin() as session:
        (entry,) = store.list_entries(session=session)
        store.retire_entry(
            session=session, entry_id=entry.id, seen_version=1, by=supervisor, reason="cleared"
        )
    assert score(live, items, lang="en").json() == before  # retired: it applies no more
