"""Dependencies of the console's routes, as ``Annotated`` aliases.

Pages need a signed-in user (``CurrentUser``) and, to change anything, the right role
(``Recorder``, ``Supervisor``) and a CSRF token (``CsrfChecked``). The JSON API takes a bearer
token of a machine client, or a browser's session (with the CSRF header for POSTs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from risk import store
from risk.console.i18n import DEFAULT_LANGUAGE, LANGUAGES
from risk.console.scoring import ScoringService
from risk.console.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    SESSION_COOKIE,
    Signer,
    new_nonce,
)
from risk.errors import RiskError
from risk.settings import Settings
from risk.store.accounts import SESSION_LIFETIME
from risk.store.models import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class ConsoleState:
    """Everything the routes share, made once by ``create_app``."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    templates: Jinja2Templates
    scoring: ScoringService
    refresh_seconds: int


class LoginRequiredError(RiskError):
    """No signed-in user (or API token) for a page that needs one."""


class ApiAuthError(RiskError):
    """An API call without a valid bearer token or session."""


def get_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


State = Annotated[ConsoleState, Depends(get_state)]


def get_db(state: State) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(get_db)]


def get_lang(request: Request) -> str:
    """``?lang=`` first (the page remembers it in a cookie), then the cookie, then Russian."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


Lang = Annotated[str, Depends(get_lang)]


def csrf_nonce(request: Request) -> str:
    """This browser's CSRF nonce; a new one is set as a cookie by ``render``."""
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce is None:
        nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
        request.state.csrf_nonce = nonce
    return nonce


def optional_user(request: Request, state: State, db: DbSession) -> User | None:
    token = state.signer.session_token(
        request.cookies.get(SESSION_COOKIE), max_age_s=int(SESSION_LIFETIME.total_seconds())
    )
    if token is None:
        return None
    user = store.user_for_session(session=db, token=token)
    request.state.user = user
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


def current_user(user: OptionalUser) -> User:
    if user is None:
        raise LoginRequiredError("log in first")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def _role(*roles: str) -> Callable[[User], User]:
    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise store.PermissionDeniedError(
                f"{user.username} ({user.role}) may not do this: needs {' or '.join(roles)}"
            )
        return user

    return check


Recorder = Annotated[User, Depends(_role("officer", "supervisor"))]
Supervisor = Annotated[User, Depends(_role("supervisor"))]


async def csrf_protect(request: Request, state: State) -> None:
    """State-changing requests carry the signed nonce in the form or the header."""
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        token = (await request.form()).get(CSRF_FIELD)  # type: ignore[assignment]
    state.signer.check_csrf(
        token if isinstance(token, str) else None, request.cookies.get(CSRF_COOKIE)
    )


CsrfChecked = Annotated[None, Depends(csrf_protect)]

bearer = HTTPBearer(auto_error=False, description="An API token from `risk users token`.")


def _api_principal(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> tuple[User, bool]:
    """The user behind a bearer token, or a signed-in browser; and whether it was a browser."""
    with state.sessions() as db:
        if credentials is not None:
            user = store.user_for_token(session=db, token=credentials.credentials)
            if user is None:
                raise ApiAuthError("invalid or revoked API token")
            return user, False
        user = optional_user(request, state, db)
    if user is None:
        raise ApiAuthError("send `Authorization: Bearer <token>` (see `risk users token`)")
    return user, True


async def api_user(
    request: Request,
    state: State,
    principal: Annotated[tuple[User, bool], Depends(_api_principal)],
) -> User:
    """A machine client's token, or a signed-in browser (CSRF-checked for POSTs)."""
    user, via_browser = principal
    if via_browser:
        await csrf_protect(request, state)
    return user


ApiUser = Annotated[User, Depends(api_user)]
