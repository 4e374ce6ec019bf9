"""Inventory: profile every source and say what kind of data it is and what it is good for.

Each table source is loaded with :func:`datawheel.tables.read.load` and profiled in DuckDB:
rows, and per column the type (inferred from the text for CSV/Excel), null rate, distinct
count, min and max; plus size and last update. The document knowledge base becomes one more
entry (documents, chunks, kinds, newest ingest). Every entry is then classified as
business-process, customer-interaction, expert-knowledge or public-web data, with value
density, flywheel effect, priority and the AI application it suits, by :class:`InventoryRules`:
rules that are data (``inventory:`` in ``datawheel.yaml``), with the reasons that decided it.

Example::

    inventory = build_inventory(ws, InventoryRules())
    for entry in inventory.ranked():
        print(entry.name, entry.classification.category if entry.classification else entry.error)
    Path("inventory.html").write_text(render_html(inventory), encoding="utf-8")
"""

from __future__ import annotations

import datetime as dt
import decimal
import html
import logging
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from datawheel.errors import DatawheelError
from datawheel.tables.pipeline import session
from datawheel.tables.read import hide_password, ident, load
from datawheel.tables.spec import TableSource
from datawheel.tables.steps import Connection, Dialect
from datawheel.tables.types import infer_types, typed_sql

if TYPE_CHECKING:
    from datawheel.store.sql import SQLStore
    from datawheel.workspace import Workspace

log = logging.getLogger(__name__)

Category = Literal["business-process", "customer-interaction", "expert-knowledge", "public-web"]
Level = Literal["high", "medium", "low"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
LEVELS: tuple[Level, ...] = get_args(Level)

# --- the rules (data) ----------------------------------------------------------------------

# fmt: off
_DEFAULTS: dict[str, dict[str, Any]] = {
    "business_process": {
        "columns": ["order", "invoice", "amount", "price", "revenue", "sales", "deal", "stage",
                    "opportunity", "close_date", "close_value", "quantity", "qty", "sku",
                    "product", "item", "store", "account", "payment", "transaction", "cost",
                    "margin", "discount", "quote", "contract", "lead", "pipeline", "inventory",
                    "stock", "shipment", "balance", "loan", "campaign", "outcome", "won", "lost"],
        "content": {
            "deal or order outcomes": r"(?i)^\s*(won|lost|closed[ _-]?(won|lost)|paid|unpaid|"
            r"shipped|delivered|cancell?ed|refunded)\s*$",
            "order or invoice numbers": r"(?i)^\s*(inv|ord|po|so)[-_ #]?\d{3,}\s*$",
        },
        "value_density": "high", "flywheel": "high", "priority": "high",
        "application": "predictive model (scoring, forecasting)",
    },
    "customer_interaction": {
        "columns": ["customer", "client", "message", "ticket", "chat", "email", "review",
                    "rating", "feedback", "comment", "complaint", "support", "conversation",
                    "subject", "body", "channel", "sentiment", "nps", "csat", "call", "survey",
                    "reply", "transcript", "inquiry"],
        "content": {
            "email addresses": r"^\s*[^@\s]+@[^@\s]+\.[A-Za-z]{2,}\s*$",
            "long free text": r"^[\s\S]{160,}$",
        },
        "value_density": "medium", "flywheel": "high", "priority": "high",
        "application": "predictive model (routing, churn, sentiment) and RAG over past cases",
    },
    "expert_knowledge": {
        "columns": ["question", "answer", "procedure", "manual", "faq", "instruction", "guide",
                    "howto", "how_to", "step", "solution", "resolution", "diagnosis", "policy",
                    "knowledge", "article", "sop", "recommendation", "explanation",
                    "best_practice", "troubleshooting"],
        "content": {"questions": r"\?\s*$", "numbered steps": r"(?im)^\s*(step\s*)?\d+[.)]\s+\S"},
        "value_density": "high", "flywheel": "medium", "priority": "high",
        "application": "fine-tuning (question/answer pairs) or RAG",
    },
    "public_web": {
        "columns": ["url", "uri", "link", "href", "html", "wiki", "wikipedia", "scraped",
                    "crawl", "crawled", "web", "webpage", "domain", "public", "tweet",
                    "headline", "news", "site"],
        "content": {
            "web addresses": r"(?i)^\s*https?://\S+\s*$",
            "HTML markup": r"(?i)<(p|div|a|span|html|body|br)\b[^>]*>",
        },
        "value_density": "low", "flywheel": "low", "priority": "low",
        "application": "RAG context or enrichment features (competitors can get it too)",
    },
}
# fmt: on


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CategoryRule(_Rules):
    """How to recognise one category, and what data of that category is worth."""

    columns: list[str] = Field(
        default_factory=list,
        description="Column-name keywords, matched as whole words of the name (plural too: "
        "'deal_stage' matches deal_stages_id), or regexes written re:PATTERN.",
    )
    content: dict[str, str] = Field(
        default_factory=dict,
        description="Content hints: a label and a regex that sampled text values match.",
    )
    value_density: Level = Field("medium", description="Signal per row: high, medium or low.")
    flywheel: Level = Field(
        "medium", description="How strongly use feeds new data back: high, medium or low."
    )
    priority: Level = Field("medium", description="Where to start: high, medium or low.")
    application: str = Field("predictive model", description="The AI application it suits.")

    @field_validator("columns")
    @classmethod
    def _column_regexes(cls, value: list[str]) -> list[str]:
        for keyword in value:
            if keyword.startswith("re:"):
                _check_regex(keyword[3:], keyword)
        return value

    @field_validator("content")
    @classmethod
    def _content_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            _check_regex(pattern, label)
        return value


def _check_regex(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where!r}: {pattern!r} is not a valid regex ({exc})") from None


class DocumentsRule(_Rules):
    """How the document knowledge base is classified."""

    category: Category = Field("expert-knowledge", description="Category of the documents.")
    interaction_kinds: list[str] = Field(
        default_factory=lambda: ["slack", "email", "chat", "support", "ticket"],
        description="Document kinds that are conversations with customers.",
    )
    interaction_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="From this share of conversation documents on, the knowledge base is "
        "customer-interaction data.",
    )
    application: str = Field("RAG (cited answers)", description="What documents are used for.")


class SourceOverride(_Rules):
    """Settings pinned for one source; unset ones come from its category."""

    category: Category | None = Field(None, description="Category instead of the rules' one.")
    value_density: Level | None = Field(None, description="high, medium or low.")
    flywheel: Level | None = Field(None, description="high, medium or low.")
    priority: Level | None = Field(None, description="high, medium or low.")
    application: str | None = Field(None, description="The AI application it suits.")


def _default(key: str) -> Any:
    return Field(
        default_factory=lambda: CategoryRule(**_DEFAULTS[key]),
        description=f"How {key.replace('_', '-')} data is recognised and valued.",
    )


class InventoryRules(_Rules):
    """The ``inventory:`` section: classification rules. A category given in part keeps the
    defaults of the keys it leaves out; a list given replaces the default list."""

    business_process: CategoryRule = _default("business_process")
    customer_interaction: CategoryRule = _default("customer_interaction")
    expert_knowledge: CategoryRule = _default("expert_knowledge")
    public_web: CategoryRule = _default("public_web")
    default_category: Category = Field(
        "business-process", description="Category of a table that matches no rule."
    )
    content_share: float = Field(
        0.5, gt=0, le=1, description="A content hint counts when this share of samples match."
    )
    name_weight: float = Field(
        0.5, ge=0, description="Weight of a keyword in the source's name (a column counts 1)."
    )
    small_table_rows: int = Field(
        100, ge=0, description="Tables with fewer rows get one priority level lower."
    )
    sample_rows: int = Field(
        200, ge=1, le=100_000, description="Rows sampled per table for content hints."
    )
    documents: DocumentsRule = Field(default_factory=lambda: DocumentsRule())
    overrides: dict[str, SourceOverride] = Field(
        default_factory=dict,
        description="Per source name: category, value_density, flywheel, priority or "
        "application to use instead of the rules' verdict.",
    )

    @field_validator("overrides", mode="before")
    @classmethod
    def _no_overrides(cls, value: Any) -> Any:
        return {} if value is None else value  # "overrides:" left empty in the YAML

    @field_validator(*_DEFAULTS, mode="before")
    @classmethod
    def _keep_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):  # given in part: the category's defaults fill the rest
            return {**_DEFAULTS[str(info.field_name)], **value}
        return value

    def rule(self, category: Category) -> CategoryRule:
        rule: CategoryRule = getattr(self, category.replace("-", "_"))
        return rule


# --- profiles ------------------------------------------------------------------------------

Value = int | float | str | bool | None


@dataclass
class ColumnProfile:
    name: str
    type: str  # integer, double, date, timestamp, boolean, varchar (or DuckDB's, e.g. struct)
    stored_type: str  # as loaded: VARCHAR for CSV/Excel text
    nulls: int  # NULL or blank
    null_rate: float
    distinct: int | None
    min: Value = None
    max: Value = None
    sample: list[str] = field(default_factory=list, repr=False)  # for content hints; not reported

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["sample"]
        return data


@dataclass
class SourceProfile:
    name: str
    origin: str  # the file, or the URL (password hidden) and table or query
    format: str
    rows: int
    columns: list[ColumnProfile]
    size_bytes: int | None = None  # None for databases
    modified: str | None = None  # file modification time (UTC)
    newest: str | None = None  # largest value of any date/timestamp column
    newest_column: str | None = None
    rejected_lines: int = 0
    encoding: str | None = None

    @property
    def last_updated(self) -> str | None:
        return self.modified or self.newest

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [c.to_dict() for c in self.columns]
        data["last_updated"] = self.last_updated
        return data


@dataclass
class DocumentsProfile:
    documents: int
    chunks: int
    kinds: dict[str, int]
    text_chars: int
    newest_ingest: str | None
    newest_date: str | None


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


@dataclass
class InventoryEntry:
    name: str
    kind: Literal["table", "documents"]
    profile: SourceProfile | None = None
    documents: DocumentsProfile | None = None
    classification: Classification | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "error": self.error,
            "profile": self.profile.to_dict() if self.profile else None,
            "documents": asdict(self.documents) if self.documents else None,
            "classification": asdict(self.classification) if self.classification else None,
        }


@dataclass
class Inventory:
    workspace: str
    generated_at: str
    entries: list[InventoryEntry]

    def summary(self) -> dict[str, int]:
        """Entries per category (and ``error`` for the unreadable ones)."""
        counts = dict.fromkeys([*CATEGORIES, "error"], 0)
        for e in self.entries:
            counts[e.classification.category if e.classification else "error"] += 1
        return counts

    def ranked(self) -> list[InventoryEntry]:
        """Entries by priority, then value density, then flywheel; unreadable ones last."""

        def key(e: InventoryEntry) -> tuple[int, ...]:
            c = e.classification
            if c is None:
                return (9, 9, 9)
            return tuple(LEVELS.index(x) for x in (c.priority, c.value_density, c.flywheel))

        return sorted(self.entries, key=key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "generated_at": self.generated_at,
            "summary": self.summary(),
            "entries": [e.to_dict() for e in self.entries],
        }


# --- profiling -----------------------------------------------------------------------------

_SCALAR = ("integer", "double", "date", "timestamp", "boolean", "varchar")


def _plain(value: Any) -> Value:
    """A min/max value as JSON-friendly data."""
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


_DUCKDB = Dialect()


def _profile_columns(
    con: Connection,
    table: str,
    names: list[str],
    rows: int,
    sample_rows: int,
    *,
    stored: dict[str, str] | None = None,
    dialect: Dialect = _DUCKDB,
    sample_sql: Callable[[str], str] | None = None,
) -> list[ColumnProfile]:
    """Per column of ``table``: type, nulls, distinct, min, max and a sample of text values.

    ``con`` is DuckDB's connection, or one with its ``execute(sql).fetchone()/fetchall()``
    running ``dialect``'s SQL (Spark's, see :mod:`datawheel.tables.spark_profile`), which
    then passes ``stored`` (the columns' DuckDB type names) and ``sample_sql`` (the query
    for the sample, given the quoted text columns) too.
    """
    if stored is None:
        stored = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()}
    kinds = infer_types(con, table, {n: stored[n] for n in names}, {}, {}, dialect)
    # values present (blank text counts as missing), distinct, min and max of the typed values,
    # typed once per row in a subquery (Spark would type them once per distinct count)
    typed, aggs = [], []
    for n in names:
        e = ident(n)
        if kinds[n] in _SCALAR:
            typed.append(f"{typed_sql(e, stored[n], kinds[n], dialect)} AS {e}")
            aggs += [f"count({e})", f"count(DISTINCT {e})", f"min({e})", f"max({e})"]
        else:
            typed.append(e)
            aggs += [f"count({e})", "NULL", "NULL", "NULL"]
    query = f"SELECT {', '.join(aggs) or '1'} FROM (SELECT {', '.join(typed) or '1'} FROM {table})"
    got = list(con.execute(query).fetchone() or [])
    present = {n: int(got[4 * i] or 0) for i, n in enumerate(names)}
    stats = {n: tuple(got[4 * i + 1 : 4 * i + 4]) for i, n in enumerate(names)}
    # a sample of the text values, for the classification's content hints
    text = [n for n in names if kinds[n] == "varchar"]
    samples: dict[str, list[str]] = {n: [] for n in text}
    if text:
        cols = ", ".join(ident(n) for n in text)
        query = (
            sample_sql(cols)
            if sample_sql
            else f"SELECT {cols} FROM {table} USING SAMPLE reservoir({int(sample_rows)} ROWS) "
            "REPEATABLE (7)"
        )
        sampled = con.execute(query).fetchall()
        for row in sampled:
            for n, v in zip(text, row, strict=True):
                if v is not None and str(v).strip():
                    samples[n].append(str(v))
    out = []
    for n in names:
        distinct, lo, hi = stats.get(n, (None, None, None))
        nulls = rows - present[n]
        out.append(
            ColumnProfile(
                name=n,
                type=kinds[n],
                stored_type=stored[n],
                nulls=nulls,
                null_rate=round(nulls / rows, 4) if rows else 0.0,
                distinct=distinct,
                min=_plain(lo),
                max=_plain(hi),
                sample=samples.get(n, []),
            )
        )
    return out


def sampled_rows(rows: int, sample_rows: int) -> list[int]:
    """The positions (``__dw_row``, from 1) of the rows DuckDB's profile samples.

    DuckDB's repeatable reservoir sample picks its rows from the row count alone, not from
    their values, so another engine (Spark) samples the same rows by position.
    """
    with duckdb.connect() as con:
        picked = con.execute(
            f"SELECT range + 1 FROM range({int(rows)}) "
            f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (7)"
        ).fetchall()
    return sorted(int(r[0]) for r in picked)


def profile_source(
    source: TableSource,
    workdir: Path | None = None,
    *,
    sample_rows: int = 200,
    memory_limit: str = "2GB",
) -> SourceProfile:
    """Load ``source`` into DuckDB and profile it.

    Args:
        source: a table source with an absolute path (see ``Workspace.table_source``).
        workdir: folder for temporary files (a UTF-8 copy of a file in another encoding);
            default: a temporary folder removed afterwards.
        sample_rows: text values sampled per column for the classification's content hints.

    Raises:
        DatawheelError: the source cannot be read (missing file, bad URL, ...).
    """
    with session(memory_limit) as (con, work):
        loaded = load(con, source, "raw", workdir=workdir or work)
        columns = _profile_columns(con, "raw", loaded.columns, loaded.rows, sample_rows)
    return source_profile(source, loaded.rows, columns, len(loaded.rejected), loaded.encoding)


def source_profile(
    source: TableSource,
    rows: int,
    columns: list[ColumnProfile],
    rejected_lines: int,
    encoding: str | None,
) -> SourceProfile:
    """The profile of ``source`` from its profiled columns: newest date, size, last update."""
    dated = [c for c in columns if c.type in ("date", "timestamp") and c.max is not None]
    newest = max(dated, key=lambda c: str(c.max), default=None)
    profile = SourceProfile(
        name=source.name,
        origin=_origin(source),
        format="sql" if source.url else _format(source),
        rows=rows,
        columns=columns,
        newest=str(newest.max) if newest else None,
        newest_column=newest.name if newest else None,
        rejected_lines=rejected_lines,
        encoding=encoding,
    )
    if source.path and "://" not in source.path:  # a local file (Spark reads others too)
        stat = Path(source.path).stat()
        profile.size_bytes = stat.st_size
        profile.modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(
            timespec="seconds"
        )
    return profile


def _format(source: TableSource) -> str:
    return source.format if source.format != "auto" else Path(source.path or "").suffix[1:]


def _origin(source: TableSource) -> str:
    if source.path:
        return source.path
    url = source.url or ""
    shown = url if url.startswith("env:") else hide_password(url)
    return f"{shown} table {source.table}" if source.table else f"{shown} query {source.query}"


def profile_documents(store: SQLStore) -> DocumentsProfile:
    """Documents, chunks and kinds in the knowledge base, and its newest ingest."""
    from sqlalchemy import func, select

    from datawheel.store import schema as t

    d = t.documents
    per_kind = select(
        d.c.kind,
        func.count(),
        func.sum(d.c.chunk_count),
        func.max(d.c.ingested_at),
        func.max(d.c.date),
    ).group_by(d.c.kind)
    chars = select(func.coalesce(func.sum(func.length(t.chunks.c.text)), 0))
    with store.engine.connect() as conn:
        rows = conn.execute(per_kind).all()
        text_chars = int(conn.execute(chars).scalar_one())
    ingests = [r[3] for r in rows if r[3] is not None]
    dates = [r[4] for r in rows if r[4]]
    return DocumentsProfile(
        documents=sum(r[1] for r in rows),
        chunks=sum(int(r[2] or 0) for r in rows),
        kinds={(r[0] or "unknown"): r[1] for r in sorted(rows, key=lambda r: -r[1])},
        text_chars=text_chars,
        newest_ingest=max(ingests).isoformat(timespec="seconds") if ingests else None,
        newest_date=str(max(dates)) if dates else None,
    )


# --- classification ------------------------------------------------------------------------


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


# --- the whole inventory -------------------------------------------------------------------


def _error_text(exc: Exception) -> str:
    if isinstance(exc, DatawheelError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # not DuckDB's SQL echo
    return f"cannot read it: {first}; check that the file or table holds what its format says"


Profiler = Callable[[TableSource, int], SourceProfile]  # a source and its sample_rows


@contextmanager
def _profiler(engine: str, spark_master: str | None) -> Iterator[Profiler]:
    if engine == "spark":  # one Spark session for every source
        from datawheel.tables.spark_profile import spark_profiler

        with spark_profiler(spark_master) as profile:
            yield profile
        return
    yield lambda source, sample_rows: profile_source(source, sample_rows=sample_rows)


def build_inventory(
    ws: Workspace,
    rules: InventoryRules,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> Inventory:
    """Profile and classify every table source of ``ws`` and its knowledge base.

    A source that cannot be read becomes an entry with its error; the others go on. With
    ``engine="spark"`` the CSV, TSV and Parquet sources are profiled on Spark (``spark_master``,
    default ``local[2]``) with the same figures; other sources become entries with an error.
    """
    entries: list[InventoryEntry] = []
    with _profiler(engine, spark_master) as profile_one:
        for name in ws.config.sources:
            try:
                profile = profile_one(ws.table_source(name), rules.sample_rows)
            except Exception as exc:  # any failure of one source is reported, not fatal
                log.info("inventory: %s cannot be read: %s", name, exc)  # shown in the entry
                entries.append(InventoryEntry(name, "table", error=_error_text(exc)))
                continue
            classification = classify(profile, rules)
            entries.append(InventoryEntry(name, "table", profile, None, classification))
    docs = profile_documents(ws.store)
    entries.append(
        InventoryEntry("knowledge base", "documents", None, docs, classify_documents(docs, rules))
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Inventory(str(ws.path), now, entries)


# --- the HTML report -----------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;
color:#1d2430;background:#f6f8fa}
h1{margin:0 0 .2rem;font-size:1.6rem}h2{margin:.2rem 0 .6rem;font-size:1.2rem}
.muted{color:#5f6b7a}.error{color:#b42318;white-space:pre-wrap}
table{border-collapse:collapse;margin:.4rem 0 1rem;background:#fff}
th,td{border:1px solid #d8dee4;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:1rem 1.2rem;
margin:1rem 0}
.tag{display:inline-block;padding:0 .5rem;border-radius:.7rem;font-size:12px;color:#fff;
white-space:nowrap}
.business-process{background:#2f6fb3}.customer-interaction{background:#23875c}
.expert-knowledge{background:#7d48b5}.public-web{background:#a8691e}.failed{background:#b42318}
.high{font-weight:600;color:#0a6b2c}.low{color:#7b8591}
.bar{background:#e5e9ee;width:5rem;height:.55rem;display:inline-block;margin-right:.4rem}
.bar i{display:block;height:100%;background:#d9822b}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def _cells(values: list[Any], numeric: frozenset[int] = frozenset()) -> str:
    return "".join(
        f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
        for i, v in enumerate(values)
    )


def _tag(entry: InventoryEntry) -> str:
    if entry.classification is None:
        return '<span class="tag failed">unreadable</span>'
    c = entry.classification.category
    return f'<span class="tag {_e(c)}">{_e(c)}</span>'


SUMMARY_COLUMNS = (
    "source", "kind", "rows", "columns", "size", "last updated", "category", "confidence",
    "value density", "flywheel", "priority", "application",
)  # fmt: skip
_LEVEL_COLUMNS = ("value density", "flywheel", "priority")


def summary_row(entry: InventoryEntry) -> dict[str, str]:
    """One entry as display strings: the table of the CLI and of the HTML report."""
    p, d, c = entry.profile, entry.documents, entry.classification
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(source=entry.name, kind=entry.kind)
    if p:
        row.update(rows=f"{p.rows:,}", columns=str(len(p.columns)), size=_size(p.size_bytes))
        row["last updated"] = p.last_updated or ""
    if d:
        row.update(rows=f"{d.documents:,} docs", columns=f"{d.chunks:,} chunks")
        row.update(size=f"{d.text_chars:,} chars")
        row["last updated"] = d.newest_ingest or ""
    if c:
        row.update(category=c.category, confidence=f"{c.confidence:.2f}", flywheel=c.flywheel)
        row.update(priority=c.priority, application=c.application)
        row["value density"] = c.value_density
    return row


def _section(entry: InventoryEntry) -> str:
    parts = [f'<section id="{_e("src-" + entry.name)}"><h2>{_e(entry.name)} {_tag(entry)}</h2>']
    p, d, c = entry.profile, entry.documents, entry.classification
    if entry.error:
        parts.append(f'<p class="error">{_e(entry.error)}</p>')
    if p:
        facts = [p.origin, p.format, f"{p.rows:,} rows", _size(p.size_bytes)]
        if p.encoding:
            facts.append(f"encoding {p.encoding}")
        if p.rejected_lines:
            facts.append(f"{p.rejected_lines} unparseable lines")
        if p.newest:
            facts.append(f"newest {p.newest_column}: {p.newest}")
        parts.append(f'<p class="muted">{_e(" · ".join(f for f in facts if f))}</p>')
    if c:
        parts.append(
            f"<p>value density <b>{_e(c.value_density)}</b> · flywheel <b>{_e(c.flywheel)}</b>"
            f" · priority <b>{_e(c.priority)}</b> · confidence {c.confidence:.2f}"
            f" · suits <b>{_e(c.application)}</b></p>"
        )
        if c.reasons:
            items = "".join(f"<li>{_e(r)}</li>" for r in c.reasons)
            parts.append(f"<details open><summary>why</summary><ul>{items}</ul></details>")
    if d:
        rows = "".join(
            f"<tr>{_cells([k, f'{n:,}'], frozenset({1}))}</tr>" for k, n in d.kinds.items()
        )
        parts.append(
            f'<p class="muted">{d.documents:,} documents · {d.chunks:,} chunks · '
            f"newest ingest {_e(d.newest_ingest or '-')}</p>"
            f"<table><tr><th>kind</th><th>documents</th></tr>{rows}</table>"
        )
    if p and p.columns:
        head = ["column", "type", "null rate", "distinct", "min", "max"]
        rows = ""
        for col in p.columns:
            bar = f'<span class="bar"><i style="width:{col.null_rate * 100:.0f}%"></i></span>'
            rows += (
                f"<tr><td>{_e(col.name)}</td><td>{_e(col.type)}</td>"
                f'<td class="n">{bar}{col.null_rate:.1%}</td>'
                f"{_cells([col.distinct, col.min, col.max], frozenset({0}))}</tr>"
            )
        ths = "".join(f"<th>{h}</th>" for h in head)
        parts.append(f"<table><tr>{ths}</tr>{rows}</table>")
    parts.append("</section>")
    return "".join(parts)


def render_html(inventory: Inventory) -> str:
    """The inventory as one self-contained HTML page: inline CSS, no scripts, nothing fetched
    from the internet, every value escaped."""
    ranked = inventory.ranked()
    summary = " · ".join(f"{n} {k}" for k, n in inventory.summary().items() if n)
    rows = []
    for entry in ranked:
        r = summary_row(entry)
        link = f'<a href="#{_e("src-" + entry.name)}">{_e(entry.name)}</a>'
        category = (
            _tag(entry) if entry.classification else f'<span class="error">{_e(entry.error)}</span>'
        )
        cells = [f"<td>{link}</td>", f"<td>{_e(r['kind'])}</td>"]
        cells += [f'<td class="n">{_e(r[k])}</td>' for k in ("rows", "columns", "size")]
        cells += [f"<td>{_e(r['last updated'])}</td>", f"<td>{category}</td>"]
        cells.append(f'<td class="n">{_e(r["confidence"])}</td>')
        cells += [f'<td class="{_e(r[k])}">{_e(r[k])}</td>' for k in _LEVEL_COLUMNS]
        cells.append(f"<td>{_e(r['application'])}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in SUMMARY_COLUMNS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>datawheel inventory: {_e(inventory.workspace)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Data inventory</h1>"
        f'<p class="muted">{_e(inventory.workspace)} · generated {_e(inventory.generated_at)}'
        f" · {_e(summary)}</p><table><tr>{head}</tr>{''.join(rows)}</table>"
        f"{''.join(_section(e) for e in ranked)}</body></html>\n"
    )
