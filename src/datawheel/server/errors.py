"""One error shape for every error: ``{"ok": false, "error": "...", "status": N}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from datawheel.errors import (
    AccessError,
    AuthError,
    ConfigError,
    DatawheelError,
    MissingExtraError,
    NotFoundError,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[DatawheelError], int]] = [
    (NotFoundError, 404),
    (AuthError, 401),
    (AccessError, 403),
    (MissingExtraError, 501),
    (ConfigError, 400),
    (DatawheelError, 400),
]


def status_of(exc: DatawheelError) -> int:
    return next(code for kind, code in _STATUS if isinstance(exc, kind))


def error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = "5"
    body = {"ok": False, "error": message, "status": status, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DatawheelError)
    async def _ours(_: Request, exc: DatawheelError) -> JSONResponse:
        return error(status_of(exc), str(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
            problems.append(f"{where}: {err['msg']}")
        return error(422, "invalid request: " + "; ".join(problems), fields=problems)

    @app.exception_handler(OperationalError)
    async def _store_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("the store failed: %s", exc)
        return error(
            503,
            "the store (database) did not answer; retry in a few seconds - if it persists, "
            "check that the database server is running (the server log has details)",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error(500, f"internal error ({type(exc).__name__}); the server log has details")
