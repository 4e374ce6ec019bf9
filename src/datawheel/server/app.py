"""The ASGI app of ``datawheel serve``: JSON API, OpenAI-compatible routes, web UI, jobs."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datawheel.errors import ConfigError
from datawheel.server import errors
from datawheel.server.service import Service

if TYPE_CHECKING:
    from datawheel.workspace import Workspace


class BodyLimit:
    """413 for a request body over the limit, declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        mb = self.max_bytes / 2**20
        response = errors.error(
            413, f"the request is over the {mb:g} MB limit (server.max_request_mb)"
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_API_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


class SameOrigin:
    """Refuse state-changing requests that a browser sends from another origin.

    A signed-in browser sends its session cookie with a form post from any page of the same
    site (another port of the same host included, which SameSite does not stop). So a POST,
    PUT, PATCH or DELETE that carries no API key must come from this service's own origin
    (the Origin header's host:port equals the Host header's) or one in
    ``server.allowed_origins``; without an Origin header, ``Sec-Fetch-Site`` must say
    same-origin. Clients that send neither (curl, SDKs) are not browsers and carry no
    ambient cookie of a victim. JSON under /api and /v1 is also marked no-store and nosniff.
    """

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allowed = {urlsplit(o).netloc.lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] in _UNSAFE and "authorization" not in headers:
            problem = self._cross_site(headers)
            if problem:
                response = errors.error(
                    403,
                    f"cross-site request refused ({problem}): post from the service's own "
                    "pages, send an API key, or add the origin to server.allowed_origins",
                )
                await response(scope, receive, send)
                return
        if not scope["path"].startswith(("/api/", "/v1/")):
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _API_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, marked)

    def _cross_site(self, headers: dict[str, str]) -> str | None:
        origin = headers.get("origin")
        host = headers.get("x-forwarded-host", headers.get("host", "")).lower()
        if origin is not None:
            netloc = urlsplit(origin).netloc.lower()
            if origin == "null" or (netloc != host and netloc not in self.allowed):
                return f"Origin {origin} is not this service"
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"Sec-Fetch-Site {site}"
        return None


def create_app(
    ws: Workspace,
    *,
    scheduler: bool = False,
    warm: bool = True,
    jobs_elsewhere: bool = False,
    shared_limits: bool = False,
) -> FastAPI:
    """The service over one open workspace; ``scheduler`` also runs the scheduled jobs,
    ``jobs_elsewhere`` says another worker of the same service runs them, and
    ``shared_limits`` counts the rate limits in the store, together with the other workers."""
    from datawheel.server import api, openai_api, ui

    svc = Service(ws, shared_limits=shared_limits)
    svc.jobs_elsewhere = jobs_elsewhere and not scheduler

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            svc.warm()
        if scheduler:
            from datawheel.server.scheduler import Scheduler

            svc.scheduler = Scheduler(svc)
            svc.scheduler.start()
        try:
            yield
        finally:
            if svc.scheduler is not None:
                svc.scheduler.stop()

    app = FastAPI(
        title="datawheel",
        summary="Answers with citations from your knowledge base, feedback, data and models.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.service = svc
    errors.install(app)
    app.include_router(api.router)
    app.include_router(openai_api.router)
    ui.install(app)
    limit = int(ws.config.server.max_request_mb * 2**20)
    app.add_middleware(BodyLimit, max_bytes=limit)  # type: ignore[arg-type]
    app.add_middleware(SameOrigin, allowed=ws.config.server.allowed_origins)  # type: ignore[arg-type]
    return app


def _version() -> str:
    from importlib.metadata import version

    try:
        return version("datawheel")
    except Exception:  # not installed (source checkout)
        return "0"


WORKSPACE_ENV = "DATAWHEEL_WORKSPACE"


def serve(ws: Workspace, host: str, port: int, *, workers: int = 1, **uvicorn_options: Any) -> None:
    """Run the service; several worker processes need the PostgreSQL store."""
    import uvicorn

    _check_port(host, port)  # before the models load, not after
    if workers <= 1:
        uvicorn.run(create_app(ws, scheduler=True), host=host, port=port, **uvicorn_options)
        return
    if not ws.store.is_postgres:
        raise ConfigError(
            f"--workers {workers} needs the PostgreSQL store (set DATAWHEEL_DATABASE_URL or "
            "store.url): on SQLite one process serves, its requests running side by side "
            "in threads"
        )
    os.environ[WORKSPACE_ENV] = str(ws.path)
    uvicorn.run(
        "datawheel.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=ws.config.server.worker_healthcheck_s,
        **uvicorn_options,
    )


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, with what to do (uvicorn would find out
    only after the workspace's models had loaded)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (another datawheel "
                "serve, or another program, may use it); pick another with --port"
            ) from None


def app_from_env() -> FastAPI:
    """A worker's app (uvicorn --factory): the workspace named by DATAWHEEL_WORKSPACE.

    The scheduled jobs run in one worker only: the first to take the workspace's
    ``scheduler.lock`` file lock (held for the worker's lifetime).
    """
    from datawheel.workspace import Workspace

    path = os.environ.get(WORKSPACE_ENV)
    if not path:
        raise ConfigError(f"set {WORKSPACE_ENV} to the workspace folder to serve")
    ws = Workspace.open(path)
    runs_jobs = _take_scheduler_lock(ws.path / "scheduler.lock")
    return create_app(ws, scheduler=runs_jobs, jobs_elsewhere=not runs_jobs, shared_limits=True)


_LOCKS: list[Any] = []  # open lock files stay referenced for the process's lifetime


def _take_scheduler_lock(path: Path) -> bool:
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _LOCKS.append(handle)
    return True
