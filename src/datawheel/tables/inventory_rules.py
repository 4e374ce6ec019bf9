"""The inventory's classification rules: data, read from ``inventory:`` in ``datawheel.yaml``.

:class:`InventoryRules` holds, per category (business-process, customer-interaction,
expert-knowledge, public-web), the column-name keywords and value patterns that count as
evidence for it, and the value density, flywheel effect, priority and AI application it
gets. Every field has a default (``_DEFAULTS``), so an empty ``inventory:`` section works;
``overrides`` pins what a named source is. :mod:`datawheel.tables.classify` applies them.

Example (``datawheel.yaml``)::

    inventory:
      business_process:
        columns: [order, invoice, "re:^amt_"]
      overrides:
        tickets: {category: customer-interaction, priority: high}
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Category = Literal["business-process", "customer-interaction", "expert-knowledge", "public-web"]
Level = Literal["high", "medium", "low"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
LEVELS: tuple[Level, ...] = get_args(Level)


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
