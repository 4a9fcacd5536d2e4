"""Service endpoints: health for the operators' probes, and the home page."""

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

log = logging.getLogger(__name__)
router = APIRouter()
_templates = Environment(
    loader=PackageLoader("carnet.web", "templates"), autoescape=select_autoescape()
)


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
def home() -> HTMLResponse:
    page = _templates.get_template("home.html").render(version=carnet.__version__)
    return HTMLResponse(page)
