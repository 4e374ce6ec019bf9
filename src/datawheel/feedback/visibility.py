"""Who may read a question and its answer: the one rule for all user content that leaves.

A caller sees an interaction (question, answer, sources, votes, comments) when it is theirs,
or when they are an editor or admin **and** may read every document the answer cites or
shows. Viewers see other people's interactions only as aggregates (counts, rates, the size
and terms of content-gap clusters). The interactions API, the report, the review queue and
the web UI all ask this class; none decides on its own.

Reads of other users' content by editors and admins are recorded in the audit log
(:mod:`datawheel.feedback.audit`).

Example:
    >>> rule = Visibility(user, store.doc_groups)
    >>> [i.id for i in rule.visible(log.recent(50))]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from datawheel.store.catalog import EVERYONE
from datawheel.users import User

DocGroups = Callable[[Iterable[str]], dict[str, list[str]]]


class HasSources(Protocol):
    user: str
    sources: list[dict[str, Any]]


class Visibility:
    """The visibility rule for one caller; ``user=None`` is the workspace's owner (the CLI on
    the machine, scheduled jobs), who sees everything."""

    def __init__(self, user: User | None, doc_groups: DocGroups) -> None:
        self.user = user
        self._doc_groups = doc_groups

    @property
    def sees_all(self) -> bool:
        return self.user is None

    def owns(self, item: HasSources) -> bool:
        return self.user is None or item.user == self.user.name

    def sees(self, item: HasSources) -> bool:
        return bool(self.visible([item]))

    def visible(self, items: Sequence[Any]) -> list[Any]:
        """The items this caller may read, in their order."""
        if self.user is None:
            return list(items)
        mine = [i for i in items if i.user == self.user.name]
        if not self.user.has_role("editor"):
            return mine
        if self.user.reads_everything:
            return list(items)
        others = [i for i in items if i.user != self.user.name]
        groups = self._doc_groups(s["doc_id"] for i in others for s in i.sources)
        allowed = set(self.user.groups) | {EVERYONE}
        readable = {doc for doc, g in groups.items() if not allowed.isdisjoint(g)}
        return [
            i
            for i in items
            if i.user == self.user.name or all(s["doc_id"] in readable for s in i.sources)
        ]

    def others(self, items: Iterable[Any]) -> list[str]:
        """The ids of items that are not the caller's (what the audit log records)."""
        if self.user is None:
            return []
        return [i.id for i in items if i.user != self.user.name]
