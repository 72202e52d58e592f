"""The console's pages over HTTP: log-in, queue, truck, results, overrides, refusals."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from console_support import PASSWORD, Console, csrf

from risk import store
from risk.schemas import InspectionOutcome

ROW = re.compile(r'<tr class="row-(\w+)">.*?href="/trucks/(\d+)"', re.S)


def queue_rows(html: str) -> list[tuple[str, int]]:
    return [(lane, int(pk)) for lane, pk in ROW.findall(html)]


def first_in_lane(client: httpx.Client, lane: str) -> int:
    rows = queue_rows(client.get("/queue", params={"lane": lane}).text)
    assert rows, f"no {lane} truck in the test queue"
    return rows[0][1]


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match
    return match.group(1)


def result_form(page: str, **values: str) -> dict[str, str]:
    return {
        "csrf_token": csrf(page),
        "version": version_of(page),
        "result": "clean",
        "extra_duty_usd": "0",
        "declaration_id": "",
        "notes": "",
        **values,
    }


def test_pages_send_a_visitor_to_the_login_page(console: Console) -> None:
    response = console.client().get("/trucks/1")
    assert response.url.path == "/login"
    assert response.url.params["next"] == "/trucks/1"
    assert "Вход для инспекторов" in response.text


def test_a_wrong_password_is_refused_without_a_session(console: Console) -> None:
    client = console.client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": "officer1", "password": "wrong password!", "csrf_token": csrf(page.text)},
    )
    assert response.status_code == 401
    assert "Неверное имя пользователя или пароль" in response.text
    assert "risk_session" not in client.cookies
    assert client.get("/queue").url.path == "/login"


def test_a_login_without_csrf_token_is_refused(console: Console) -> None:
    client = console.client()
    client.get("/login")
    response = client.post("/login", data={"username": "officer1", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert "risk_session" not in client.cookies


def test_a_csrf_token_of_another_browser_is_refused(console: Console) -> None:
    stolen = csrf(console.client().get("/login").text)
    client = console.client()
    client.get("/login")
    response = client.post(
        "/login", data={"username": "officer1", "password": PASSWORD, "csrf_token": stolen}
    )
    assert response.status_code == 403


def test_the_queue_is_in_lane_order_and_filters(console: Console) -> None:
    client = console.login("officer1")
    rows = queue_rows(client.get("/queue").text)
    lanes = [lane for lane, _ in rows]
    assert lanes == sorted(lanes, key=store.LANE_ORDER.index)
    assert len(rows) == scored_trucks(console)
    crossing = re.findall(r'<option value="(KZRU-[A-Z]+)"', client.get("/queue").text)[0]
    filtered = client.get("/queue", params={"crossing": crossing, "lane": "red"}).text
    with console.sessions() as session:
        expected = [t.id for t in store.queue(session=session, crossing=crossing, lane="red")]
    assert [pk for _, pk in queue_rows(filtered)] == expected


def scored_trucks(console: Console) -> int:
    with console.sessions() as session:
        return len(store.queue(session=session, limit=10_000))


def test_the_queue_refreshes_itself_through_htmx(console: Console) -> None:
    client = console.login("officer1")
    page = client.get("/queue", params={"lane": "red"}).text
    assert 'hx-trigger="every 2s"' in page
    assert 'hx-get="/queue/rows?crossing=&amp;lane=red"' in page
    assert '<script src="/static/htmx.min.js"' in page
    fragment = client.get("/queue/rows", params={"lane": "red"}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert {lane for lane, _ in queue_rows(fragment.text)} == {"red"}
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]


def test_an_expired_session_in_htmx_polling_redirects_to_login(console: Console) -> None:
    response = console.client().get("/queue/rows", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/login"


def test_the_truck_page_shows_declarations_items_reasons_and_track_record(
    console: Console,
) -> None:
    client = console.login("officer1")
    pk = first_in_lane(client, "red")
    page = client.get(f"/trucks/{pk}").text
    with console.sessions() as session:
        truck = store.get_truck(session=session, truck_pk=pk)
        for declaration in truck.declarations:
            assert declaration.declaration_id in page
            assert declaration.importer_id in page
            for item in declaration.items:
                assert f'<td class="mono">{item.hs_code}</td>' in page
        for reason in truck.reasons:
            assert reason in page
    assert "История проверок импортёра" in page
    assert "проверено деклараций" in page  # imported history gives every importer a record


def test_recording_a_result_is_saved_audited_and_exported(console: Console) -> None:
    client = console.login("officer1")
    pk = first_in_lane(client, "red")
    page = client.get(f"/trucks/{pk}").text
    response = client.post(
        f"/trucks/{pk}/result",
        data=result_form(
            page, result="undervaluation", extra_duty_usd="1520.40", notes="invoice 3x low"
        ),
    )
    assert response.status_code == 200 and "saved=result" in str(response.url)
    assert "Результат сохранён" in response.text
    audit = client.get("/audit", params={"action": "result_recorded"}).text
    assert "officer1" in audit and "занижение стоимости" in audit and "1\u202f520.40" in audit
    with console.sessions() as session:
        exported = store.export_outcomes(session=session)
    InspectionOutcome.validate(exported)
    assert set(exported["officer_id"]) == {"officer1"}
    assert exported["extra_duty_usd"].sum() == pytest.approx(1520.40)


def test_a_result_without_csrf_token_is_refused_and_not_saved(console: Console) -> None:
    client = console.login("officer1")
    pk = first_in_lane(client, "red")
    form = result_form(client.get(f"/trucks/{pk}").text)
    del form["csrf_token"]
    response = client.post(f"/trucks/{pk}/result", data=form)
    assert response.status_code == 403
    with console.sessions() as session:
        assert store.export_outcomes(session=session).height == 0


@pytest.mark.parametrize(
    ("username", "action", "expected"),
    [
        ("officer1", "override", 403),
        ("analyst1", "override", 403),
        ("analyst1", "result", 403),
        ("supervisor1", "override", 200),
        ("supervisor1", "result", 200),
    ],
)
def test_roles_are_checked_on_the_server(
    console: Console, username: str, action: str, expected: int
) -> None:
    """The forms a role may not use are not even shown; posting them anyway is refused."""
    client = console.login(username)
    pk = first_in_lane(client, "red")
    page = client.get(f"/trucks/{pk}").text
    with console.sessions() as session:
        version = str(store.get_truck(session=session, truck_pk=pk).version)
    form = {"csrf_token": csrf(page), "version": version}
    if action == "override":
        form |= {"lane": "yellow", "reason": "document check is enough here"}
    else:
        form |= {"result": "clean", "extra_duty_usd": "0", "declaration_id": "", "notes": ""}
    assert (f'action="/trucks/{pk}/{action}"' in page) == (expected == 200)
    response = client.post(f"/trucks/{pk}/{action}", data=form)
    assert response.status_code == expected
    if expected == 403:
        assert "Недостаточно прав" in response.text
        with console.sessions() as session:
            assert store.get_truck(session=session, truck_pk=pk).version == int(version)


def test_an_override_needs_a_reason_and_is_audited(console: Console) -> None:
    client = console.login("supervisor1")
    pk = first_in_lane(client, "green")
    page = client.get(f"/trucks/{pk}").text
    form = {"csrf_token": csrf(page), "version": version_of(page), "lane": "red", "reason": ""}
    assert client.post(f"/trucks/{pk}/override", data=form).status_code == 422
    form["reason"] = "tip-off: cigarettes under the tiles"
    response = client.post(f"/trucks/{pk}/override", data=form)
    assert response.status_code == 200 and "Коридор изменён" in response.text
    assert re.search(r"<h1>.*lane-red", response.text, re.S)
    audit = client.get("/audit", params={"action": "lane_overridden"}).text
    assert "cigarettes under the tiles" in audit and "supervisor1" in audit


def test_concurrent_results_for_one_truck_save_one_and_refuse_the_other(
    console: Console,
) -> None:
    officers = [console.login("officer1"), console.login("officer2")]
    pk = first_in_lane(officers[0], "red")
    forms = [
        result_form(c.get(f"/trucks/{pk}").text, result="other", notes=name)
        for c, name in zip(officers, ["officer1", "officer2"], strict=True)
    ]
    barrier = threading.Barrier(2)
    statuses: dict[int, httpx.Response] = {}

    def post(i: int) -> None:
        barrier.wait()
        statuses[i] = officers[i].post(f"/trucks/{pk}/result", data=forms[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in statuses.values())
    assert codes == [200, 409]
    refused = next(r for r in statuses.values() if r.status_code == 409)
    winner = next(i for i, r in statuses.items() if r.status_code == 200)
    assert "Ваши данные не сохранены" in refused.text
    assert f"officer{winner + 1}" in refused.text
    with console.sessions() as session:
        notes = [i.notes for i in store.outcomes.latest_inspections(session=session)]
        assert notes == [f"officer{winner + 1}"]
        assert store.audit.count(session=session, action="result_recorded") == 1


def test_a_green_truck_gets_no_result_form(console: Console) -> None:
    client = console.login("officer1")
    pk = first_in_lane(client, "green")
    page = client.get(f"/trucks/{pk}").text
    assert f'action="/trucks/{pk}/result"' not in page
    assert "зелёном коридоре" in page


def test_the_language_switches_and_is_remembered(console: Console) -> None:
    client = console.login("officer1")
    assert '<html lang="ru">' in client.get("/queue").text  # Russian unless asked
    english = client.get("/queue", params={"lang": "en"}).text
    assert "Crossing queue" in english and '<html lang="en">' in english
    later = client.get("/dashboard").text  # no ?lang= now: the cookie remembers
    assert '<html lang="en">' in later and "Performance" in later
    assert '<html lang="ru">' in client.get("/audit", params={"lang": "ru"}).text


def test_logging_out_ends_the_session_on_the_server(console: Console) -> None:
    client = console.login("officer1")
    cookie = client.cookies["risk_session"]
    page = client.get("/queue").text
    client.post("/logout", data={"csrf_token": csrf(page)})
    replay = console.client()
    replay.cookies.set("risk_session", cookie)
    assert replay.get("/queue").url.path == "/login"


def test_the_dashboard_shows_the_figures_and_charts(console: Console) -> None:
    client = console.login("analyst1")
    page = client.get("/dashboard").text
    assert "grey-import-risk-canonical/1" in page
    assert page.count('<table class="chart"') == 2  # no results yet: the third says so
    assert "Пока нет данных" in page


def test_pages_carry_security_headers(console: Console) -> None:
    response = console.client().get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "httponly" in response.headers["set-cookie"].lower()
