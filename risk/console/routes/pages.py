"""The officers' pages: queue, truck, results, overrides, audit log, dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from risk import store
from risk.console.charts import LANE_COLOURS, Bar, bar_chart
from risk.console.deps import (
    CsrfChecked,
    CurrentUser,
    DbSession,
    Lang,
    Recorder,
    Supervisor,
    get_lang,
)
from risk.console.i18n import translator
from risk.console.schemas import OverrideForm, ResultForm
from risk.console.views import percent, queue_entry, render, truck_view, usd
from risk.schemas import LANES, RESULTS, VIOLATION_TYPES
from risk.store.audit import ACTIONS

router = APIRouter(include_in_schema=False)

Crossing = Annotated[str | None, Query(max_length=64)]
# The filter form sends an empty value for "all lanes".
LaneFilter = Annotated[str | None, Query(pattern="^(|green|yellow|red|blue)$")]


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


def _queue_context(
    db: DbSession, crossing: str | None, lane: str | None, lang: str
) -> dict[str, object]:
    now = store.utcnow()
    trucks = store.queue(session=db, crossing=crossing or None, lane=lane or None)
    return {
        "crossing": crossing or "",
        "lane": lane or "",
        "crossings": store.crossings(session=db),
        "counts": store.lane_counts(session=db, crossing=crossing or None),
        "trucks": [queue_entry(t, now=now, lang=lang) for t in trucks],
        "now": now,
        "lanes": store.LANE_ORDER,
    }


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    user: CurrentUser,
    db: DbSession,
    crossing: Crossing = None,
    lane: LaneFilter = None,
) -> Response:
    return render(request, "queue.html", _queue_context(db, crossing, lane, get_lang(request)))


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(
    request: Request,
    user: CurrentUser,
    db: DbSession,
    crossing: Crossing = None,
    lane: LaneFilter = None,
) -> Response:
    """The queue's table body alone: what the page's htmx polling swaps in."""
    context = _queue_context(db, crossing, lane, get_lang(request))
    return render(request, "_queue_rows.html", context)


def _truck_page(
    request: Request,
    db: DbSession,
    truck_pk: int,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    db.expire_all()
    truck = store.get_truck(session=db, truck_pk=truck_pk)
    view = truck_view(session=db, truck=truck, now=store.utcnow(), lang=get_lang(request))
    return render(
        request,
        "truck.html",
        {
            "truck": view,
            "results": RESULTS,
            "violations": VIOLATION_TYPES,
            "lanes": LANES,
            "error": error,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get("/trucks/{truck_pk}", response_class=HTMLResponse)
def truck_page(
    request: Request,
    user: CurrentUser,
    db: DbSession,
    lang: Lang,
    truck_pk: int,
    saved: str | None = None,
) -> Response:
    t = translator(lang)
    notice = {"result": t("result_saved"), "override": t("override_saved")}.get(saved or "")
    return _truck_page(request, db, truck_pk, notice=notice)


def _refused(
    request: Request, db: DbSession, truck_pk: int, lang: str, error: Exception
) -> Response:
    t = translator(lang)
    if isinstance(error, store.ConflictError):
        message = t(
            "conflict",
            truck=error.truck_id,
            actor=error.actor or "?",
            at=f"{error.at:%H:%M:%S}" if error.at else "?",
        )
        db.rollback()
        return _truck_page(request, db, truck_pk, status_code=409, error=message)
    db.rollback()
    return _truck_page(request, db, truck_pk, status_code=400, error=str(error))


@router.post("/trucks/{truck_pk}/result", response_class=HTMLResponse)
def record_result(
    request: Request,
    user: Recorder,
    db: DbSession,
    lang: Lang,
    _csrf: CsrfChecked,
    truck_pk: int,
    form: Annotated[ResultForm, Form()],
) -> Response:
    try:
        store.record_result(
            session=db,
            truck_pk=truck_pk,
            seen_version=form.version,
            by=user,
            result=form.result,
            extra_duty_usd=form.extra_duty_usd,
            notes=form.notes,
            declaration_id=form.declaration_id or None,
        )
        db.commit()
    except (store.ConflictError, store.DecisionError) as error:
        return _refused(request, db, truck_pk, lang, error)
    return RedirectResponse(f"/trucks/{truck_pk}?saved=result", status_code=303)


@router.post("/trucks/{truck_pk}/override", response_class=HTMLResponse)
def override_lane(
    request: Request,
    user: Supervisor,
    db: DbSession,
    lang: Lang,
    _csrf: CsrfChecked,
    truck_pk: int,
    form: Annotated[OverrideForm, Form()],
) -> Response:
    try:
        store.override_lane(
            session=db,
            truck_pk=truck_pk,
            seen_version=form.version,
            by=user,
            lane=form.lane,
            reason=form.reason,
        )
        db.commit()
    except (store.ConflictError, store.DecisionError) as error:
        return _refused(request, db, truck_pk, lang, error)
    return RedirectResponse(f"/trucks/{truck_pk}?saved=override", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: CurrentUser,
    db: DbSession,
    action: Annotated[str | None, Query(max_length=32)] = None,
    truck: Annotated[str | None, Query(max_length=96)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    page_size = 100
    entries = store.entries(
        session=db,
        action=action if action in ACTIONS else None,
        truck_id=truck or None,
        before_id=before,
        limit=page_size,
    )
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "actions": ACTIONS,
            "action": action or "",
            "truck": truck or "",
            "older": entries[-1].id if len(entries) == page_size else None,
        },
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request, user: CurrentUser, db: DbSession, lang: Lang, crossing: Crossing = None
) -> Response:
    t = translator(lang)
    figures = store.dashboard(session=db, crossing=crossing or None)
    lanes_chart = bar_chart(
        [
            Bar(t(f"lane_{lane}"), n, f"{n}", LANE_COLOURS[lane])
            for lane, n in figures.lanes.items()
        ],
        title=t("chart_lanes"),
    )
    hits_chart = bar_chart(
        [
            Bar(
                t(f"hit_{h.selection}"),
                h.rate or 0.0,
                f"{percent(h.rate)} ({h.violations}/{h.inspections})",
                {"targeted": "#c62828", "random": "#6a1b9a", "rule": "#546e7a"}.get(
                    h.selection, "#546e7a"
                ),
            )
            for h in figures.hit_rates
        ],
        title=t("chart_hits"),
        maximum=1.0,
    )
    results_chart = bar_chart(
        [
            Bar(t(f"result_{r}"), n, f"{n}", "#2e7d32" if r == "clean" else "#c62828")
            for r, n in sorted(figures.results.items(), key=lambda kv: -kv[1])
        ],
        title=t("chart_results"),
    )
    return render(
        request,
        "dashboard.html",
        {
            "figures": figures,
            "crossing": crossing or "",
            "crossings": store.crossings(session=db),
            "lanes_chart": lanes_chart,
            "hits_chart": hits_chart,
            "results_chart": results_chart if figures.results else None,
            "duty_recovered": usd(figures.duty_recovered_usd),
        },
    )
