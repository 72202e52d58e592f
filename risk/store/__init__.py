"""The decisions store: published scores, officers' results and overrides, the audit log.

SQLAlchemy 2 over SQLite (default, a file in the data folder) or PostgreSQL (by URL), with
Alembic migrations inside the package: ``migrate(url)`` runs ``upgrade head``. Service
functions take keyword-only arguments and a ``session``; the caller commits.
"""

from __future__ import annotations

from risk.store.accounts import (
    AccountError,
    add_token,
    add_user,
    authenticate,
    clear_login_failures,
    end_session,
    list_users,
    login_retry_after,
    record_login_failure,
    revoke_tokens,
    start_session,
    user_for_session,
    user_for_token,
)
from risk.store.audit import AuditTamperingError, append, entries
from risk.store.dashboard import Dashboard, HitRate, dashboard
from risk.store.db import make_engine, migrate, normalise_url, session_factory
from risk.store.decisions import (
    ConflictError,
    DecisionError,
    PermissionDeniedError,
    override_lane,
    record_result,
)
from risk.store.frames import published_frames
from risk.store.models import ROLES, User, utcnow
from risk.store.outcomes import TrackRecord, export_outcomes, import_history, track_records
from risk.store.trucks import (
    LANE_ORDER,
    NotFoundError,
    PublishSummary,
    crossings,
    find_truck,
    get_truck,
    lane_counts,
    latest_run,
    publish_scores,
    queue,
)
from risk.store.watchlists import (
    WatchListConflictError,
    WatchListError,
    active_rules,
    add_entry,
    change_entry,
    get_entry,
    list_entries,
    retire_entry,
    rules_in_force,
)

__all__ = [
    "LANE_ORDER",
    "ROLES",
    "AccountError",
    "AuditTamperingError",
    "ConflictError",
    "Dashboard",
    "DecisionError",
    "HitRate",
    "NotFoundError",
    "PermissionDeniedError",
    "PublishSummary",
    "TrackRecord",
    "User",
    "WatchListConflictError",
    "WatchListError",
    "active_rules",
    "add_entry",
    "add_token",
    "add_user",
    "append",
    "authenticate",
    "change_entry",
    "clear_login_failures",
    "crossings",
    "dashboard",
    "end_session",
    "entries",
    "export_outcomes",
    "find_truck",
    "get_entry",
    "get_truck",
    "import_history",
    "lane_counts",
    "latest_run",
    "list_entries",
    "list_users",
    "login_retry_after",
    "make_engine",
    "migrate",
    "normalise_url",
    "override_lane",
    "publish_scores",
    "published_frames",
    "queue",
    "record_login_failure",
    "record_result",
    "retire_entry",
    "revoke_tokens",
    "rules_in_force",
    "session_factory",
    "start_session",
    "track_records",
    "user_for_session",
    "user_for_token",
    "utcnow",
]
