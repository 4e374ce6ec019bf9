"""Online A/B test: a challenger version serves a share of users until the votes decide.

``improve`` starts a test instead of promoting at once when ``ab.share`` > 0. Each user is
assigned a variant by a hash of the test id and their name, so they stay on it. The test
compares satisfaction (👍 / votes) with a Bayesian model suited to low traffic: each
variant's 👍 rate has a Beta(1 + up, 1 + down) posterior, and the test decides only when
both variants have ``ab.min_votes`` votes and P(challenger better) is at least
``ab.confidence`` (promote) or at most 1 − ``ab.confidence`` (stop). Past ``ab.max_days``
it stops and keeps the champion. Every decision, automatic or manual, is logged with its
reason as a ``runs`` row of kind ``ab_decision``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.errors import ConfigError
from datawheel.improve.registry import Registry

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

STATE_KEY = "ab_test"
VARIANTS = ("champion", "challenger")
_DRAWS = 200_000


@dataclass
class ABTest:
    id: str
    champion: str | None
    challenger: str
    share: float
    started_at: str
    status: str = "running"  # running, promoted, stopped
    decided_at: str | None = None
    reason: str | None = None

    def variant(self, user: str) -> str:
        """The user's variant, the same on every call (sticky)."""
        digest = hashlib.sha256(f"{self.id}:{user}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        return "challenger" if position < self.share else "champion"

    def version(self, variant: str) -> str | None:
        return self.challenger if variant == "challenger" else self.champion


@dataclass
class Tally:
    questions: int = 0
    up: int = 0
    down: int = 0

    @property
    def votes(self) -> int:
        return self.up + self.down

    @property
    def satisfaction(self) -> float | None:
        return self.up / self.votes if self.votes else None


@dataclass
class ABStatus:
    test: ABTest | None
    tallies: dict[str, Tally] = field(default_factory=dict)
    p_challenger_better: float | None = None
    decision: str = "none"  # none, continue, promote, stop
    reason: str = "no A/B test has run"

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": asdict(self.test) if self.test else None,
            "variants": {
                name: {**asdict(t), "votes": t.votes, "satisfaction": t.satisfaction}
                for name, t in self.tallies.items()
            },
            "p_challenger_better": self.p_challenger_better,
            "decision": self.decision,
            "reason": self.reason,
        }


def load(ws: Workspace) -> ABTest | None:
    """The latest test (running or decided), or None."""
    raw = ws.store.get_state(STATE_KEY)
    return ABTest(**json.loads(raw)) if raw else None


def running(ws: Workspace) -> ABTest | None:
    test = load(ws)
    return test if test is not None and test.status == "running" else None


def start(ws: Workspace, champion: str | None, challenger: str) -> ABTest:
    """Start a test; a challenger still under test is replaced (and recorded as rejected)."""
    previous = running(ws)
    if previous is not None:
        _close(ws, previous, "stop", f"replaced by a newer challenger, {challenger}")
    now = datetime.now(UTC).isoformat()
    test = ABTest(f"ab-{challenger}", champion, challenger, ws.config.ab.share, now)
    ws.store.set_state(STATE_KEY, json.dumps(asdict(test)))
    return test


def status(ws: Workspace) -> ABStatus:
    """Per-variant questions and votes, P(challenger better) and what the rules decide."""
    test = load(ws)
    if test is None:
        return ABStatus(None)
    tallies = _tally(ws, test)
    result = ABStatus(test, tallies)
    if test.status != "running":
        result.decision, result.reason = test.status, test.reason or ""
        result.p_challenger_better = _p_better(tallies)
        return result
    cfg = ws.config.ab
    result.p_challenger_better = p = _p_better(tallies)
    short = {
        name: cfg.min_votes - t.votes for name, t in tallies.items() if t.votes < cfg.min_votes
    }
    days = (datetime.now(UTC) - datetime.fromisoformat(test.started_at)).total_seconds() / 86400
    if short and days < cfg.max_days:
        needs = ", ".join(f"{name} {n} more" for name, n in short.items())
        result.decision = "continue"
        result.reason = f"needs {cfg.min_votes} votes per variant ({needs})"
    elif not short and p >= cfg.confidence:
        result.decision = "promote"
        result.reason = (
            f"P(challenger more satisfying) = {p:.3f} >= {cfg.confidence} "
            f"({_line(tallies['challenger'])} vs {_line(tallies['champion'])})"
        )
    elif not short and p <= 1 - cfg.confidence:
        result.decision = "stop"
        result.reason = (
            f"P(challenger more satisfying) = {p:.3f} <= {1 - cfg.confidence:.2f} "
            f"({_line(tallies['challenger'])} vs {_line(tallies['champion'])})"
        )
    elif days >= cfg.max_days:
        result.decision = "stop"
        result.reason = f"undecided after {cfg.max_days:g} days (P = {p:.3f}): champion kept"
    else:
        result.decision = "continue"
        result.reason = (
            f"P(challenger more satisfying) = {p:.3f}, between {1 - cfg.confidence:.2f} "
            f"and {cfg.confidence}: more votes needed"
        )
    return result


def decide(ws: Workspace, override: str | None = None, *, by: str = "scheduler") -> ABStatus:
    """Apply the rules (or a manual ``promote`` / ``stop``) to the running test."""
    if override not in (None, "promote", "stop"):
        raise ConfigError(f"unknown A/B decision {override!r}; choose promote or stop")
    test = running(ws)
    if test is None:
        raise ConfigError(
            "no A/B test is running; set ab.share in datawheel.yaml and run datawheel improve"
        )
    result = status(ws)
    if override is not None:
        result.decision = override
        result.reason = f"manual {override} by {by} ({result.reason})"
    if result.decision in ("promote", "stop"):
        _close(ws, test, result.decision, result.reason)
        result.test = load(ws)
    return result


def _close(ws: Workspace, test: ABTest, action: str, reason: str) -> None:
    registry = Registry(ws.store)
    run_id = ws.store.start_run("ab_decision", {"test": test.id, "action": action})
    if action == "promote":
        registry.promote(test.challenger)
        test.status = "promoted"
    else:
        registry.set_status(test.challenger, "rejected", note=f"A/B test: {reason}")
        test.status = "stopped"
    test.decided_at = datetime.now(UTC).isoformat()
    test.reason = reason
    ws.store.set_state(STATE_KEY, json.dumps(asdict(test)))
    tallies = _tally(ws, test)
    ws.store.finish_run(
        run_id,
        "finished",
        {"action": action, "reason": reason, **{k: asdict(v) for k, v in tallies.items()}},
    )
    ws.reload_model()


def _tally(ws: Workspace, test: ABTest) -> dict[str, Tally]:
    since = datetime.fromisoformat(test.started_at)
    until = datetime.fromisoformat(test.decided_at) if test.decided_at else None
    tallies = {name: Tally() for name in VARIANTS}
    items = [
        i
        for i in ws.interactions.interactions(since=since, until=until)
        if i.versions.get("ab_test") == test.id
    ]
    variant_of = {i.id: i.versions.get("variant", "champion") for i in items}
    for i in items:
        tallies[variant_of[i.id]].questions += 1
    for vote in ws.interactions.feedback(list(variant_of)):
        tally = tallies[variant_of[vote.interaction_id]]
        if vote.vote == "up":
            tally.up += 1
        else:
            tally.down += 1
    return tallies


def _p_better(tallies: dict[str, Tally]) -> float:
    """P(challenger's 👍 rate > champion's) under independent Beta(1 + up, 1 + down)."""
    rng = np.random.default_rng(0)
    ch, cp = tallies["challenger"], tallies["champion"]
    a = rng.beta(1 + ch.up, 1 + ch.down, _DRAWS)
    b = rng.beta(1 + cp.up, 1 + cp.down, _DRAWS)
    return float(np.mean(a > b))


def _line(t: Tally) -> str:
    rate = f"{t.satisfaction:.0%}" if t.satisfaction is not None else "-"
    return f"{rate} of {t.votes} votes"
