"""Watch lists: the hard rules supervisors keep in the store, beside the rules file.

An entry is a ``risk.rules.HardRule`` (an importer on a watch list, a priority control on HS
headings from a route, a trusted trader) plus who created, changed and retired it. Entries
are never deleted: a change rewrites the entry under its version (a stale form gets a
conflict), retiring ends it; each step is an audit entry with the supervisor's reason and the
rule as it stood, and the database refuses DELETE.

The rules in force are the rules file's plus the active entries (``rules_in_force``); batch
scoring reads them through ``risk rules export``, publishing and on-the-spot scoring here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from risk.errors import RiskError
from risk.rules import HardRule, RuleSet, hard_rule, merge_rules
from risk.schemas import iso_countries
from risk.store import audit
from risk.store.decisions import MIN_REASON_LENGTH, OVERRIDERS, PermissionDeniedError
from risk.store.models import User, WatchListEntry, utcnow
from risk.store.trucks import NotFoundError

EDITORS = OVERRIDERS  # the supervisors: who may override a lane may keep the watch lists
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
HS_PREFIX_PATTERN = re.compile(r"^[0-9]{2,10}$")
MAX_REASON_LENGTH = 500
LIST_FIELDS = ("importer_ids", "hs_prefixes", "origin_countries", "dispatch_countries", "crossings")
RULE_FIELDS = ("name", "lane", "reason_en", "reason_ru", *LIST_FIELDS, "valid_from", "valid_until")


class WatchListError(RiskError):
    """An entry or a change that cannot be accepted; the message says which field and why."""


class WatchListConflictError(RiskError):
    """The entry changed since the form was loaded; nothing was saved."""


def validated_rule(values: Mapping[str, Any]) -> HardRule:
    """The rule an entry states, checked as the rules file is and a little more.

    Beyond ``HardRule`` (a lane, a reason, at least one criterion): a name usable as an
    identifier, HS prefixes of 2-10 digits, ISO country codes, and a validity that does not
    end before it starts.
    """
    name = str(values.get("name") or "").strip()
    if not NAME_PATTERN.match(name):
        raise WatchListError(
            f"name {name!r}: 1-64 letters, digits or . _ : - (no spaces), starting with a "
            "letter or digit"
        )
    rule = _rule(values, name)
    for prefix in rule.hs_prefixes:
        if not HS_PREFIX_PATTERN.match(prefix):
            raise WatchListError(f"rule {name!r}: HS prefix {prefix!r}: 2-10 digits")
    countries = iso_countries()
    for field in ("origin_countries", "dispatch_countries"):
        for code in getattr(rule, field):
            if code not in countries:
                raise WatchListError(
                    f"rule {name!r}: {field}: {code!r} is not an ISO 3166-1 alpha-2 code"
                )
    if rule.valid_from and rule.valid_until and rule.valid_until < rule.valid_from:
        raise WatchListError(
            f"rule {name!r}: valid_until {rule.valid_until} is before valid_from {rule.valid_from}"
        )
    return rule


def _rule(values: Mapping[str, Any], name: str) -> HardRule:
    fields: dict[str, Any] = {k: values[k] for k in RULE_FIELDS if k in values}
    fields["name"] = name
    for key in LIST_FIELDS:
        fields[key] = _codes(fields.get(key), upper=key.endswith("countries"))
    for key in ("reason_en", "reason_ru"):
        fields[key] = str(fields.get(key) or "").strip()
    if not fields["reason_en"]:
        raise WatchListError(f"rule {name!r}: reason_en: the officer needs a reason to read")
    for key in ("valid_from", "valid_until"):
        fields[key] = fields.get(key) or None
    try:
        return hard_rule(**fields)
    except RiskError as error:
        raise WatchListError(str(error)) from error


def _codes(value: Any, *, upper: bool) -> tuple[str, ...]:
    """A list field from a list or from text separated by commas, semicolons or spaces."""
    if value is None:
        return ()
    parts = re.split(r"[\s,;]+", value) if isinstance(value, str) else [str(v) for v in value]
    codes = [p.strip().upper() if upper else p.strip() for p in parts]
    return tuple(dict.fromkeys(code for code in codes if code))


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise WatchListError(
            f"reason: a watch-list change needs a reason ({MIN_REASON_LENGTH}+ characters)"
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise WatchListError(f"reason: at most {MAX_REASON_LENGTH} characters")
    return reason


def _require(user: User, what: str) -> None:
    if user.role not in EDITORS:
        raise PermissionDeniedError(
            f"{user.username} ({user.role}) may not {what}: needs {' or '.join(EDITORS)}"
        )


def rule_of(entry: WatchListEntry) -> HardRule:
    """The entry as the rule scoring applies."""
    return HardRule(
        name=entry.name,
        lane=entry.lane,  # type: ignore[arg-type]
        reason_en=entry.reason_en,
        reason_ru=entry.reason_ru,
        importer_ids=tuple(entry.importer_ids),
        hs_prefixes=tuple(entry.hs_prefixes),
        origin_countries=tuple(entry.origin_countries),
        dispatch_countries=tuple(entry.dispatch_countries),
        crossings=tuple(entry.crossings),
        valid_from=entry.valid_from,
        valid_until=entry.valid_until,
    )


def _snapshot(rule: HardRule) -> dict[str, Any]:
    """The rule as JSON for the audit log (dates as ISO text, empty fields left out)."""
    snapshot: dict[str, Any] = {}
    for key in RULE_FIELDS:
        value = getattr(rule, key)
        if value in (None, "", ()):
            continue
        snapshot[key] = value.isoformat() if isinstance(value, date) else value
        if isinstance(value, tuple):
            snapshot[key] = list(value)
    return snapshot


def _apply(entry: WatchListEntry, rule: HardRule) -> None:
    entry.name = rule.name
    entry.lane = rule.lane
    entry.reason_en = rule.reason_en
    entry.reason_ru = rule.reason_ru
    for key in LIST_FIELDS:
        setattr(entry, key, list(getattr(rule, key)))
    entry.valid_from = rule.valid_from
    entry.valid_until = rule.valid_until


def add_entry(
    *, session: Session, by: User, values: Mapping[str, Any], reason: str
) -> WatchListEntry:
    """Create an entry (the rule in ``values``, the supervisor's ``reason``); caller commits."""
    _require(by, "edit watch lists")
    rule = validated_rule(values)
    reason = _reason(reason)
    if session.scalar(select(WatchListEntry.id).where(WatchListEntry.name == rule.name)):
        raise WatchListError(
            f"name {rule.name!r} is taken (retired entries keep their names): choose another"
        )
    now = utcnow()
    entry = WatchListEntry(
        created_at=now, created_by=by.username, changed_at=now, changed_by=by.username
    )
    _apply(entry, rule)
    session.add(entry)
    try:
        session.flush()
    except IntegrityError as error:  # created by someone else in between
        session.rollback()
        raise WatchListError(f"name {rule.name!r} is taken: choose another") from error
    _audit(session, by, "watch_list_added", entry, reason, after=_snapshot(rule))
    _forget_cache()
    return entry


def change_entry(
    *,
    session: Session,
    entry_id: int,
    seen_version: int,
    by: User,
    values: Mapping[str, Any],
    reason: str,
) -> WatchListEntry:
    """Rewrite an active entry's rule (its name stays); the audit keeps before and after."""
    _require(by, "edit watch lists")
    entry = _active(session, entry_id, seen_version)
    rule = validated_rule({**values, "name": entry.name})
    reason = _reason(reason)
    before = _snapshot(rule_of(entry))
    after = _snapshot(rule)
    if before == after:
        raise WatchListError(f"rule {entry.name!r}: nothing changed")
    _apply(entry, rule)
    entry.changed_at = utcnow()
    entry.changed_by = by.username
    _flush(session, entry)
    _audit(session, by, "watch_list_changed", entry, reason, after=after, before=before)
    _forget_cache()
    return entry


def retire_entry(
    *, session: Session, entry_id: int, seen_version: int, by: User, reason: str
) -> WatchListEntry:
    """End an entry: it stops applying and stays listed (and in the log) as retired."""
    _require(by, "edit watch lists")
    entry = _active(session, entry_id, seen_version)
    reason = _reason(reason)
    now = utcnow()
    entry.retired_at = now
    entry.retired_by = by.username
    entry.changed_at = now
    entry.changed_by = by.username
    _flush(session, entry)
    _audit(session, by, "watch_list_retired", entry, reason, before=_snapshot(rule_of(entry)))
    _forget_cache()
    return entry


def _active(session: Session, entry_id: int, seen_version: int) -> WatchListEntry:
    entry = session.get(WatchListEntry, entry_id, populate_existing=True)
    if entry is None:
        raise NotFoundError(f"no watch-list entry {entry_id} in the store")
    if entry.version != seen_version:
        raise _conflict(entry)
    if entry.retired_at is not None:
        raise WatchListError(f"rule {entry.name!r} is retired; add a new entry instead")
    return entry


def _flush(session: Session, entry: WatchListEntry) -> None:
    try:
        session.flush()  # UPDATE ... WHERE version = :loaded (the ORM's version counter)
    except StaleDataError as error:  # someone committed between our read and our write
        session.rollback()
        fresh = session.get(WatchListEntry, entry.id, populate_existing=True) or entry
        raise _conflict(fresh) from error


def _conflict(entry: WatchListEntry) -> WatchListConflictError:
    return WatchListConflictError(
        f"rule {entry.name!r} was changed by {entry.changed_by} at "
        f"{entry.changed_at:%Y-%m-%d %H:%M:%S} UTC after you opened it; nothing was saved. "
        "Reload the page, check the change, and save again if it still stands."
    )


def _audit(
    session: Session,
    by: User,
    action: str,
    entry: WatchListEntry,
    reason: str,
    *,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
) -> None:
    details: dict[str, Any] = {
        "entry_id": entry.id,
        "name": entry.name,
        "lane": entry.lane,
        "reason": reason,
        "version": entry.version,
    }
    if before is not None:
        details["before"] = before
    if after is not None:
        details["after"] = after
    audit.append(session=session, actor=by.username, action=action, details=details)
    session.flush()


def list_entries(*, session: Session, retired: bool = False) -> Sequence[WatchListEntry]:
    """Active entries, red before green and then by name; or the retired ones, latest first."""
    if retired:
        query = (
            select(WatchListEntry)
            .where(WatchListEntry.retired_at.is_not(None))
            .order_by(WatchListEntry.retired_at.desc(), WatchListEntry.id.desc())
        )
    else:
        query = (
            select(WatchListEntry)
            .where(WatchListEntry.retired_at.is_(None))
            # "red" sorts after "green": descending puts the red rules first.
            .order_by(WatchListEntry.lane.desc(), WatchListEntry.name)
        )
    return session.scalars(query).all()


def get_entry(*, session: Session, entry_id: int) -> WatchListEntry:
    entry = session.get(WatchListEntry, entry_id)
    if entry is None:
        raise NotFoundError(f"no watch-list entry {entry_id} in the store")
    return entry


def active_rules(*, session: Session, on: date | None = None) -> RuleSet:
    """The active entries as rules; with ``on``, only those valid that day.

    Without ``on`` an entry's own validity still applies per declaration when it is matched
    (``HardRule.matches`` compares each item's day), so a batch scored later stays right.
    """
    query = (
        select(WatchListEntry)
        .where(WatchListEntry.retired_at.is_(None))
        .order_by(WatchListEntry.id)
    )
    if on is not None:
        query = query.where(
            or_(WatchListEntry.valid_from.is_(None), WatchListEntry.valid_from <= on),
            or_(WatchListEntry.valid_until.is_(None), WatchListEntry.valid_until >= on),
        )
    return RuleSet(rules=tuple(rule_of(entry) for entry in session.scalars(query)))


# On-the-spot scoring asks for the rules on every request: the entries are read again only
# when the store's watch lists changed (a change bumps an entry's version or adds one).
_cache: dict[tuple[str, int, int, int], RuleSet] = {}
_cache_lock = threading.Lock()
MAX_CACHED = 32


def _forget_cache() -> None:
    with _cache_lock:
        _cache.clear()


def rules_in_force(*, session: Session, base: RuleSet | None = None) -> RuleSet:
    """The rules file's rules (``base``) and then the store's active watch-list entries."""
    count, versions, retired = session.execute(
        select(
            func.count(WatchListEntry.id),
            func.coalesce(func.sum(WatchListEntry.version), 0),
            func.count(WatchListEntry.retired_at),
        )
    ).one()
    bind = session.get_bind()
    url = bind.engine.url if isinstance(bind, Connection) else bind.url
    key = (str(url), int(count), int(versions), int(retired))
    with _cache_lock:
        stored = _cache.get(key)
    if stored is None:
        stored = active_rules(session=session) if count else RuleSet()
        with _cache_lock:
            if len(_cache) >= MAX_CACHED:
                _cache.clear()
            _cache[key] = stored
    if base is None or not base.rules:
        return stored
    return merge_rules(base, stored) if stored.rules else base
