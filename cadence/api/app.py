"""The FastAPI application: the HTTP API under /api/v1, /healthz, /metrics, and the dashboard.

``create_app(runtime)`` builds it around an open :class:`~cadence.engine.runtime.Runtime`;
``cadence serve`` runs it with Uvicorn next to the workers.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from cadence.api.deps import AppState, WatcherHealth
from cadence.api.errors import install_error_handlers
from cadence.api.routers import (
    accounts,
    activity,
    cadences,
    enrollments,
    mailboxes,
    prospects,
    system,
)
from cadence.api.schemas import ErrorBody
from cadence.engine.runtime import Runtime
from cadence.engine.scheduling import Clock, system_clock

API_PREFIX = "/api/v1"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A usage error (the CLI's codes)."},
    401: {"model": ErrorBody, "description": "No or bad API token."},
    404: {"model": ErrorBody, "description": "Not found (or not yours)."},
    422: {"model": ErrorBody, "description": "The request does not match the schema."},
}


def _version() -> str:
    try:
        return version("cadence")
    except PackageNotFoundError:
        return "0"


def create_app(
    runtime: Runtime,
    *,
    clock: Clock = system_clock,
    setup_token: str | None = None,
    watchers: WatcherHealth | None = None,
    dashboard: bool = True,
) -> FastAPI:
    app = FastAPI(
        title="Cadence",
        version=_version(),
        description=(
            "Email cadences sent from your own mailbox, with IMAP reply tracking. "
            "Authenticate with `Authorization: Bearer <token>`; errors are "
            '`{"error": {"code", "message", "hint"}}` with the codes the CLI uses.'
        ),
    )
    app.state.cadence = AppState(runtime, clock, setup_token, watchers)
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX, responses=_ERRORS)
    for module in (accounts, mailboxes, cadences, prospects, enrollments, activity):
        api.include_router(module.router)
    _include_webhooks(api)
    app.include_router(api)
    app.include_router(system.router)
    if dashboard:
        from cadence.web.dashboard import router as web

        app.include_router(web)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _include_webhooks(api: APIRouter) -> None:
    """Webhooks are stored by the reply-tracking store (issue 5): served when it exists."""
    import importlib

    try:
        webhooks = importlib.import_module("cadence.api.routers.webhooks")
    except ImportError:
        return
    api.include_router(webhooks.router)
