"""Classify a profiled source: which kind of data it is, and what it is good for.

A table scores 1 per column whose name matches a category's keywords, 1 per column whose
sampled values match its content patterns and ``name_weight`` when the source's name
matches; the best score wins. The knowledge base is expert knowledge unless conversations
dominate it. Either way the verdict carries the reasons that decided it, and
``inventory.overrides`` in the config has the last word. The rules are data:
:class:`~datawheel.tables.inventory_rules.InventoryRules`.

Example::

    verdict = classify(profile_source(source), InventoryRules())
    print(verdict.category, verdict.priority, verdict.reasons[0])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from datawheel.tables.inventory_rules import (
    CATEGORIES,
    LEVELS,
    Category,
    CategoryRule,
    InventoryRules,
    Level,
)

if TYPE_CHECKING:
    from datawheel.tables.inventory import DocumentsProfile, SourceProfile


@dataclass
class Classification:
    category: Category
    confidence: float  # the category's share of all matched evidence, 0..1
    score: float
    scores: dict[str, float]
    reasons: list[str]
    value_density: Level
    flywheel: Level
    priority: Level
    application: str


def _words(name: str) -> list[str]:
    """``closeValue`` / ``close-value`` / ``Close Value`` → ["close", "value"]."""
    return re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())


@lru_cache(maxsize=4096)
def _matches(keyword: str, name: str) -> bool:
    if keyword.startswith("re:"):
        return re.search(keyword[3:], name, re.I) is not None
    want, have = _words(keyword), _words(name)
    if not want:
        return False
    for i in range(len(have) - len(want) + 1):
        if all(h in (w, w + "s", w + "es") for w, h in zip(want, have[i:], strict=False)):
            return True
    return False


def _quote(items: list[str]) -> str:
    return ", ".join(repr(i) for i in items)


def _evidence(
    profile: SourceProfile, rule: CategoryRule, rules: InventoryRules
) -> tuple[float, list[str]]:
    score, reasons = 0.0, []
    hints = {label: re.compile(p) for label, p in rule.content.items()}
    for col in profile.columns:
        hits = [k for k in rule.columns if _matches(k, col.name)]
        if hits:
            score += 1
            reasons.append(f"column {col.name!r} matches {_quote(hits)}")
        if col.sample and hints:
            shares = {
                label: sum(bool(rx.search(v)) for v in col.sample) / len(col.sample)
                for label, rx in hints.items()
            }
            seen = [
                f"{label} ({share:.0%} of {len(col.sample)} sampled)"
                for label, share in shares.items()
                if share >= rules.content_share
            ]
            if seen:
                score += 1
                reasons.append(f"values of {col.name!r} look like {'; '.join(seen)}")
    named = [k for k in rule.columns if not k.startswith("re:") and _matches(k, profile.name)]
    if named and rules.name_weight:
        score += rules.name_weight
        reasons.append(f"source name {profile.name!r} matches {_quote(named)}")
    return score, reasons


def _lower(level: Level) -> Level:
    return LEVELS[min(LEVELS.index(level) + 1, len(LEVELS) - 1)]


def _verdict(
    name: str,
    category: Category,
    scores: dict[str, float],
    reasons: list[str],
    rules: InventoryRules,
    small: str | None = None,
) -> Classification:
    """Fill in the category's levels and application, then the source's overrides."""
    total = sum(scores.values())
    confidence = round(scores[category] / total, 2) if total else 0.0
    rule, pinned = rules.rule(category), rules.overrides.get(name)
    result = Classification(
        category=category,
        confidence=confidence,
        score=scores[category],
        scores=scores,
        reasons=reasons,
        value_density=rule.value_density,
        flywheel=rule.flywheel,
        priority=rule.priority,
        application=rule.application,
    )
    if small and not (pinned and pinned.priority):
        result.priority = _lower(result.priority)
        reasons.append(f"{small}: priority lowered to {result.priority}")
    if pinned:
        given = pinned.model_dump(exclude_none=True, exclude={"category"})
        for key, value in given.items():
            setattr(result, key, value)
        if given:
            keys = ", ".join(sorted(given))
            reasons.insert(0, f"{keys} set in inventory.overrides.{name}")
    return result


def classify(profile: SourceProfile, rules: InventoryRules) -> Classification:
    """Classify a profiled table: each column whose name matches a category's keywords
    counts 1, each column whose sampled values match its content hints counts 1, a keyword
    in the source's name counts ``name_weight``; the highest score wins (ties: the first in
    rule order), unless ``overrides`` pins the category.

    Example:
        >>> classify(profile_source(src), InventoryRules()).reasons
        ["column 'deal_stage' matches 'deal', 'stage'", ...]
    """
    found = {c: _evidence(profile, rules.rule(c), rules) for c in CATEGORIES}
    scores: dict[str, float] = {c: s for c, (s, _) in found.items()}
    best = max(CATEGORIES, key=lambda c: scores[c])
    reasons = list(found[best][1])
    if not scores[best]:
        best = rules.default_category
        reasons = [f"no column name or value matched a rule; tables default to {best}"]
    pinned = rules.overrides.get(profile.name)
    if pinned and pinned.category:
        best = pinned.category
        reasons = [f"category set in inventory.overrides.{profile.name}", *found[best][1]]
    small = None
    if profile.rows < rules.small_table_rows:
        small = f"only {profile.rows} rows (fewer than {rules.small_table_rows})"
    result = _verdict(profile.name, best, scores, reasons, rules, small)
    if pinned and pinned.category:
        result.confidence = 1.0
    return result


def classify_documents(
    docs: DocumentsProfile, rules: InventoryRules, name: str = "knowledge base"
) -> Classification:
    """The knowledge base is ``documents.category`` (expert-knowledge), or customer-interaction
    when conversation kinds (Slack, support exports) make up ``interaction_share`` of it."""
    rule = rules.documents
    talk = {k: n for k, n in docs.kinds.items() if k in rule.interaction_kinds}
    share = sum(talk.values()) / docs.documents if docs.documents else 0.0
    if docs.documents and share >= rule.interaction_share:
        category: Category = "customer-interaction"
        kinds = ", ".join(f"{k}: {n}" for k, n in talk.items())
        reasons = [f"{share:.0%} of documents are conversations ({kinds})"]
    else:
        category = rule.category
        kinds = ", ".join(f"{k}: {n}" for k, n in docs.kinds.items())
        reasons = [f"{docs.documents} documents ({kinds})"] if docs.documents else []
    scores: dict[str, float] = {c: 0.0 for c in CATEGORIES}
    scores[category] = 1.0 if docs.documents else 0.0
    small = "no documents ingested yet (datawheel ingest)" if not docs.documents else None
    result = _verdict(name, category, scores, reasons, rules, small)
    pinned = rules.overrides.get(name)
    if not (pinned and pinned.application):
        result.application = rule.application
    return result
