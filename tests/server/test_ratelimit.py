"""Rate-limit counters in the store: shared by every engine on it, a fresh window after one ends."""

from __future__ import annotations

from pathlib import Path

from limits import parse
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import update

from datawheel.server.ratelimit import StoreCounters
from datawheel.store.schema import rate_limits
from datawheel.workspace import Workspace


def test_counters_are_shared_and_windows_restart(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "kb").close()
    first, second = Workspace.open(tmp_path / "kb"), Workspace.open(tmp_path / "kb")
    try:
        rate = parse("3/minute")
        limiters = [FixedWindowRateLimiter(StoreCounters(w.store.engine)) for w in (first, second)]
        hits = [limiters[i % 2].hit(rate, "key:dw_a") for i in range(5)]
        assert hits == [True, True, True, False, False]
        assert limiters[1].hit(rate, "key:dw_b")  # each key has its own window
        stats = limiters[0].get_window_stats(rate, "key:dw_a")
        assert stats.remaining == 0 and stats.reset_time > 0
        with first.store.engine.begin() as conn:  # the minute is over
            conn.execute(update(rate_limits).values(expires_at=0))
        assert limiters[1].hit(rate, "key:dw_a")
        assert StoreCounters(second.store.engine).get(rate.key_for("key:dw_a")) == 1
        counters = StoreCounters(first.store.engine)
        counters.clear(rate.key_for("key:dw_a"))
        assert counters.get(rate.key_for("key:dw_a")) == 0 and counters.check()
        assert counters.reset() == 1  # dw_b's window
    finally:
        first.close()
        second.close()
