"""Shared by the console tests (imported by name: a module called ``conftest`` would clash
with the other test folders' conftest modules when several folders run in one pytest call)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import Session, sessionmaker

from risk.settings import Settings

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
