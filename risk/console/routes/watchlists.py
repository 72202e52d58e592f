"""Watch lists: every role reads them; supervisors add, change and retire entries, each with
a reason that goes to the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from risk import store
from risk.console.deps import CsrfChecked, CurrentUser, DbSession, Lang, Supervisor
from risk.console.i18n import translator
from risk.console.schemas import RetireForm, WatchListForm, WatchListView
from risk.console.views import render

router = APIRouter(include_in_schema=False)

SAVED = {"added", "changed", "retired"}
EMPTY_FORM: dict[str, str] = {"lane": "red"}


def _views(db: DbSession, *, retired: bool) -> list[WatchListView]:
    return [
        WatchListView.model_validate(entry)
        for entry in store.list_entries(session=db, retired=retired)
    ]


def _page(
    request: Request,
    db: DbSession,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, Any] | None = None,
    add_open: bool = False,
) -> Response:
    db.expire_all()
    return render(
        request,
        "watchlists.html",
        {
            "active": _views(db, retired=False),
            "retired": _views(db, retired=True),
            "error": error,
            "notice": notice,
            "form": form or EMPTY_FORM,
            "add_open": add_open,
        },
        status_code=status_code,
    )


def _editor(
    request: Request,
    entry: WatchListView,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The edit form: alone for htmx (swapped into the list page), else as a page."""
    template = "_watchlist_edit.html" if request.headers.get("HX-Request") else "watchlist.html"
    return render(
        request,
        template,
        {"entry": entry, "form": form or entry.form_values(), "error": error},
        status_code=status_code,
    )


@router.get("/watchlists", response_class=HTMLResponse)
def watchlists_page(
    request: Request, user: CurrentUser, db: DbSession, lang: Lang, saved: str | None = None
) -> Response:
    notice = translator(lang)(f"wl_saved_{saved}") if saved in SAVED else None
    return _page(request, db, notice=notice)


@router.post("/watchlists", response_class=HTMLResponse)
def add_entry(
    request: Request,
    user: Supervisor,
    db: DbSession,
    _csrf: CsrfChecked,
    form: Annotated[WatchListForm, Form()],
) -> Response:
    try:
        store.add_entry(session=db, by=user, values=form.rule_values(), reason=form.reason)
        db.commit()
    except store.WatchListError as error:
        db.rollback()
        return _page(
            request, db, status_code=400, error=str(error), form=form.model_dump(), add_open=True
        )
    return RedirectResponse("/watchlists?saved=added", status_code=303)


@router.get("/watchlists/{entry_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, user: Supervisor, db: DbSession, entry_id: int) -> Response:
    entry = WatchListView.model_validate(store.get_entry(session=db, entry_id=entry_id))
    if entry.retired_at is not None:
        return _page(request, db, status_code=409, error=f"rule {entry.name!r} is retired")
    return _editor(request, entry)


@router.post("/watchlists/{entry_id}", response_class=HTMLResponse)
def change_entry(
    request: Request,
    user: Supervisor,
    db: DbSession,
    _csrf: CsrfChecked,
    entry_id: int,
    form: Annotated[WatchListForm, Form()],
) -> Response:
    try:
        store.change_entry(
            session=db,
            entry_id=entry_id,
            seen_version=form.version,
            by=user,
            values=form.rule_values(),
            reason=form.reason,
        )
        db.commit()
    except (store.WatchListError, store.WatchListConflictError) as error:
        db.rollback()
        entry = WatchListView.model_validate(store.get_entry(session=db, entry_id=entry_id))
        status = 409 if isinstance(error, store.WatchListConflictError) else 400
        values = form.model_dump()
        if status == 409:  # show what stands now; the supervisor decides again
            values = entry.form_values() | {"reason": form.reason}
        return _editor(request, entry, form=values, error=str(error), status_code=status)
    return RedirectResponse("/watchlists?saved=changed", status_code=303)


@router.post("/watchlists/{entry_id}/retire", response_class=HTMLResponse)
def retire_entry(
    request: Request,
    user: Supervisor,
    db: DbSession,
    _csrf: CsrfChecked,
    entry_id: int,
    form: Annotated[RetireForm, Form()],
) -> Response:
    try:
        store.retire_entry(
            session=db, entry_id=entry_id, seen_version=form.version, by=user, reason=form.reason
        )
        db.commit()
    except (store.WatchListError, store.WatchListConflictError) as error:
        db.rollback()
        status = 409 if isinstance(error, store.WatchListConflictError) else 400
        return _page(request, db, status_code=status, error=str(error))
    return RedirectResponse("/watchlists?saved=retired", status_code=303)
