"""Debian's Chromium, driven by Playwright, through an officer's shift: log in, read the
queue, open a truck, record what the inspection found, and find it in the audit log and on
the dashboard. A screenshot of every page is kept in tests/artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import PASSWORD, Console

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: scripts/bootstrap.sh --system installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def shot(page: object, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    return path


def test_an_officer_records_a_result_and_finds_it_in_the_audit_log_and_dashboard(
    console: Console, browser: object
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{console.url}/queue")
    expect(page).to_have_url(re.compile(r"/login\?next=/queue$"))
    expect(page.get_by_role("heading", name="Вход для инспекторов")).to_be_visible()
    shot(page, "01-login")

    page.get_by_label("Имя пользователя").fill("officer1")
    page.get_by_label("Пароль").fill("not the password")
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("alert")).to_contain_text("Неверное имя пользователя или пароль")
    errors.clear()  # the refused log-in above answered 401, as it should
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(re.compile(r"/queue$"))

    rows = page.locator("table.queue tbody tr")
    expect(rows.first).to_be_visible()
    lanes = [c.split("-", 1)[1] for c in rows.evaluate_all("rs => rs.map(r => r.className)")]
    assert lanes == sorted(lanes, key=["red", "yellow", "blue", "green"].index)
    # htmx polls the table every 2 s in the tests: the time stamp moves on by itself.
    stamp = page.locator(".refresh").inner_text()
    expect(page.locator(".refresh")).not_to_have_text(stamp, timeout=10_000)
    shot(page, "02-queue")

    first_red = page.locator("table.queue tr.row-red a").first
    truck_id = first_red.inner_text()
    first_red.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(truck_id)
    expect(page.locator(".summary .reasons li").first).to_be_visible()
    expect(page.locator(".track-record").first).to_be_visible()
    shot(page, "03-truck")

    form = page.locator("#result form")
    form.get_by_label("Результат").select_option("undervaluation")
    form.get_by_label("Доначислено пошлин, USD").fill("2500")
    form.get_by_label("Примечания").fill("Инвойс занижен втрое против справочной цены")
    form.get_by_role("button", name="Сохранить результат").click()
    expect(page.locator("#notice")).to_have_text("Результат сохранён.")
    expect(page.locator(".current-result")).to_contain_text("занижение стоимости")
    shot(page, "04-truck-result-saved")

    page.get_by_role("link", name="Журнал").click()
    entry = page.locator("table.audit tr.action-result_recorded").first
    expect(entry).to_contain_text("officer1")
    expect(entry).to_contain_text(truck_id)
    expect(entry).to_contain_text("2\u202f500.00 USD")
    shot(page, "05-audit")

    page.get_by_role("link", name="Показатели").click()
    kpis = page.locator(".kpis")
    expect(kpis).to_contain_text("2\u202f500 USD")
    expect(kpis).to_contain_text("1 / 1")
    expect(page.locator("table.chart")).to_have_count(3)
    shot(page, "06-dashboard")

    page.get_by_role("link", name="EN").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Performance")
    page.get_by_role("link", name="Queue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Crossing queue")
    shot(page, "07-queue-en")

    assert errors == [], f"browser errors: {errors}"
    context.close()


def test_a_supervisor_overrides_a_lane_with_a_reason(console: Console, browser: object) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{console.url}/login")
    page.get_by_label("Имя пользователя").fill("supervisor1")
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.goto(f"{console.url}/queue?lane=green")
    page.locator("table.queue tr.row-green a").first.click()
    form = page.locator("#override form")
    form.get_by_label("Новый коридор").select_option("red")
    form.get_by_label("Основание (обязательно)").fill("Ориентировка погранслужбы")
    form.get_by_role("button", name="Сменить коридор").click()
    expect(page.locator("#notice")).to_have_text("Коридор изменён.")
    expect(page.locator("h1 .lane")).to_have_class(re.compile("lane-red"))
    expect(page.locator("#history")).to_contain_text("Ориентировка погранслужбы")
    shot(page, "08-truck-override")
    context.close()


def test_a_supervisor_puts_an_importer_on_a_watch_list_and_officers_see_its_reason(
    console: Console, browser: object
) -> None:
    import polars as pl
    from playwright.sync_api import expect
    from store_data import scored_queue

    from risk import store

    queue = scored_queue()
    target = queue.trucks.filter(pl.col("lane") == "green").row(0, named=True)
    importer = queue.declarations.filter(pl.col("truck_id") == target["truck_id"])["importer_id"][0]

    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{console.url}/login")
    page.get_by_label("Имя пользователя").fill("supervisor1")
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.get_by_role("link", name="Списки наблюдения").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Списки наблюдения")
    page.get_by_text("Добавить правило").click()
    form = page.locator("#add-entry form")
    form.get_by_label("Название").fill("watch-seized")
    form.get_by_label("Импортёры").fill(importer)
    form.get_by_label("Причина для инспектора (рус.)").fill(
        "импортёр под наблюдением после изъятия"
    )
    form.get_by_label("Причина для инспектора (англ., обязательно)").fill(
        "importer watched after a seizure"
    )
    form.get_by_label("Основание изменения (обязательно, в журнал)").fill("акт изъятия 2026/114")
    form.get_by_role("button", name="Добавить").click()
    expect(page.locator("#notice")).to_have_text("Правило добавлено.")
    row = page.locator("#active-entries tr", has_text="watch-seized")
    expect(row).to_contain_text(importer)
    row.get_by_role("link", name="Изменить").click()  # htmx swaps the edit form in
    editor = page.locator("#editor #edit-entry")
    expect(editor.get_by_label("Импортёры")).to_have_value(importer)
    shot(page, "09-watchlists")
    editor.get_by_role("link", name="Отмена").click()
    context.close()

    # The next publication of the queue applies the list (what `risk publish` does).
    with console.sessions.begin() as session:
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

    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{console.url}/login")
    page.get_by_label("Имя пользователя").fill("officer1")
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.get_by_role("link", name="Списки наблюдения").click()
    expect(page.locator("#active-entries")).to_contain_text("watch-seized")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#add-entry")).to_have_count(0)
    expect(page.get_by_role("link", name="Изменить")).to_have_count(0)
    shot(page, "10-watchlists-officer")

    page.goto(f"{console.url}/trucks/{truck.id}")
    expect(page.locator("h1 .lane")).to_have_class(re.compile("lane-red"))
    # The test queue's reasons are in English only; the rule's reason is kept in both
    # languages, and a Russian session reads it in Russian.
    expect(page.locator(".summary .reasons li").first).to_have_text(
        "Правило watch-seized: импортёр под наблюдением после изъятия"
    )
    shot(page, "11-truck-watch-listed")

    page.get_by_role("link", name="Журнал").click()
    entry = page.locator("table.audit tr.action-watch_list_added").first
    expect(entry).to_contain_text("supervisor1")
    expect(entry).to_contain_text("акт изъятия 2026/114")
    assert errors == [], f"browser errors: {errors}"
    context.close()
