"""From store rows to the console's models, and from models to pages."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from risk import store
from risk.console.deps import ConsoleState, csrf_nonce, get_lang
from risk.console.i18n import DEFAULT_LANGUAGE, translator
from risk.console.schemas import (
    AuditView,
    DeclarationView,
    InspectionView,
    ItemView,
    QueueEntry,
    TrackRecordView,
    TruckView,
)
from risk.console.security import CSRF_COOKIE, CSRF_MAX_AGE_S, LANG_COOKIE, Signer
from risk.store.models import AuditEntry, Declaration, Inspection, Item, Truck

YEAR_S = 365 * 24 * 3600


def reasons_in(row: Truck | Declaration | Item, lang: str) -> list[str]:
    """A stored row's reasons in ``lang``; the other language where it has none in
    ``lang`` (rows published before both were kept), else ``reasons`` as scored."""
    other = "en" if lang == "ru" else "ru"
    for texts in (getattr(row, f"reasons_{lang}", None), getattr(row, f"reasons_{other}", None)):
        if texts:
            return list(texts)
    return list(row.reasons or [])


def queue_entry(truck: Truck, *, now: datetime, lang: str = DEFAULT_LANGUAGE) -> QueueEntry:
    waiting = (now - truck.arrived_at).total_seconds() / 60 if truck.arrived_at else None
    return QueueEntry(
        id=truck.id,
        truck_id=truck.truck_id,
        crossing=truck.crossing,
        vehicle_plate=truck.vehicle_plate,
        lane=truck.lane,  # type: ignore[arg-type]
        model_lane=truck.model_lane,  # type: ignore[arg-type]
        decided_by=truck.decided_by,  # type: ignore[arg-type]
        selection=truck.selection,
        random_pick=truck.random_pick,
        risk=truck.risk,
        duty_at_risk_usd=truck.duty_at_risk_usd,
        n_items=truck.n_items,
        arrived_at=truck.arrived_at,
        waiting_minutes=max(waiting, 0.0) if waiting is not None else None,
        status=truck.status,  # type: ignore[arg-type]
        model_version=truck.model_version,
        reasons=reasons_in(truck, lang),
        version=truck.version,
    )


def audit_view(entry: AuditEntry) -> AuditView:
    return AuditView.model_validate(entry, from_attributes=True)


def truck_view(
    *, session: Session, truck: Truck, now: datetime, lang: str = DEFAULT_LANGUAGE
) -> TruckView:
    importers = [d.importer_id for d in truck.declarations]
    records = store.track_records(session=session, importer_ids=importers)
    latest = session.query(Inspection).filter(Inspection.truck_pk == truck.id)
    inspection = latest.order_by(Inspection.id.desc()).first()
    history = store.entries(session=session, truck_pk=truck.id, limit=50)
    declarations = []
    for declaration in truck.declarations:
        record = records[declaration.importer_id]
        declarations.append(
            DeclarationView(
                declaration_id=declaration.declaration_id,
                declared_at=declaration.declared_at,
                importer_id=declaration.importer_id,
                importer_registered_on=declaration.importer_registered_on,
                declarant_id=declaration.declarant_id,
                procedure=declaration.procedure,
                risk=declaration.risk,
                duty_at_risk_usd=declaration.duty_at_risk_usd,
                reasons=reasons_in(declaration, lang),
                track_record=TrackRecordView(
                    importer_id=record.importer_id,
                    inspected=record.inspected,
                    violations=record.violations,
                    hit_rate=record.hit_rate,
                    extra_duty_usd=record.extra_duty_usd,
                    last_violation_at=record.last_violation_at,
                ),
                items=[
                    ItemView(
                        item_no=item.item_no,
                        hs_code=item.hs_code,
                        goods_description=item.goods_description,
                        origin_country=item.origin_country,
                        dispatch_country=item.dispatch_country,
                        net_mass_kg=item.net_mass_kg,
                        gross_mass_kg=item.gross_mass_kg,
                        customs_value_usd=item.customs_value_usd,
                        usd_per_kg=item.customs_value_usd / item.net_mass_kg
                        if item.net_mass_kg
                        else None,
                        duty_rate_pct=item.duty_rate_pct,
                        risk=item.risk,
                        duty_at_risk_usd=item.duty_at_risk_usd,
                        reasons=reasons_in(item, lang),
                    )
                    for item in declaration.items
                ],
            )
        )
    return TruckView(
        **queue_entry(truck, now=now, lang=lang).model_dump(),
        run_id=truck.run_id,
        lane_set_at=truck.lane_set_at,
        declarations=declarations,
        inspection=InspectionView.model_validate(inspection, from_attributes=True)
        if inspection
        else None,
        history=[audit_view(e) for e in history],
    )


# --- formatting for the templates ---------------------------------------------------------


def _group(number: str) -> str:
    return number.replace(",", "\u202f")


def usd(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return _group(f"{value:,.{digits}f}")


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if float(value).is_integer():
        return _group(f"{int(value):,}")
    return _group(f"{value:,.{digits}f}")


def percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}\u00a0%"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def waiting(minutes: float | None, t: Callable[..., str]) -> str:
    if minutes is None:
        return "—"
    total = int(minutes)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}\u00a0{t('days_short')} {hours}\u00a0{t('hours_short')}"
    if hours:
        return f"{hours}\u00a0{t('hours_short')} {mins:02d}\u00a0{t('minutes_short')}"
    return f"{mins}\u00a0{t('minutes_short')}"


def actor_label(actor: str, t: Callable[..., str]) -> str:
    """Who acted, in the page's language (the log keeps the stable English form)."""
    if actor.startswith("model "):
        return f"{t('decided_model')} {actor.removeprefix('model ')}"
    return {
        "random share": t("decided_random"),
        "rule": t("decided_rule"),
        "cli": t("actor_cli"),
    }.get(actor, actor)


def lang_url(request: Request, lang: str) -> str:
    """This page in another language, its filters kept."""
    params = dict(request.query_params)
    params["lang"] = lang
    return f"{request.url.path}?{urlencode(params)}"


FILTERS: dict[str, Callable[..., Any]] = {
    "usd": usd,
    "number": number,
    "percent": percent,
    "when": when,
}


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the visitor's language, with the CSRF token its forms and htmx send."""
    state: ConsoleState = request.app.state.console
    lang = get_lang(request)
    t = translator(lang)
    nonce = csrf_nonce(request)
    signer: Signer = state.signer
    response = state.templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "lang": lang,
            "user": getattr(request.state, "user", None),
            "csrf_token": signer.csrf_token(nonce),
            "refresh_seconds": state.refresh_seconds,
            "wait": lambda minutes: waiting(minutes, t),
            "actor": lambda name: actor_label(name, t),
            "lang_url": lambda code: lang_url(request, code),
            **context,
        },
        status_code=status_code,
    )
    secure = request.url.scheme == "https"
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=CSRF_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    if request.query_params.get("lang") == lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=YEAR_S, samesite="lax", secure=secure)
    return response
