"""Positions, tombstones and metadata masks shared by the embedded indexes.

An embedded index keeps rows in positions; a delete leaves a tombstone until the next
compaction. Filters become boolean masks over positions, applied *inside* retrieval so a
filtered search still returns its top k (not the filtered remains of an unfiltered top k).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The group every caller belongs to: a document shared with it is readable by all.
EVERYONE = "everyone"


@dataclass(frozen=True)
class Filter:
    """Which chunks a search may return.

    ``equals`` are metadata key/value pairs that must all match (``topic=billing``);
    ``groups`` are the caller's groups: a chunk is visible when its document shares at
    least one of them. ``None`` means no group restriction (a local admin).
    """

    equals: tuple[tuple[str, str], ...] = ()
    groups: frozenset[str] | None = None

    @classmethod
    def build(
        cls, equals: Mapping[str, str] | None = None, groups: Iterable[str] | None = None
    ) -> Filter:
        """``groups`` are the caller's; every caller is also in ``everyone`` (the group
        documents get when ingested without ``--groups``), as its name says."""
        return cls(
            equals=tuple(sorted((equals or {}).items())),
            groups=None if groups is None else frozenset(groups) | {EVERYONE},
        )

    @property
    def empty(self) -> bool:
        return not self.equals and self.groups is None

    def matches(self, fields: Mapping[str, str], groups: Iterable[str]) -> bool:
        if any(fields.get(k) != v for k, v in self.equals):
            return False
        return self.groups is None or not self.groups.isdisjoint(groups)


@dataclass
class Catalog:
    """Row positions of an embedded index: ids, liveness and filterable metadata."""

    ids: list[str] = field(default_factory=list)
    alive: list[bool] = field(default_factory=list)
    fields: list[dict[str, str]] = field(default_factory=list)
    groups: list[tuple[str, ...]] = field(default_factory=list)
    _pos: dict[str, int] = field(default_factory=dict, repr=False)
    _masks: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)
    _alive_arr: np.ndarray | None = field(default=None, repr=False)
    _names: frozenset[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._pos = {i: p for p, i in enumerate(self.ids) if self.alive[p]}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._pos

    @property
    def size(self) -> int:
        """Positions in use, tombstones included."""
        return len(self.ids)

    def live_ids(self) -> set[str]:
        return set(self._pos)

    def position(self, chunk_id: str) -> int | None:
        return self._pos.get(chunk_id)

    def add(self, chunk_id: str, fields: Mapping[str, str], groups: Iterable[str]) -> int:
        """Append a row (an existing id is tombstoned first); returns its position."""
        self.remove([chunk_id])
        pos = len(self.ids)
        self.ids.append(chunk_id)
        self.alive.append(True)
        self.fields.append(dict(fields))
        self.groups.append(tuple(groups))
        self._pos[chunk_id] = pos
        self._invalidate()
        return pos

    def remove(self, chunk_ids: Iterable[str]) -> int:
        removed = 0
        for chunk_id in chunk_ids:
            pos = self._pos.pop(chunk_id, None)
            if pos is not None:
                self.alive[pos] = False
                removed += 1
        if removed:
            self._invalidate()
        return removed

    def compact(self) -> np.ndarray:
        """Drop tombstones; returns the old positions kept, in order."""
        keep = np.flatnonzero(np.asarray(self.alive, dtype=bool))
        self.ids = [self.ids[p] for p in keep]
        self.fields = [self.fields[p] for p in keep]
        self.groups = [self.groups[p] for p in keep]
        self.alive = [True] * len(keep)
        self._pos = {i: p for p, i in enumerate(self.ids)}
        self._invalidate()
        return keep

    def field_names(self) -> frozenset[str]:
        """Every metadata key some row has (kept until the catalog changes)."""
        if self._names is None:
            self._names = frozenset(key for fields in self.fields for key in fields)
        return self._names

    def mask(self, flt: Filter | None) -> np.ndarray:
        """Boolean mask over positions: alive and matching the filter."""
        if self._alive_arr is None:
            self._alive_arr = np.asarray(self.alive, dtype=bool)
        result = self._alive_arr
        if flt is None or flt.empty:
            return result
        result = result.copy()
        for key, value in flt.equals:
            result &= self._column_mask(("f", key), value)
        if flt.groups is not None:
            allowed = np.zeros(len(self.ids), dtype=bool)
            for group in flt.groups:
                allowed |= self._column_mask(("g", group), "")
            result &= allowed
        return result

    def _column_mask(self, key: tuple[str, str], value: str) -> np.ndarray:
        cache_key = (key[0] + ":" + key[1], value)
        cached = self._masks.get(cache_key)
        if cached is None:
            if key[0] == "g":
                cached = np.fromiter((key[1] in g for g in self.groups), bool, len(self.ids))
            else:
                cached = np.fromiter(
                    (f.get(key[1]) == value for f in self.fields), bool, len(self.ids)
                )
            if len(self._masks) > 256:  # keep memory bounded for many distinct filters
                self._masks.clear()
            self._masks[cache_key] = cached
        return cached

    def _invalidate(self) -> None:
        self._masks.clear()
        self._alive_arr = None
        self._names = None

    def to_state(self) -> dict[str, Any]:
        return {"ids": self.ids, "alive": self.alive, "fields": self.fields, "groups": self.groups}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Catalog:
        return cls(
            ids=list(state["ids"]),
            alive=list(state["alive"]),
            fields=list(state["fields"]),
            groups=[tuple(g) for g in state["groups"]],
        )


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Positions of the k best scores (descending), ignoring masked-out positions."""
    if mask is not None:
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return candidates
        sub = scores[candidates]
        if sub.size > k:
            part = np.argpartition(-sub, k - 1)[:k]
            return candidates[part[np.argsort(-sub[part], kind="stable")]]
        return candidates[np.argsort(-sub, kind="stable")]
    if scores.size > k:
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
    return np.argsort(-scores, kind="stable")


class CatalogIndex:
    """What every embedded index answers from its catalog alone."""

    catalog: Catalog

    def __len__(self) -> int:
        return len(self.catalog)

    def ids(self) -> set[str]:
        return self.catalog.live_ids()
