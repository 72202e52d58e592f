"""Logging in and out; a user name that keeps failing from one address is refused a while."""

from __future__ import annotations

import math
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from risk import store
from risk.console.deps import CsrfChecked, DbSession, Lang, OptionalUser, State
from risk.console.i18n import translator
from risk.console.security import CSRF_COOKIE, SESSION_COOKIE, new_nonce
from risk.console.views import render
from risk.store.accounts import SESSION_LIFETIME

router = APIRouter(include_in_schema=False)


def _local(target: str | None) -> str:
    """Only same-site paths after log-in: no open redirect to another site."""
    if not target:
        return "/queue"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/queue"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_local(next), status_code=303)
    return render(request, "login.html", {"next": _local(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    state: State,
    db: DbSession,
    _csrf: CsrfChecked,
    lang: Lang,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form()] = "/queue",
) -> Response:
    name = username.strip()
    client = request.client.host if request.client else "unknown"
    wait_s = store.login_retry_after(session=db, username=name, client=client)
    if wait_s is not None:
        # Refused unheard: the password is not even checked, so guessing gains nothing.
        minutes = max(1, math.ceil(wait_s / 60))
        refusal = render(
            request,
            "login.html",
            {
                "next": _local(next),
                "error": translator(lang)("login_throttled", minutes=minutes),
                "username": username,
            },
            status_code=429,
        )
        refusal.headers["Retry-After"] = str(wait_s)
        return refusal
    user = store.authenticate(session=db, username=name, password=password)
    if user is None:
        store.record_login_failure(session=db, username=name, client=client)
        db.commit()
        return render(
            request,
            "login.html",
            {"next": _local(next), "error": translator(lang)("login_failed"), "username": username},
            status_code=401,
        )
    store.clear_login_failures(session=db, username=name, client=client)
    token = store.start_session(session=db, user=user)
    db.commit()
    response = RedirectResponse(_local(next), status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        state.signer.sign_session(token),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    # A new CSRF nonce with the new session: a token planted before log-in is worthless.
    response.set_cookie(CSRF_COOKIE, new_nonce(), httponly=True, samesite="lax", secure=secure)
    return response


@router.post("/logout")
def logout(request: Request, state: State, db: DbSession, _csrf: CsrfChecked) -> Response:
    token = state.signer.session_token(
        request.cookies.get(SESSION_COOKIE), max_age_s=int(SESSION_LIFETIME.total_seconds())
    )
    if token is not None:
        store.end_session(session=db, token=token)
        db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
