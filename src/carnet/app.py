"""The ASGI application: built by ``create_app(settings)``, nothing at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import carnet
from carnet.auth.federation import Federation
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.fhir import outcome as fhir_outcome
from carnet.fhir import router as fhir
from carnet.lifecycle.jobs import deliver_notices
from carnet.notifications.mailer import mailer_from_url
from carnet.oauth import application as oauth
from carnet.oauth import authorize, tokens
from carnet.platform import Platform, build_platform
from carnet.portal import application as portal
from carnet.settings import Settings
from carnet.web import service_routes
from carnet.web.access_log import AccessLog
from carnet.web.limits import RequestLimitsMiddleware
from carnet.web.way_in import WayIn, openapi_of, unexpected_incident
from carnet.xds import router as xds

log = logging.getLogger(__name__)

# Served by Carnet itself: no CDN at run time.
_SWAGGER_ASSETS = "/static/swagger"
_BASE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The Swagger UI page starts itself with an inline script; only that page allows it.
_DOCS_CSP = _BASE_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


def served_app() -> ASGIApp:
    """What ``carnet serve``'s workers serve: Carnet, each request logged by ``AccessLog``."""
    return AccessLog(create_app())


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    """Build the Carnet application; the platform is opened at startup and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = platform is None
        current = platform or build_platform(settings or Settings())
        app.state.platform = current
        app.state.authority = TokenAuthority.from_settings(current.settings, current.key_wrapper)
        app.state.sign_in_throttle = authorize.SignInThrottle()
        # Federated sign-in: the identity providers with a client_id, their metadata cached.
        app.state.federation = Federation(current.settings.external_issuers)
        if current.settings.demo_idp:
            # The demo's card reader, and only with the demo on: production code never imports
            # carnet.demo (an import-linter contract), so a deployment holds no demo secret.
            from carnet.demo.accounts import read_demo_card  # noqa: PLC0415

            app.state.demo_card_reader = read_demo_card
        outbox = _start_outbox(current)
        jobs = _start_jobs(current)
        try:
            yield
        finally:
            if outbox is not None:
                outbox.cancel()
            if jobs is not None:
                jobs.cancel()
                # A round under way ends first: its thread cannot be interrupted, and the
                # platform must not close under it.
                with suppress(asyncio.CancelledError):
                    await jobs
            if owned:
                app.state.platform.close()

    app = FastAPI(
        title="Carnet",
        version=carnet.__version__,
        description="The shared health record: one secure dossier per insured person.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _mount_swagger(app)

    # Added first, so it runs inside SecurityHeaders: its refusals carry the same headers.
    app.add_middleware(RequestLimitsMiddleware, fhir_refusal=fhir_outcome.outcome_response)
    app.add_middleware(SecurityHeaders)

    # What the site itself serves, outside any way in: its defects and unknown paths in plain
    # JSON. Each way in translates its own errors (carnet.web.way_in).
    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        incident = unexpected_incident(request, error)
        return JSONResponse(
            {"detail": f"Carnet could not complete this request (incident {incident})."},
            status_code=500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Headers carry what the status needs, such as a 401's WWW-Authenticate challenge.
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    app.include_router(service_routes.router)
    # Discovery sits at the site's root and at the FHIR base (SMART): before the FHIR way in,
    # which would otherwise answer /fhir/.well-known/… itself.
    app.include_router(tokens.discovery)
    ways_in = [
        WayIn(oauth.PREFIX, oauth.application(app.state)),
        WayIn("/fhir", fhir.application(app.state)),
        WayIn(portal.PREFIX, portal.application(app.state)),
        WayIn(xds.PREFIX, xds.application(app.state)),
    ]
    app.router.routes.extend(ways_in)
    app.openapi = lambda: openapi_of(app)  # type: ignore[method-assign]
    return app


class SecurityHeaders:
    """Headers every answer carries unless it set its own (a pure ASGI middleware).

    Starlette's ``@app.middleware("http")`` runs each request through a task and memory
    streams of its own, a tenth of a simple read's time; editing the start message costs none.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path") == "/docs"
        secure = _over_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if secure:
                    headers.setdefault("Strict-Transport-Security", _HSTS)
                headers.setdefault("Content-Security-Policy", _DOCS_CSP if docs else _BASE_CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                # Clinical or not, nothing Carnet answers belongs in a shared cache; static
                # assets say otherwise for themselves.
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Served content: a browser that once reached Carnet over https never again tries plain http
# for a year (RFC 6797); sent only over https, where browsers heed it.
_HSTS = "max-age=31536000"


def _over_https(scope: Scope) -> bool:
    """The request came over https, or Carnet is published at an https address (behind a
    proxy that ends TLS, ``scope["scheme"]`` says http: ``CARNET_PUBLIC_URL`` says how)."""
    if scope.get("scheme") == "https":
        return True
    platform = getattr(getattr(scope.get("app"), "state", None), "platform", None)
    return platform is not None and str(platform.settings.public_url).startswith("https://")


OUTBOX_INTERVAL_SECONDS = 5.0


def _start_outbox(platform: Platform) -> asyncio.Task[None] | None:
    """Deliver pending e-mail notices every few seconds, when e-mail is configured.

    Every worker runs it; the outbox locks what it sends (SKIP LOCKED), so a notice goes once.
    """
    url = platform.settings.smtp_url.get_secret_value() if platform.settings.smtp_url else ""
    mailer = mailer_from_url(url, platform.settings.mail_from)
    if mailer is None:
        return None

    def deliver() -> None:
        with unit_of_work(platform.sessions) as session:
            deliver_notices(session, mailer, clock=platform.clock)

    async def loop() -> None:
        while True:
            try:
                await run_in_threadpool(deliver)
            except Exception:
                log.exception("outbox: delivery round failed")
            await asyncio.sleep(OUTBOX_INTERVAL_SECONDS)

    return asyncio.get_running_loop().create_task(loop())


def _start_jobs(platform: Platform) -> asyncio.Task[None] | None:
    """Run the scheduled jobs every ``CARNET_JOBS_INTERVAL_SECONDS`` (0: never), first after one
    interval.

    Every worker runs them; they lock what they take (SKIP LOCKED, conditional UPDATEs, one row
    per periodic job), so two workers or two nodes never open or purge a dossier twice.
    """
    interval = platform.settings.jobs_interval_seconds
    if interval <= 0:
        return None

    def run() -> None:
        report = platform.run_jobs()
        log.info("%s", report.summary())

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(run)
            except Exception:
                log.exception("jobs: scheduled run failed")

    return asyncio.get_running_loop().create_task(loop())


def _mount_swagger(app: FastAPI) -> None:
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # noqa: PLC0415

    app.mount(_SWAGGER_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Carnet API",
            swagger_js_url=f"{_SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER_ASSETS}/favicon-32x32.png",
        )
