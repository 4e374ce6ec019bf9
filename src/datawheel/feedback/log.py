"""The interaction log: every answer with its evidence and versions, and the votes on it.

An interaction is committed before its answer is returned, so nothing a user saw is lost.
A user has one vote per interaction; voting again replaces it (the latest counts).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from datawheel.errors import ConfigError, NotFoundError
from datawheel.store import schema as t

Vote = Literal["up", "down"]
Failure = Literal["wrong_source", "wrong_answer", "not_in_sources"]
VOTES = ("up", "down")
FAILURES = ("wrong_source", "wrong_answer", "not_in_sources")
MAX_QUESTION_CHARS = 4000
_HEX = re.compile(r"[0-9a-f]{1,32}")


@dataclass
class Interaction:
    id: str
    question: str
    answer: str
    user: str
    created_at: datetime
    latency_ms: float
    confidence: float
    declined: bool
    answered_from: str  # generator, memory, declined
    sources: list[dict[str, Any]]  # {n, chunk_id, doc_id, title, score, cited}
    versions: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    conversation: str | None = None  # the turns of one conversation share it
    asked_as: str | None = None  # a follow-up as retrieval saw it

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass
class FeedbackRecord:
    interaction_id: str
    user: str
    vote: str
    failure: str | None
    comment: str | None
    correction: str | None
    helpful: list[str]
    created_at: datetime
    review: str | None = None  # pending, approved, rejected; None: nothing to review
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None

    @property
    def review_id(self) -> str:
        """The short id the review queue knows this vote by."""
        return review_id(self.interaction_id, self.user)


def review_id(interaction_id: str, user: str) -> str:
    return hashlib.sha256(f"{interaction_id}\0{user}".encode()).hexdigest()[:12]


def needs_review(vote: str, comment: str | None, correction: str | None) -> bool:
    """A correction, or a 👎 with a comment: words a person wrote, for an editor to read."""
    return bool((correction or "").strip()) or (vote == "down" and bool((comment or "").strip()))


def new_interaction_id() -> str:
    return uuid.uuid4().hex


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _upsert_vote(dialect: str, row: dict[str, Any]) -> Any:
    """One statement, so two votes of the same user at once (two workers on PostgreSQL)
    leave the later one, never a duplicate-key error."""
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(t.feedback).values(**row)
    keys = ("interaction_id", "user")
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={k: getattr(stmt.excluded, k) for k in row if k not in keys},
    )


class InteractionLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, item: Interaction) -> None:
        row = dict(item.__dict__)
        with self.engine.begin() as conn:
            conn.execute(insert(t.interactions).values(**row))

    def get(self, interaction_id: str) -> Interaction:
        """One interaction by id or by a unique prefix of at least 6 characters."""
        ident = interaction_id.strip().lower()
        if not _HEX.fullmatch(ident):
            raise ConfigError(
                f"{interaction_id!r} is not an interaction id; use the hexadecimal id that "
                "ask printed (datawheel interactions lists recent ones)"
            )
        with self.engine.connect() as conn:
            if len(ident) < 32:
                if len(ident) < 6:
                    raise ConfigError(
                        f"interaction id {interaction_id!r} is too short; give at least 6 "
                        "characters of the id that ask printed"
                    )
                rows = conn.execute(
                    select(t.interactions)
                    .where(t.interactions.c.id.startswith(ident, autoescape=True))
                    .limit(2)
                ).all()
            else:
                rows = conn.execute(
                    select(t.interactions).where(t.interactions.c.id == ident)
                ).all()
        if not rows:
            raise NotFoundError(
                f"no interaction {interaction_id!r}; use the id that ask printed "
                "(datawheel interactions lists recent ones)"
            )
        if len(rows) > 1:
            raise ConfigError(f"interaction id {interaction_id!r} is ambiguous; give more of it")
        return _interaction(rows[0]._mapping)

    def interactions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[Interaction]:
        query = select(t.interactions).order_by(t.interactions.c.created_at)
        if since is not None:
            query = query.where(t.interactions.c.created_at >= since)
        if until is not None:
            query = query.where(t.interactions.c.created_at < until)
        with self.engine.connect() as conn:
            return [_interaction(r._mapping) for r in conn.execute(query)]

    def conversation(self, conversation: str, user: str, limit: int = 20) -> list[Interaction]:
        """The last ``limit`` turns of ``user``'s conversation, oldest first."""
        query = (
            select(t.interactions)
            .where(t.interactions.c.conversation == conversation, t.interactions.c.user == user)
            .order_by(t.interactions.c.created_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_interaction(r._mapping) for r in conn.execute(query)][::-1]

    def recent(self, limit: int = 50, user: str | None = None) -> list[Interaction]:
        """The newest interactions first (only one user's, when given)."""
        query = select(t.interactions).order_by(t.interactions.c.created_at.desc()).limit(limit)
        if user is not None:
            query = query.where(t.interactions.c.user == user)
        with self.engine.connect() as conn:
            return [_interaction(r._mapping) for r in conn.execute(query)]

    def vote(
        self,
        interaction_id: str,
        vote: str,
        *,
        user: str = "anonymous",
        comment: str | None = None,
        correction: str | None = None,
        helpful: Sequence[str] = (),
        failure: str | None = None,
        own_only: bool = False,
    ) -> FeedbackRecord:
        """Record ``user``'s vote. ``own_only`` (the service): only on an answer ``user`` was
        shown, named by its full id; any other id is "not found", whoever asked it."""
        if vote not in VOTES:
            raise ConfigError(f"unknown vote {vote!r}; valid votes: up, down")
        if failure is not None and failure not in FAILURES:
            raise ConfigError(
                f"unknown failure kind {failure!r}; valid kinds: {', '.join(FAILURES)}"
            )
        item = self._own(interaction_id, user) if own_only else self.get(interaction_id)
        known = {s["chunk_id"] for s in item.sources}
        full = []
        for mark in helpful:
            chunk = mark.strip().removeprefix("chunk:")
            matches = [k for k in sorted(known) if chunk and k.startswith(chunk)]
            if len(matches) != 1:
                problem = "matches several of" if matches else "is not among"
                raise ConfigError(
                    f"helpful chunk {mark!r} {problem} this answer's sources; "
                    f"its sources are: {', '.join(sorted(known)) or 'none'}"
                )
            full.append(matches[0])
        record = FeedbackRecord(
            item.id,
            user,
            vote,
            failure,
            comment,
            correction,
            full,
            datetime.now(UTC),
            "pending" if needs_review(vote, comment, correction) else None,
        )
        with self.engine.begin() as conn:
            conn.execute(_upsert_vote(self.engine.dialect.name, record.__dict__))
        return record

    def _own(self, interaction_id: str, user: str) -> Interaction:
        ident = interaction_id.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.interactions).where(
                    t.interactions.c.id == ident, t.interactions.c.user == user
                )
            ).first()
        if row is None or len(ident) != 32:
            raise NotFoundError(  # the same words whoever asked it: the id reveals nothing
                "no answer with this id was shown to you; vote with the full id (32 hex "
                "characters) that ask returned for one of your own answers"
            )
        return _interaction(row._mapping)

    def feedback(self, interaction_ids: Iterable[str] | None = None) -> list[FeedbackRecord]:
        query = select(t.feedback).order_by(t.feedback.c.created_at)
        if interaction_ids is not None:
            query = query.where(t.feedback.c.interaction_id.in_(list(interaction_ids)))
        with self.engine.connect() as conn:
            return [
                FeedbackRecord(**{**r._mapping, "created_at": _utc(r.created_at)})
                for r in conn.execute(query)
            ]


def _interaction(m: Any) -> Interaction:
    return Interaction(**{**m, "created_at": _utc(m["created_at"])})
