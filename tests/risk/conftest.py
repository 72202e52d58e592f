"""Store fixtures shared by the store tests: a migrated store with one user per role, fresh
for each test, on SQLite and (marked ``postgres``) on the PostgreSQL server of
``RISK_TEST_POSTGRES_URL``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from store_data import fresh_postgres_database, postgres_admin_url, prepare_store

from risk import store


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "risk.db"
    prepare_store(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    with fresh_postgres_database(postgres_admin_url()) as url:
        prepare_store(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated store with one user per role, fresh for each test, on each database."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "risk.db")
        yield f"sqlite:///{tmp_path / 'risk.db'}"
        return
    template = request.getfixturevalue("postgres_template")
    with fresh_postgres_database(postgres_admin_url(), template=template) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = store.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return store.session_factory(engine)
