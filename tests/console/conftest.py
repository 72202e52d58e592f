"""A console served for real: uvicorn in a thread on 127.0.0.1 and a free port, over a
temporary SQLite store holding a generated, scored queue and one user per role."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The queue builder lives beside the store tests (tests/risk/store_data.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "risk"))
from console_support import PASSWORD, SECRET, Console, serve  # noqa: E402
from store_data import scored_queue  # noqa: E402

from risk import store  # noqa: E402
from risk.settings import Settings  # noqa: E402


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
