"""A console served for real: uvicorn in a thread on 127.0.0.1 and a free port, over a
temporary SQLite store holding a generated, scored queue and one user per role."""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

# The queue builder lives beside the store tests (tests/risk/store_data.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "risk"))
from store_data import scored_queue  # noqa: E402

from risk import store  # noqa: E402
from risk.settings import Settings  # noqa: E402

PASSWORD = "correct horse battery"
SECRET = "test-secret-" + "x" * 40
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Console:
    url: str
    settings: Settings
    sessions: sessionmaker[Session]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A browser of its own (cookies); closed when the test ends."""
        client = httpx.Client(base_url=self.url, timeout=30, follow_redirects=True)
        self.clients.append(client)
        return client

    def login(self, username: str, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf(page.text)},
        )
        assert response.status_code == 200, response.text
        return client


def csrf(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated, one user per role, today's queue published and the history imported."""
    path = tmp_path_factory.mktemp("console-template") / "risk.db"
    url = f"sqlite:///{path}"
    store.migrate(url)
    engine = store.make_engine(url)
    queue = scored_queue()
    with store.session_factory(engine).begin() as session:
        for role in store.ROLES:
            store.add_user(session=session, username=f"{role}1", password=PASSWORD, role=role)
        store.add_user(session=session, username="officer2", password=PASSWORD, role="officer")
        store.publish_scores(
            session=session,
            trucks=queue.trucks,
            declarations=queue.declarations,
            items=queue.items,
            run_id="run-1",
            model_version="grey-import-risk-canonical/1",
            published_by="test",
        )
        store.import_history(
            session=session,
            declarations=queue.history_declarations,
            outcomes=queue.history_outcomes,
        )
    engine.dispose()
    return path


def serve(settings: Settings, **kwargs: object) -> Iterator[str]:
    """Run the console in a thread; yields its base URL."""
    import uvicorn

    from risk.console import create_app

    app = create_app(settings, **kwargs)  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def console_settings(tmp_path: Path, store_template: Path) -> Settings:
    shutil.copy(store_template, tmp_path / "risk.db")
    return Settings(
        env="production",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'risk.db'}",
        secret_key=SECRET,  # type: ignore[arg-type]
    )


@pytest.fixture
def console(console_settings: Settings) -> Iterator[Console]:
    engine = store.make_engine(str(console_settings.database_url))
    for url in serve(console_settings, refresh_seconds=2):
        running = Console(
            url=url, settings=console_settings, sessions=store.session_factory(engine)
        )
        yield running
        for client in running.clients:
            client.close()
    engine.dispose()
