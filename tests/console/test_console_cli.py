"""The console's commands: accounts, tokens, exporting outcomes; the secret check at start."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from console_support import SECRET
from typer.testing import CliRunner

from risk import store
from risk.cli import app
from risk.console import create_app
from risk.errors import RiskError
from risk.schemas import InspectionOutcome
from risk.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RISK_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


def test_users_add_reads_the_password_from_stdin_and_hashes_it(database: str) -> None:
    result = runner.invoke(
        app,
        ["users", "add", "a.petrova", "--role", "supervisor", "--password-stdin"],
        input="long enough password\n",
    )
    assert result.exit_code == 0, result.output
    engine = store.make_engine(database)
    with store.session_factory(engine)() as session:
        user = store.authenticate(
            session=session, username="a.petrova", password="long enough password"
        )
        assert user is not None and user.role == "supervisor"
        assert user.password_hash.startswith("$argon2id$")
    engine.dispose()
    listing = runner.invoke(app, ["users", "list"])
    assert "a.petrova" in listing.output and "supervisor" in listing.output


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["users", "add", "x y", "--role", "officer"], "long enough password", "user name"),
        (["users", "add", "ivanov", "--role", "boss"], "long enough password", "role 'boss'"),
        (["users", "add", "ivanov", "--role", "officer"], "short", "at least 10"),
    ],
)
def test_users_add_refuses_bad_accounts_in_one_line(
    database: str, args: list[str], password: str, message: str
) -> None:
    result = runner.invoke(app, [*args, "--password-stdin"], input=f"{password}\n")
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1


def test_users_token_prints_a_token_once_and_stores_its_hash(database: str) -> None:
    runner.invoke(
        app,
        ["users", "add", "scanner", "--role", "officer", "--password-stdin"],
        input="long enough password\n",
    )
    result = runner.invoke(app, ["users", "token", "scanner", "--label", "gate-2"])
    assert result.exit_code == 0
    token = result.output.strip()
    engine = store.make_engine(database)
    with store.session_factory(engine)() as session:
        user = store.user_for_token(session=session, token=token)
        assert user is not None and user.username == "scanner"
    engine.dispose()
    revoked = runner.invoke(app, ["users", "revoke-tokens", "scanner"])
    assert "1 token(s) revoked" in revoked.output


def test_export_outcomes_writes_valid_inspection_outcomes(database: str, tmp_path: Path) -> None:
    out = tmp_path / "outcomes.parquet"
    result = runner.invoke(app, ["export-outcomes", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 outcome rows" in result.output
    InspectionOutcome.validate(pl.read_parquet(out))


@pytest.mark.parametrize("secret", [None, "changeme", "short-secret"])
def test_the_console_refuses_a_missing_or_default_secret_outside_development(
    tmp_path: Path, secret: str | None
) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        secret_key=secret,  # type: ignore[arg-type]
    )
    with pytest.raises(RiskError, match="RISK_SECRET_KEY"):
        create_app(settings)


def test_development_runs_without_a_secret_and_production_with_a_real_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create_app(Settings(env="development", data_dir=tmp_path))
    assert "development only" in caplog.text
    create_app(Settings(env="production", data_dir=tmp_path, secret_key=SECRET))  # type: ignore[arg-type]


def test_console_command_refuses_a_default_secret_with_one_line(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISK_ENV", "production")
    monkeypatch.setenv("RISK_SECRET_KEY", "changeme")
    get_settings.cache_clear()
    result = runner.invoke(app, ["console", "--port", "8765"])
    assert result.exit_code == 2
    assert "RISK_SECRET_KEY" in result.output


def test_users_add_prompts_twice_for_the_password(database: str) -> None:
    result = runner.invoke(
        app,
        ["users", "add", "s.ivanov", "--role", "officer"],
        input="long enough password\nlong enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "user s.ivanov (officer) added" in result.output
    assert "long enough password" not in result.output


def test_publish_names_a_missing_scores_file_in_one_line(database: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["publish", str(tmp_path / "nowhere.parquet"), "-d", str(tmp_path / "d.parquet")]
    )
    assert result.exit_code == 2
    assert "nowhere.parquet not found (written by `risk score`)" in result.output
    assert result.output.count("\n") == 1
