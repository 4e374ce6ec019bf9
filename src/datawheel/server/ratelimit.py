"""Rate-limit counters in the workspace's store, so every worker of a service counts together.

One process keeps its counters in memory (``limits``' moving window). Several workers
(``datawheel serve --workers N``, PostgreSQL) count in the store's ``rate_limits`` table
instead: a fixed window per key, incremented by one atomic upsert per request.

Example:
    >>> limiter = FixedWindowRateLimiter(StoreCounters(ws.store.engine))
    >>> limiter.hit(parse("600/minute"), "key:dw_abc")
    True
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from datawheel.store.schema import rate_limits

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class StoreCounters(Storage):
    """``limits`` storage over the ``rate_limits`` table (PostgreSQL or SQLite)."""

    STORAGE_SCHEME = None  # made directly, never from a storage URI

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._insert = _INSERTS[engine.dialect.name]

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count ``amount`` hits; a key whose window has ended starts a new one."""
        now = time.time()
        c = rate_limits.c
        stmt: Any = self._insert(rate_limits).values(key=key, hits=amount, expires_at=now + expiry)
        ended = c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.key],
            set_={
                "hits": case((ended, stmt.excluded.hits), else_=c.hits + stmt.excluded.hits),
                "expires_at": case((ended, stmt.excluded.expires_at), else_=c.expires_at),
            },
        ).returning(c.hits)
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, key: str) -> int:
        query = select(rate_limits.c.hits).where(
            rate_limits.c.key == key, rate_limits.c.expires_at > time.time()
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def get_expiry(self, key: str) -> float:
        query = select(rate_limits.c.expires_at).where(rate_limits.c.key == key)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return float(found) if found is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(delete(rate_limits)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(rate_limits).where(rate_limits.c.key == key))
