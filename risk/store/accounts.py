"""Officers' accounts, browser sessions and machine clients' API tokens.

Passwords are hashed with argon2id. Session and API tokens are 256-bit random strings of
which only the SHA-256 is stored: a stolen table gives nobody a way in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from risk.errors import RiskError
from risk.store import audit
from risk.store.models import ROLES, ApiToken, LoginFailure, User, WebSession, utcnow

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD_LENGTH = 10
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "rsk_"
# Guessing passwords: after this many refusals for one user name from one address within the
# window, further tries are refused unheard until the oldest of them ages out.
MAX_LOGIN_FAILURES = 5
LOGIN_FAILURE_WINDOW = timedelta(minutes=5)


class AccountError(RiskError):
    """A bad user name, role or password, or a user that exists already."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(*, session: Session, username: str, password: str, role: str) -> User:
    """Create an account; the caller commits."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError(f"user name {username!r}: 2-64 letters, digits or . _ @ - (no spaces)")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} exists already")
    user = User(username=username, password_hash=_hasher().hash(password), role=role)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as error:  # created by someone else in between
        raise AccountError(f"user {username!r} exists already") from error
    audit.append(
        session=session, actor="cli", action="user_added", details={"user": username, "role": role}
    )
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this password, or None (the same answer for both failures)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        # Spend the same time as a real check, so timing does not tell which names exist.
        _hasher().hash(password)
        return None
    try:
        _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if not user.active:
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    return user


def login_retry_after(*, session: Session, username: str, client: str) -> int | None:
    """Seconds until ``username`` may try again from ``client``; None if it may now."""
    now = utcnow()
    recent = list(
        session.scalars(
            select(LoginFailure.at)
            .where(
                LoginFailure.username == username[:64],
                LoginFailure.client == client[:64],
                LoginFailure.at > now - LOGIN_FAILURE_WINDOW,
            )
            .order_by(LoginFailure.at.desc())
            .limit(MAX_LOGIN_FAILURES)
        )
    )
    if len(recent) < MAX_LOGIN_FAILURES:
        return None
    free_at = min(recent) + LOGIN_FAILURE_WINDOW
    return max(1, int((free_at - now).total_seconds() + 0.999))


def record_login_failure(*, session: Session, username: str, client: str) -> None:
    """Count a refused log-in (and forget those older than the window); caller commits."""
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - LOGIN_FAILURE_WINDOW))
    session.add(LoginFailure(username=username[:64], client=client[:64], at=now))


def clear_login_failures(*, session: Session, username: str, client: str) -> None:
    """A successful log-in starts the count again."""
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.username == username[:64], LoginFailure.client == client[:64]
        )
    )


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def start_session(*, session: Session, user: User) -> str:
    """A new browser session for ``user``; returns the raw token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired sessions are dead weight; clear them while we are here.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


def user_for_session(*, session: Session, token: str) -> User | None:
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token)))
    if row is None or row.expires_at < utcnow() or not row.user.active:
        return None
    return row.user


def end_session(*, session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))


def add_token(*, session: Session, username: str, label: str) -> str:
    """An API token acting as ``username``; the raw token is shown once and never stored."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no user {username!r}: add it first with `risk users add`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, label=label, token_hash=hash_token(token)))
    audit.append(
        session=session,
        actor="cli",
        action="token_added",
        details={"user": username, "label": label},
    )
    return token


def user_for_token(*, session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def revoke_tokens(*, session: Session, username: str, label: str | None = None) -> int:
    """Revoke a user's tokens (those with ``label`` only, if given); returns how many."""
    query = (
        select(ApiToken).join(User).where(User.username == username, ApiToken.revoked_at.is_(None))
    )
    if label is not None:
        query = query.where(ApiToken.label == label)
    rows = list(session.scalars(query))
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)
