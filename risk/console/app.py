"""The officers' console: ``create_app(settings)`` builds the FastAPI application.

Pages are rendered on the server (Jinja2) and refreshed with htmx, vendored in ``static/``;
nothing is fetched from another site. ``risk console`` serves it with uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from risk import store
from risk.console.deps import ApiAuthError, ConsoleState, LoginRequiredError, get_lang
from risk.console.i18n import translator
from risk.console.scoring import ModelUnavailableError, ScoringService
from risk.console.security import CsrfError, Signer, console_secret
from risk.console.views import FILTERS, render
from risk.settings import Settings

HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# No inline scripts anywhere, so the policy can forbid them: htmx and the page code are files.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every response (a plain ASGI middleware: no overhead of
    a request object per call)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope["path"] in ("/api/docs", "/api/redoc")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not is_docs:  # Swagger UI needs its own scripts
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings,
    *,
    model_uri: str | None = None,
    scoring: ScoringService | None = None,
    refresh_seconds: int = 20,
) -> FastAPI:
    """The console over the store at ``settings.database_url`` (already migrated).

    Refuses to start without a proper ``RISK_SECRET_KEY`` unless ``settings.env`` is
    ``development``. ``model_uri`` names the model the API scores with (the champion of the
    canonical profile by default); ``scoring`` replaces the whole scoring service (tests).
    """
    secret = console_secret(settings)
    engine = store.make_engine(str(settings.database_url))
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(FILTERS)
    state = ConsoleState(
        settings=settings,
        engine=engine,
        sessions=store.session_factory(engine),
        signer=Signer(secret),
        templates=templates,
        scoring=scoring or ScoringService(settings=settings, model_uri=model_uri),
        refresh_seconds=refresh_seconds,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Grey-import risk console",
        version="1",
        summary="Officers' queue, results, overrides and audit; on-the-spot truck scoring.",
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.console = state
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from risk.console.routes import api, auth, pages, watchlists

    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(watchlists.router)
    app.include_router(api.router)
    _add_error_pages(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, key: str, detail: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": detail}, status_code=status)
    t = translator(get_lang(request))
    return render(request, "error.html", {"title": t(key), "detail": detail}, status_code=status)


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(LoginRequiredError)
    async def _login(request: Request, _error_: LoginRequiredError) -> Response:
        if request.headers.get("HX-Request"):
            # htmx follows this header with a full page load of the log-in page.
            return HTMLResponse("", headers={"HX-Redirect": "/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/queue"
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(ApiAuthError)
    async def _api_auth(_request: Request, error: ApiAuthError) -> Response:
        return JSONResponse(
            {"detail": str(error)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(store.PermissionDeniedError)
    async def _forbidden(request: Request, error: store.PermissionDeniedError) -> Response:
        return _error(request, 403, "forbidden", str(error))

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, error: CsrfError) -> Response:
        t = translator(get_lang(request))
        return _error(request, 403, "error", f"{t('csrf_failed')} ({error})")

    @app.exception_handler(store.NotFoundError)
    async def _not_found(request: Request, error: store.NotFoundError) -> Response:
        return _error(request, 404, "not_found", str(error))

    @app.exception_handler(ModelUnavailableError)
    async def _no_model(request: Request, error: ModelUnavailableError) -> Response:
        return _error(request, 503, "error", str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if _is_api(request):
            return await request_validation_exception_handler(request, error)
        problems = [_describe(e) for e in error.errors()]
        return _error(request, 422, "error", "; ".join(problems))


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
    return f"{where}: {error.get('msg', 'invalid')}"
