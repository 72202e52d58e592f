"""Secrets, signed cookies and CSRF tokens of the console.

The session cookie carries a random token signed with the console's secret (itsdangerous);
the store keeps only the token's hash, so logging out or expiry ends a session server-side.
CSRF: every visitor gets a random nonce in an HttpOnly cookie; forms and htmx requests send
the nonce signed with the secret (hidden field ``csrf_token`` or header ``X-CSRF-Token``) and
the two must match. A page of another site can neither read the cookie nor forge the
signature.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from risk.errors import RiskError
from risk.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "risk_session"
CSRF_COOKIE = "risk_csrf"
LANG_COOKIE = "risk_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_MAX_AGE_S = 12 * 3600
MIN_SECRET_LENGTH = 32
# Values people put in config files "for now"; refused outside development.
KNOWN_DEFAULTS = frozenset(
    {"", "secret", "changeme", "change-me", "change_me", "development", "dev", "default",
     "insecure", "test", "password", "please-change-me", "risk"}
)  # fmt: skip


class CsrfError(RiskError):
    """A state-changing request without a valid CSRF token."""


def console_secret(settings: Settings) -> str:
    """The signing secret; a missing or default one is refused unless in development.

    In development a missing secret gets a random one per process (sessions end when the
    console restarts), so nobody is tempted to commit a shared one.
    """
    value = settings.secret_key.get_secret_value() if settings.secret_key else ""
    weak = value.strip().lower() in KNOWN_DEFAULTS or len(value) < MIN_SECRET_LENGTH
    if not weak:
        return value
    if settings.env != "development":
        raise RiskError(
            "RISK_SECRET_KEY is missing, a default, or shorter than "
            f"{MIN_SECRET_LENGTH} characters; set a random one, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )
    if value:
        log.warning("weak RISK_SECRET_KEY accepted because RISK_ENV=development")
        return value
    log.warning("no RISK_SECRET_KEY: a random one for this process (development only)")
    return secrets.token_urlsafe(48)


class Signer:
    """Signs session tokens and CSRF nonces with the console's secret."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="risk-console-session")
        self._csrf = URLSafeTimedSerializer(secret, salt="risk-console-csrf")

    def sign_session(self, token: str) -> str:
        return self._session.dumps(token)

    def session_token(self, cookie: str | None, *, max_age_s: int) -> str | None:
        if not cookie:
            return None
        try:
            value = self._session.loads(cookie, max_age=max_age_s)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def csrf_token(self, nonce: str) -> str:
        return self._csrf.dumps(nonce)

    def check_csrf(self, token: str | None, nonce: str | None) -> None:
        """Raise ``CsrfError`` unless ``token`` is this site's signature of ``nonce``."""
        if not token or not nonce:
            raise CsrfError("CSRF token missing")
        try:
            signed = self._csrf.loads(token, max_age=CSRF_MAX_AGE_S)
        except BadSignature as error:
            raise CsrfError("CSRF token invalid or expired") from error
        if not isinstance(signed, str) or not hmac.compare_digest(signed, nonce):
            raise CsrfError("CSRF token does not match this browser")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)
