"""``risk users``: accounts of the console and API tokens of machine clients."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from risk.errors import RiskError
from risk.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    help="Console accounts (officer, supervisor, analyst) and API tokens.",
    no_args_is_help=True,
)


def _sessions() -> sessionmaker[Session]:
    from risk import store

    settings = get_settings()
    settings.ensure_data_dir()
    url = str(settings.database_url)
    store.migrate(url)
    return store.session_factory(store.make_engine(url))


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2) from None


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Log-in name: letters, digits, . _ @ -")],
    role: Annotated[
        str,
        typer.Option(
            help="officer (reviews, records results), supervisor (also overrides lanes) or "
            "analyst (sees everything, changes nothing)."
        ),
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input (for scripts)."
        ),
    ] = False,
) -> None:
    """Create an account; the password is asked for (twice) unless --password-stdin."""
    from risk import store

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with _sessions().begin() as session:
            store.add_user(session=session, username=username, password=password, role=role)
    except RiskError as exc:
        _fail(exc)
    typer.echo(f"user {username} ({role}) added")


@app.command("list")
def list_users() -> None:
    """Accounts and their roles."""
    from risk import store

    try:
        with _sessions()() as session:
            users = store.list_users(session=session)
    except RiskError as exc:
        _fail(exc)
    for user in users:
        state = "" if user.active else " (disabled)"
        typer.echo(f"{user.username:<24} {user.role:<11} since {user.created_at:%Y-%m-%d}{state}")


@app.command("token")
def token(
    username: Annotated[str, typer.Argument(help="The account the machine client acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for, e.g. 'gate-scanner-2'.")],
) -> None:
    """Issue an API token (printed once; only its hash is stored)."""
    from risk import store

    try:
        with _sessions().begin() as session:
            raw = store.add_token(session=session, username=username, label=label)
    except RiskError as exc:
        _fail(exc)
    typer.echo(raw)


@app.command("revoke-tokens")
def revoke_tokens(
    username: Annotated[str, typer.Argument(help="The account whose tokens to revoke.")],
    label: Annotated[
        str | None, typer.Option(help="Only the tokens with this label (default: all).")
    ] = None,
) -> None:
    """Revoke API tokens at once."""
    from risk import store

    try:
        with _sessions().begin() as session:
            count = store.revoke_tokens(session=session, username=username, label=label)
    except RiskError as exc:
        _fail(exc)
    typer.echo(f"{count} token(s) revoked")
