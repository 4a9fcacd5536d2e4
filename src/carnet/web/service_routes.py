"""Service endpoints: health for the operators' probes, and the home page.

The home page at ``/`` says what Carnet is and leads each kind of visitor on: patients and
professionals to the portal's sign-in, software makers to the API's description; in the
visitor's language (their choice, else their browser's), with no data of anyone.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import text

import carnet
from carnet import schema
from carnet.platform import Platform
from carnet.storage import StorageError
from carnet.web.i18n import LANGUAGE_COOKIE, LANGUAGE_NAMES, LANGUAGES, negotiate, translations

log = logging.getLogger(__name__)
router = APIRouter()


def _page(language: str) -> Environment:
    """The web templates, speaking ``language``."""
    environment = Environment(
        loader=PackageLoader("carnet.web", "templates"),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return environment


@router.get("/health", tags=["service"], summary="Is Carnet able to serve?")
def health(request: Request) -> JSONResponse:
    """Checks the database (and its schema revision) and the document store."""
    current: Platform = request.app.state.platform
    checks: dict[str, Any] = {}
    healthy = True
    try:
        with current.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = schema.current_revision(current.engine)
        head = schema.head_revision(current.engine)
        checks["database"] = "ok" if revision == head else f"schema at {revision}, code at {head}"
        healthy = revision == head
    except Exception:
        log.exception("health: database unreachable")
        checks["database"] = "unreachable"
        healthy = False
    try:
        current.store.check()
        checks["store"] = "ok"
    except StorageError:
        log.exception("health: store unavailable")
        checks["store"] = "unavailable"
        healthy = False
    body = {
        "status": "ok" if healthy else "unavailable",
        "version": carnet.__version__,
        **checks,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    """What Carnet is, the way in for each visitor, and the language switch."""
    language = negotiate(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    page = (
        _page(language)
        .get_template("home.html")
        .render(
            version=carnet.__version__,
            language=language,
            languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        )
    )
    return HTMLResponse(page)
