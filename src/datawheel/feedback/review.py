"""The review queue: corrections and 👎 comments wait here until an editor reads them.

A correction becomes a curated answer (served to everyone who asks a similar question) only
after an editor or admin approves it; a rejected one never does. 👎 comments are listed so
someone reads them; approving one marks it read. Under ``improve.corrections: trusted``
(simulations, single-user workspaces) improve uses every correction that was not rejected.

Example:
    >>> queue = ReviewQueue(engine)
    >>> [item.id for item in queue.items("pending")]
    ['4be1c09f2a3d']
    >>> queue.decide(queue.get("4be1c09f2a3d"), "approve", by="alice").status
    'approved'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from datawheel.errors import ConfigError, NotFoundError
from datawheel.feedback.log import review_id
from datawheel.store import schema as t

STATUSES = ("pending", "approved", "rejected")
DECISIONS = {"approve": "approved", "reject": "rejected"}


@dataclass
class ReviewItem:
    id: str
    interaction_id: str
    question: str
    answer: str
    asker: str
    author: str  # who voted and wrote the correction or comment
    vote: str
    comment: str | None
    correction: str | None
    status: str
    reviewed_by: str | None
    reviewed_at: str | None
    created_at: str
    sources: list[dict[str, Any]]

    @property
    def user(self) -> str:  # the asker: whose question this is, for the visibility rule
        return self.asker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReviewQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def items(self, status: str | None = "pending", limit: int = 200) -> list[ReviewItem]:
        """Votes with words to review, newest first (``status=None``: every status)."""
        if status is not None and status not in STATUSES:
            raise ConfigError(f"unknown review status {status!r}; valid: {', '.join(STATUSES)}")
        f, i = t.feedback.c, t.interactions.c
        query = (
            select(t.feedback, i.question, i.answer, i.sources, i.user.label("asker"))
            .join(t.interactions, i.id == f.interaction_id)
            .where(f.review.is_not(None))
            .order_by(f.created_at.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(f.review == status)
        with self.engine.connect() as conn:
            return [_item(r._mapping) for r in conn.execute(query)]

    def get(self, item_id: str) -> ReviewItem:
        wanted = item_id.strip().lower()
        for item in self.items(None, limit=1_000_000):
            if item.id == wanted:
                return item
        raise NotFoundError(
            f"no correction or comment {item_id!r} to review; list them with: "
            "datawheel corrections list"
        )

    def decide(self, item: ReviewItem, decision: str, *, by: str) -> ReviewItem:
        """Approve or reject ``item`` (from ``get``); the latest decision counts."""
        if decision not in DECISIONS:
            raise ConfigError(f"unknown decision {decision!r}; valid: approve, reject")
        with self.engine.begin() as conn:
            conn.execute(
                update(t.feedback)
                .where(
                    t.feedback.c.interaction_id == item.interaction_id,
                    t.feedback.c.user == item.author,
                )
                .values(review=DECISIONS[decision], reviewed_by=by, reviewed_at=datetime.now(UTC))
            )
        return self.get(item.id)


def _item(m: Any) -> ReviewItem:
    return ReviewItem(
        id=review_id(m["interaction_id"], m["user"]),
        interaction_id=m["interaction_id"],
        question=m["question"],
        answer=m["answer"],
        asker=m["asker"],
        author=m["user"],
        vote=m["vote"],
        comment=m["comment"],
        correction=m["correction"],
        status=m["review"],
        reviewed_by=m["reviewed_by"],
        reviewed_at=_iso(m["reviewed_at"]),
        created_at=_iso(m["created_at"]) or "",
        sources=list(m["sources"] or []),
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
