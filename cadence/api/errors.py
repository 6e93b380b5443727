"""Error bodies: ``{"error": {"code", "message", "hint"}}`` with the codes the CLI uses.

Every failure a client can meet goes through here, so no request — however malformed — ends
in a bare 500: validation problems are 422 ``invalid_request``, and an unexpected exception is
logged and answered with ``internal_error`` (a bug to fix, never a normal outcome).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cadence.errors import CadenceError

log = logging.getLogger("cadence.api")

# Codes whose HTTP status is not 400.
STATUS_BY_CODE: dict[str, int] = {
    "unauthenticated": 401,
    "bad_token": 401,
    "bad_credentials": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_mailbox": 404,
    "unknown_cadence": 404,
    "unknown_prospect": 404,
    "unknown_enrollment": 404,
    "unknown_token": 404,
    "unknown_webhook": 404,
    "user_exists": 409,
    "cadence_exists": 409,
    "mailbox_exists": 409,
    "prospect_exists": 409,
    "already_set_up": 409,
    "not_paused": 409,
    "not_active": 409,
    "outcome_unknown": 409,
    "import_rejected": 422,
    "mailbox_check_failed": 422,
    "bad_setup_token": 403,
}


def error_body(code: str, message: str, hint: str = "", **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "hint": hint}
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def status_for(error: CadenceError) -> int:
    explicit = getattr(error, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    return STATUS_BY_CODE.get(error.code, 400)


def not_found(kind: str, ident: object) -> CadenceError:
    """A row that does not exist and a row that belongs to someone else look the same."""
    return CadenceError(f"no {kind} {ident}", code=f"unknown_{kind}", hint=f"list your {kind}s")


def install_error_handlers(app: FastAPI) -> None:
    async def cadence_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CadenceError)
        extra: dict[str, Any] = {}
        if exc.detail:
            extra["detail"] = exc.detail
        if exc.server_reply:
            extra["server_reply"] = exc.server_reply
        return JSONResponse(
            error_body(exc.code, exc.message, exc.hint, **extra), status_code=status_for(exc)
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append({"field": where, "message": str(err.get("msg", ""))})
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return JSONResponse(
            error_body(
                "invalid_request",
                f"{first['field']}: {first['message']}".strip(": "),
                "see /docs for the request's schema",
                detail={"errors": problems},
            ),
            status_code=422,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail), ""),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "unexpected error", "see the server's log"),
            status_code=500,
        )

    app.add_exception_handler(CadenceError, cadence_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
