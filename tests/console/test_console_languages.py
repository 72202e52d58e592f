"""Officers read reasons in their session's language whatever `risk score --lang` wrote."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from console_support import PASSWORD, SECRET, Console, serve
from test_console_scoring import (  # the trained champion and the live API
    Champion,
    Live,
    champion,  # noqa: F401 (a fixture)
    live,  # noqa: F401 (a fixture)
    one_truck,
    score,
)
from typer.testing import CliRunner

from risk import store
from risk.cli import app as cli
from risk.settings import Settings, get_settings

CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _reasons_shown(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r"<li>([^<]+)</li>", page)]


def test_pages_and_the_queue_api_show_reasons_in_the_sessions_language(
    champion: Champion,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipelines.score_job import score_files

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.mlflow_uri)
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    queue_dir = champion.traffic_dir / "queue"
    score_files(
        [queue_dir / "declarations.parquet"],
        output=tmp_path / "scores" / "queue.parquet",
        arrivals=queue_dir / "arrivals.parquet",
        lang="en",
    )
    published = CliRunner().invoke(
        cli,
        ["publish", str(tmp_path / "scores"), "-d", str(queue_dir / "declarations.parquet")],
    )
    assert published.exit_code == 0, published.output
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        mlflow_tracking_uri=champion.mlflow_uri,
        secret_key=SECRET,  # type: ignore[arg-type]
    )
    engine = store.make_engine(str(settings.database_url))
    sessions = store.session_factory(engine)
    with sessions.begin() as session:
        store.add_user(session=session, username="officer1", password=PASSWORD, role="officer")
        token = store.add_token(session=session, username="officer1", label="test")
    with sessions() as session:
        flagged = [
            t
            for t in store.queue(session=session, limit=10_000)
            if t.lane in ("red", "yellow") and t.selection == "targeted"
        ]
        assert flagged
        truck = flagged[0]
        # Scored with --lang en: ``reasons`` English, and both languages kept beside.
        assert truck.reasons == truck.reasons_en and truck.reasons_en
        assert all(CYRILLIC.search(r) for r in truck.reasons_ru)
        assert not any(CYRILLIC.search(r) for r in truck.reasons_en)
        detail = store.get_truck(session=session, truck_pk=truck.id)
        items_ru = [r for d in detail.declarations for i in d.items for r in i.reasons_ru]
        items_en = [r for d in detail.declarations for i in d.items for r in i.reasons_en]
        assert items_ru and items_en
        truck_pk, truck_ru, truck_en = truck.id, list(truck.reasons_ru), list(truck.reasons_en)
    for url in serve(settings):
        console = Console(url=url, settings=settings, sessions=sessions)
        client = console.login("officer1")
        russian = _reasons_shown(client.get(f"/trucks/{truck_pk}").text)  # Russian unless asked
        english = _reasons_shown(client.get(f"/trucks/{truck_pk}", params={"lang": "en"}).text)
        for client_ in console.clients:
            client_.close()
        assert set(truck_ru + items_ru) <= set(russian)
        assert not set(truck_en + items_en) & set(russian)
        assert set(truck_en + items_en) <= set(english)
        assert not set(truck_ru + items_ru) & set(english)

        headers = {"Authorization": f"Bearer {token}"}
        queue_ru = httpx.get(f"{url}/api/v1/queue", headers=headers, timeout=30).json()
        queue_en = httpx.get(
            f"{url}/api/v1/queue", params={"lang": "en"}, headers=headers, timeout=30
        ).json()
        by_id_ru = {t["id"]: t["reasons"] for t in queue_ru["trucks"]}
        by_id_en = {t["id"]: t["reasons"] for t in queue_en["trucks"]}
        assert by_id_ru[truck_pk] == truck_ru and by_id_en[truck_pk] == truck_en
        refused = httpx.get(
            f"{url}/api/v1/queue", params={"lang": "de"}, headers=headers, timeout=30
        )
        assert refused.status_code == 422
        spec = httpx.get(f"{url}/api/openapi.json", timeout=30).json()
        for path, method in (("/api/v1/queue", "get"), ("/api/v1/trucks/score", "post")):
            (param,) = [p for p in spec["paths"][path][method]["parameters"] if p["name"] == "lang"]
            assert param["schema"]["enum"] == ["ru", "en"] and param["schema"]["default"] == "ru"
            assert "Language of the reasons" in param["description"]
    engine.dispose()


def test_the_score_api_answers_in_the_language_asked(
    live: Live,  # noqa: F811
    champion: Champion,  # noqa: F811
) -> None:
    items = one_truck(champion.queue)
    default = score(live, items).json()
    russian = score(live, items, lang="ru").json()
    english = score(live, items, lang="en").json()
    assert default == russian  # the console's default language
    assert russian["reasons"] and english["reasons"]
    assert len(russian["reasons"]) == len(english["reasons"])
    assert all(CYRILLIC.search(r) for r in russian["reasons"])
    assert not any(CYRILLIC.search(r) for r in english["reasons"])
    assert {k: v for k, v in russian.items() if k not in ("reasons", "declarations")} == {
        k: v for k, v in english.items() if k not in ("reasons", "declarations")
    }
    published = score(live, items, lang="en", publish="true").json()
    assert published["reasons"] == english["reasons"]
    with live.sessions() as session:
        (stored,) = store.queue(session=session)
        assert stored.reasons_ru == russian["reasons"]
        assert stored.reasons_en == english["reasons"]
