"""The running service: the workspace, its lock, the rate limiter, and who is calling."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from starlette.exceptions import HTTPException

from datawheel.errors import AuthError
from datawheel.server.locks import ReadWriteLock
from datawheel.users import User

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

SESSION_COOKIE = "datawheel_session"
log = logging.getLogger(__name__)


class Service:
    """What every request shares. Reads (ask, search, feedback) run side by side; work that
    changes the indexes or the model in use (ingest, improve, rollback) runs alone."""

    def __init__(self, ws: Workspace, *, shared_limits: bool = False) -> None:
        """``shared_limits``: count requests in the store, with the service's other workers
        (a fixed window per key), instead of in this process (a moving window)."""
        self.ws = ws
        self.lock = ReadWriteLock()
        self._limiter: RateLimiter
        if shared_limits:
            from datawheel.server.ratelimit import StoreCounters

            self._limiter = FixedWindowRateLimiter(StoreCounters(ws.store.engine))
        else:
            self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rate = parse(ws.config.server.rate_limit)
        # Failed sign-ins: per account (slows guessing one password) and per address (slows
        # trying many accounts). Past either, even the right password waits the window out.
        self._per_account = parse(ws.config.server.sign_in_limit)
        self._per_address = parse(ws.config.server.sign_in_address_limit)
        self.scheduler: Any = None
        self.jobs_elsewhere = False  # another worker of this service runs the scheduled jobs

    @contextmanager
    def reading(self) -> Iterator[Workspace]:
        with self.lock.read():
            self.ws.follow_versions()  # another worker may have promoted a version
            yield self.ws

    @contextmanager
    def writing(self) -> Iterator[Workspace]:
        with self.lock.write():
            yield self.ws

    def show_paths(self, items: Iterable[Any]) -> None:
        """Show each item's ``uri`` relative to the folder that was ingested, not as the
        server's absolute path (see ``datawheel.server.paths``)."""
        from datawheel.server.paths import shown_path

        roots = self.ws.store.ingest_roots()
        for item in items:
            item.uri = shown_path(item.uri, roots)
            fields = getattr(item, "fields", None)
            if isinstance(fields, dict) and isinstance(fields.get("uri"), str):
                item.fields = {**fields, "uri": shown_path(fields["uri"], roots)}

    def warm(self) -> None:
        """Load the model, indexes and calibration before the first request needs them."""
        from datawheel.apps.rag.calibrate import load_or_fit

        with self.writing() as ws:
            ws.indexes  # noqa: B018
            ws.model  # noqa: B018
            ws.generator  # noqa: B018
            load_or_fit(ws)

    def jobs(self, limit: int) -> dict[str, Any]:
        """Recent runs, the scheduled jobs and which worker runs them (``runs_in``): this
        one, another worker of the service, or none (an app built without a scheduler)."""
        from datawheel.server.scheduler import plan

        if self.scheduler is not None:
            planned, runs_in = self.scheduler.planned(), "this worker"
        elif self.jobs_elsewhere:
            planned, runs_in = plan(self.ws.config.schedules), "another worker"
        else:
            planned, runs_in = [], None
        return {
            "runs": self.ws.store.list_runs(limit=limit),
            "scheduled": planned,
            "runs_in": runs_in,
        }

    def identify(self, request: Request) -> User:
        header = request.headers.get("authorization")
        if header:
            scheme, _, key = header.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise AuthError("send the key as a header: Authorization: Bearer dw_...")
            user = self.ws.users.authenticate(key)
            bucket = "key:" + key.strip()[:11]
        elif token := request.cookies.get(SESSION_COOKIE):
            user = self.ws.users.session_user(token)
            bucket = "user:" + user.name
        else:
            raise AuthError(
                "missing API key: send Authorization: Bearer <key> "
                "(an admin creates one with: datawheel users add NAME)"
            )
        if not self._limiter.hit(self._rate, bucket):
            wait = self._wait(self._rate, bucket)
            raise HTTPException(
                429,
                f"rate limit of {self.ws.config.server.rate_limit} reached; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return user

    # -- sign-in backoff --------------------------------------------------------------------

    def before_sign_in(self, name: str, address: str) -> None:
        """Refuse a sign-in (429, even with the right password) while the account or the
        address has too many recent failures; say how long to wait."""
        for limit, bucket, who in self._sign_in_buckets(name, address):
            if not self._limiter.test(limit, bucket):
                wait = self._wait(limit, bucket)
                log.warning("sign-in refused: too many failed tries for %s; wait %d s", who, wait)
                raise HTTPException(
                    429,
                    f"too many failed sign-ins for {who}; try again in {wait} s, or sign in "
                    "with your API key",
                    headers={"Retry-After": str(wait)},
                )

    def failed_sign_in(self, name: str, address: str) -> None:
        log.warning("failed sign-in for %r from %s", name, address)
        for limit, bucket, _ in self._sign_in_buckets(name, address):
            self._limiter.hit(limit, bucket)

    def _sign_in_buckets(self, name: str, address: str) -> list[tuple[Any, str, str]]:
        buckets = [(self._per_address, f"signin-address:{address}", f"address {address}")]
        if name:
            buckets.append((self._per_account, f"signin-user:{name}", f"user {name!r}"))
        return buckets

    def _wait(self, limit: Any, bucket: str) -> int:
        reset = self._limiter.get_window_stats(limit, bucket).reset_time
        return max(1, math.ceil(reset - time.time()))


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def caller(request: Request) -> User:
    user = service(request).identify(request)
    request.state.user = user
    return user


def role(name: str) -> Callable[..., User]:
    """A dependency: the caller, who must have at least this role."""

    def check(user: Annotated[User, Depends(caller)]) -> User:
        user.require(name)
        return user

    return check


viewer = Depends(role("viewer"))
editor = Depends(role("editor"))
admin = Depends(role("admin"))
