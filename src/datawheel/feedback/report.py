"""The weekly report: satisfaction, volume, answer rate, latency and content gaps.

Content gaps are the questions users were not served well on (declined, low confidence or
👎), grouped by meaning, so the report reads "12 questions about X had no good source"
rather than a list of 40 questions.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.errors import ConfigError

if TYPE_CHECKING:
    from datawheel.feedback.visibility import Visibility
    from datawheel.workspace import Workspace

LOW_CONFIDENCE = 0.6
GAP_DISTANCE = 0.6  # cosine distance within which questions count as the same need


@dataclass
class WeekStats:
    week: str  # ISO week, e.g. 2026-W48
    start: str
    questions: int
    answered: int
    up: int
    down: int
    satisfaction: float | None  # up / (up + down)
    answer_rate: float | None
    p95_latency_ms: float | None


@dataclass
class ContentGap:
    size: int
    example: str | None  # the most central question the reader may see (None: none)
    terms: list[str]
    questions: list[str]  # at most five the reader may see


@dataclass
class Report:
    weeks: list[WeekStats]
    gaps: list[ContentGap]
    threshold: float
    below_threshold: bool
    message: str
    improve: dict[str, Any] | None = None
    low_confidence: list[dict[str, Any]] = field(default_factory=list)
    shown_items: list[Any] = field(default_factory=list)  # interactions whose words are shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "weeks": [w.__dict__ for w in self.weeks],
            "gaps": [g.__dict__ for g in self.gaps],
            "threshold": self.threshold,
            "below_threshold": self.below_threshold,
            "message": self.message,
            "improve": self.improve,
            "low_confidence": self.low_confidence,
        }


def weekly_report(
    ws: Workspace, weeks: int = 1, now: datetime | None = None, rule: Visibility | None = None
) -> Report:
    """The report as ``rule``'s reader may see it: the numbers are aggregates of everyone's
    questions, the questions shown (gap examples, low confidence) only those they may read."""
    if weeks < 1:
        raise ConfigError(f"weeks must be at least 1, got {weeks}")
    now = now or datetime.now(UTC)
    this_monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    since = this_monday - timedelta(weeks=weeks - 1)
    items = ws.interactions.interactions(since=since)
    votes: dict[str, dict[str, str]] = {}
    for v in ws.interactions.feedback([i.id for i in items]):
        votes.setdefault(v.interaction_id, {})[v.user] = v.vote
    by_week: dict[str, list] = defaultdict(list)
    for item in items:
        by_week[_week(item.created_at)].append(item)
    stats = []
    for n in range(weeks):
        start = since + timedelta(weeks=n)
        week = _week(start)
        rows = by_week.get(week, [])
        up = sum(list(votes.get(i.id, {}).values()).count("up") for i in rows)
        down = sum(list(votes.get(i.id, {}).values()).count("down") for i in rows)
        latencies = [i.latency_ms for i in rows]
        answered = sum(1 for i in rows if not i.declined)
        stats.append(
            WeekStats(
                week,
                start.date().isoformat(),
                len(rows),
                answered,
                up,
                down,
                up / (up + down) if up + down else None,
                answered / len(rows) if rows else None,
                float(np.percentile(latencies, 95)) if latencies else None,
            )
        )

    def served_poorly(i: Any) -> bool:
        marks = set(votes.get(i.id, {}).values())
        if "down" in marks:
            return True
        if "up" in marks:  # a 👍 says it was served well, whatever the confidence
            return False
        return i.declined or i.confidence < LOW_CONFIDENCE

    poor = [i for i in items if served_poorly(i)]
    visible = poor if rule is None else rule.visible(poor)
    readable = {i.question for i in visible}
    gaps = [
        ContentGap(
            g.size,
            g.example
            if g.example in readable
            else next((q for q in g.questions if q in readable), None),
            g.terms,
            [q for q in g.questions if q in readable][:5],
        )
        for g in _cached_gaps(ws, [i.question for i in poor])
    ]
    threshold = ws.config.improve.satisfaction_threshold
    latest = stats[-1]
    below = latest.satisfaction is not None and latest.satisfaction < threshold
    if latest.satisfaction is None:
        message = f"no votes in {latest.week} yet: satisfaction cannot be measured"
    elif below:
        message = (
            f"satisfaction {latest.satisfaction:.0%} in {latest.week} is below the "
            f"{threshold:.0%} threshold"
        )
    else:
        message = f"satisfaction {latest.satisfaction:.0%} in {latest.week} meets {threshold:.0%}"
    low = [
        {"id": i.id, "question": i.question, "confidence": round(i.confidence, 3)}
        for i in sorted(visible, key=lambda i: i.confidence)[:10]
    ]
    shown = [i for i in visible if i.question in {q for g in gaps for q in g.questions}]
    shown += [i for i in visible if i.id in {row["id"] for row in low}]
    return Report(stats, gaps, threshold, below, message, None, low, shown)


_GAP_CACHE: dict[tuple[str, str], list[ContentGap]] = {}
_GAP_CACHE_SIZE = 32


def _cached_gaps(ws: Workspace, questions: list[str]) -> list[ContentGap]:
    """The clusters of these questions, computed once per set of questions: a repeat call
    (the same week's data) costs a hash, not an embedding and a clustering."""
    digest = hashlib.sha256("\0".join(questions).encode()).hexdigest()
    key = (ws.store.engine.url.render_as_string(hide_password=True), digest)
    if key not in _GAP_CACHE:
        if len(_GAP_CACHE) >= _GAP_CACHE_SIZE:
            _GAP_CACHE.pop(next(iter(_GAP_CACHE)))
        # every question of a cluster is kept here; readers get the ones they may see
        _GAP_CACHE[key] = _gaps(ws, questions, keep=10**9)
    return _GAP_CACHE[key]


def _words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [
        w for w in re.findall(r"[a-z][a-z0-9'-]{2,}", text.lower()) if w not in ENGLISH_STOP_WORDS
    ]


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _gaps(ws: Workspace, questions: list[str], limit: int = 10, keep: int = 5) -> list[ContentGap]:
    questions = list(dict.fromkeys(questions))
    if not questions:
        return []
    if len(questions) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        vectors = ws.embedder.embed(questions)
        labels = AgglomerativeClustering(
            n_clusters=None,
            metric="cosine",
            linkage="average",
            distance_threshold=GAP_DISTANCE,
        ).fit_predict(vectors)
        centre_of = {}
        for label in set(labels):
            members = np.flatnonzero(labels == label)
            centre = vectors[members].mean(axis=0)
            centre_of[label] = members[int(np.argmax(vectors[members] @ centre))]
    gaps = []
    for label in set(labels):
        idx = [int(m) for m in np.flatnonzero(labels == label)]
        example = questions[centre_of[label]] if len(questions) > 1 else questions[0]
        words = Counter(t for m in idx for t in set(_words(questions[m])))
        gaps.append(
            ContentGap(
                len(idx),
                example,
                [w for w, _ in words.most_common(4)],
                [questions[m] for m in idx[:keep]],
            )
        )
    gaps.sort(key=lambda g: -g.size)
    return gaps[:limit]
