"""Log-in rate limit: five refused log-ins for one user name from one address within five
minutes, and further tries are refused unheard (429) until the oldest ages out."""

from __future__ import annotations

from datetime import timedelta

import httpx
from console_support import PASSWORD, Console, csrf
from sqlalchemy import update

from risk.store.accounts import LOGIN_FAILURE_WINDOW, MAX_LOGIN_FAILURES
from risk.store.models import LoginFailure


def try_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf(page.text)},
    )


def test_repeated_failures_get_429_even_with_the_right_password(console: Console) -> None:
    client = console.client()
    for _ in range(MAX_LOGIN_FAILURES):
        assert try_login(client, "officer1", "wrong password!").status_code == 401
    refused = try_login(client, "officer1", PASSWORD)
    assert refused.status_code == 429
    assert "Слишком много неудачных попыток входа" in refused.text
    assert "Повторите через 5 мин." in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= LOGIN_FAILURE_WINDOW.total_seconds()
    assert "risk_session" not in client.cookies
    # Another user from the same address is not locked out by someone else's typos.
    assert try_login(console.client(), "officer2", PASSWORD).status_code == 200

    # Five minutes later the tries count no more.
    with console.sessions.begin() as session:
        session.execute(
            update(LoginFailure).values(at=LoginFailure.at - LOGIN_FAILURE_WINDOW - timedelta(1))
        )
    assert try_login(client, "officer1", PASSWORD).status_code == 200
    assert "risk_session" in client.cookies


def test_a_successful_log_in_starts_the_count_again(console: Console) -> None:
    client = console.client()
    for _ in range(MAX_LOGIN_FAILURES - 1):
        assert try_login(client, "analyst1", "wrong password!").status_code == 401
    assert try_login(client, "analyst1", PASSWORD).status_code == 200
    with console.sessions() as session:
        assert session.query(LoginFailure).filter_by(username="analyst1").count() == 0
    other = console.client()
    for _ in range(MAX_LOGIN_FAILURES - 1):
        assert try_login(other, "analyst1", "wrong password!").status_code == 401
    assert try_login(other, "analyst1", "wrong password!").status_code == 401  # the fifth
    assert try_login(other, "analyst1", PASSWORD).status_code == 429
