"""The Workspace facade: config + store + indexes + models, and the verbs users call.

The CLI, the HTTP API and the web UI call only this class.

Example:
    >>> ws = Workspace.init("kb")
    >>> report = ws.ingest(["docs/"])
    >>> for hit in ws.search("refund policy", k=3):
    ...     print(hit.score, hit.title)
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datawheel.config import CONFIG_FILE, Config, render_default_config
from datawheel.errors import ConfigError, WorkspaceError
from datawheel.ingest import IngestReport, Progress, run_ingest
from datawheel.store.catalog import Filter
from datawheel.store.indexes import IndexSet
from datawheel.store.sql import SQLStore
from datawheel.workspace_feedback import FeedbackMixin
from datawheel.workspace_predict import PredictionsMixin
from datawheel.workspace_storage import StorageMixin
from datawheel.workspace_tables import TablesMixin

log = logging.getLogger(__name__)
_EMPHASIS = re.compile(r"\*\*|__|`")


@dataclass
class SearchHit:
    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    uri: str
    heading: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # per retriever, raw

    def snippet(self, width: int = 240) -> str:
        """The chunk's text on one line, Markdown emphasis removed, cut at a word."""
        text = " ".join(_EMPHASIS.sub("", self.text).split())
        return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["snippet"] = self.snippet()
        return data


INGEST_ENGINES = ("local", "spark")  # where ingest embeds: here, or as Spark jobs


class Workspace(FeedbackMixin, TablesMixin, PredictionsMixin, StorageMixin):
    """A folder holding ``datawheel.yaml``, the store and the indexes."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self.config = config
        self.store = SQLStore(config.database_url(path))
        self._embedder: Any = None
        self._indexes: IndexSet | None = None
        self._model: Any = None
        self._challenger: Any = None
        self._versions_checked = 0.0
        self._chunk_info: dict[str, Any] = {}
        self._generator: Any = None
        self._adapted: dict[tuple[int, str | None], Any] = {}  # generators per model version
        self._served_embedder: str | None = None
        self._objects: Any = None

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | Path, *, exist_ok: bool = True) -> Workspace:
        """Create a workspace folder with a commented ``datawheel.yaml`` and the store."""
        root = Path(path).expanduser().resolve()
        cfg_path = root / CONFIG_FILE
        if cfg_path.exists() and not exist_ok:
            raise WorkspaceError(f"{root} is already a workspace")
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} exists and is not a folder; pick another path")
        root.mkdir(parents=True, exist_ok=True)
        if not cfg_path.exists():
            cfg_path.write_text(render_default_config(), encoding="utf-8")
        return cls.open(root)

    @classmethod
    def open(cls, path: str | Path) -> Workspace:
        """Open an existing workspace."""
        root = Path(path).expanduser().resolve()
        cfg_path = root / CONFIG_FILE
        if not cfg_path.exists():
            raise WorkspaceError(
                f"no workspace at {root} (no {CONFIG_FILE}); create one with: datawheel init {path}"
            )
        return cls(root, Config.load(cfg_path))

    def close(self) -> None:
        try:
            if self._indexes is not None:
                self._indexes.save()
        finally:  # a store that stopped answering fails the save; still let go of it
            self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts, loaded on first use -------------------------------------------------------

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from datawheel.models.embedder import load_embedder

            e = self.config.embedding
            self._served_embedder = self._version_embedder()
            self._embedder = load_embedder(
                self._served_embedder or e.model, e.runtime, e.batch_size
            )
        return self._embedder

    def _version_embedder(self) -> str | None:
        """The fine-tuned embedding model of the version in use, if it has one."""
        from datawheel.improve.registry import Registry

        registry = Registry(self.store)
        folder = registry.current_setting("embedder")
        if not folder:
            return None
        if self.objects is not None:  # a fresh worker fetches the version it serves
            self.objects.fetch(str(registry.current()))
        return str(self.path / folder)

    @contextmanager
    def serving(self, embedder: Any, indexes: IndexSet | None) -> Iterator[None]:
        """Serve with another embedder and indexes inside the block (improve's candidates)."""
        if embedder is None:
            yield
            return
        saved = (self._embedder, self._indexes, self._generator)
        self._embedder, self._indexes, self._generator = embedder, indexes, None
        try:
            yield
        finally:
            self._embedder, self._indexes, self._generator = saved

    @property
    def indexes(self) -> IndexSet:
        if self._indexes is None:
            embedder = self.embedder
            tag = hashlib.sha256(embedder.model_id.encode()).hexdigest()[:8]
            self._indexes = IndexSet(
                self.path / "index", embedder.dim, self.config.search, tag, store=self.store
            )
            self._indexes.reconcile(self.store, embedder)
        else:
            self._indexes.refresh(self.store, self._embedder)  # other workers' writes
        return self._indexes

    @property
    def model(self) -> Any:
        """The RAG model version in use (fusion weight, learned ranker, feedback memory)."""
        if self._model is None:
            from datawheel.improve import load_current

            self._model = load_current(self)
        return self._model

    @property
    def generator(self) -> Any:
        if self._generator is None:
            from datawheel.models.generators import load_generator
            from datawheel.models.generators.extractive import ExtractiveGenerator

            extractive = ExtractiveGenerator(self.indexes.bm25.tokenize, self.embedder.embed)
            self._generator = load_generator(self.config.generation, extractive)
        return self._generator

    def generator_for(self, model: Any) -> Any:
        """The generator serving ``model``: with its answer selector when it learned one."""
        generator = self.generator
        weights = getattr(model, "selector", None)
        if weights is None:
            return generator
        key = (id(generator), model.version)
        if key not in self._adapted:
            self._adapted = {k: v for k, v in self._adapted.items() if k[0] == id(generator)}
            self._adapted[key] = generator.adapted(weights)
        return self._adapted[key]

    @property
    def interactions(self) -> Any:
        """The interaction log: answers, their evidence and versions, and votes."""
        from datawheel.feedback.log import InteractionLog

        return InteractionLog(self.store.engine)

    @property
    def predictions(self) -> Any:
        """Scores and forecasts with the outcomes that settle them (predictive apps)."""
        from datawheel.feedback.outcomes import PredictionLog

        return PredictionLog(self.store.engine)

    def model_for(self, user: str) -> tuple[Any, dict[str, str]]:
        """The model serving this user: the challenger for their share of an A/B test.

        Returns the model and the test and variant to log with the interaction.
        """
        from datawheel.improve import ab

        test = ab.running(self)
        if test is None:
            return self.model, {}
        variant = test.variant(user)
        tag = {"ab_test": test.id, "variant": variant}
        if variant == "champion":
            return self.model, tag
        if self._challenger is None or self._challenger.version != test.challenger:
            from datawheel.improve.run import load_version

            self._challenger = load_version(self, test.challenger)
        return self._challenger, tag

    def follow_versions(self, every_s: float = 1.0) -> None:
        """Pick up a version another process promoted or rolled back (several workers),
        checking the store at most every ``every_s`` seconds."""
        from datawheel.improve.registry import Registry

        now = time.monotonic()
        if self._model is None or now - self._versions_checked < every_s:
            return
        self._versions_checked = now
        if (Registry(self.store).current() or None) != self._model.version:
            self.reload_model()

    def reload_model(self) -> None:
        """Pick up the version in use again (after improve or rollback)."""
        self._model = self._challenger = None
        if self._embedder is not None and self._version_embedder() != self._served_embedder:
            if self._indexes is not None:
                self._indexes.save()
            self._embedder = self._indexes = self._generator = None

    def chunk_info(self, ids: Sequence[str]) -> dict[str, Any]:
        """Document id and title words of chunks, cached, for the learned ranker."""
        from datawheel.improve.features import ChunkInfo

        missing = [cid for cid in ids if cid not in self._chunk_info]
        if missing:
            views = list(self.store.chunks(missing))
            titles = self.indexes.bm25.tokenize([v.title for v in views])
            for v, words in zip(views, titles, strict=True):
                self._chunk_info[v.id] = ChunkInfo(v.doc_id, frozenset(words))
        return {cid: self._chunk_info[cid] for cid in ids if cid in self._chunk_info}

    # -- verbs ----------------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        sync: bool = False,
        groups: Sequence[str] | None = None,
        progress: Progress | None = None,
        engine: str = "local",
        spark_master: str | None = None,
    ) -> IngestReport:
        """Ingest files, folders and exports; unchanged files are skipped.

        Args:
            paths: files, folders, zips (Notion/Confluence/Slack exports) or BEIR corpus.jsonl.
            sync: also remove documents under these paths whose files are gone.
            groups: who may read these documents (default: from the source, else config).
            progress: called with (stage, done, total) as work advances.
            engine: ``local`` embeds here; ``spark`` (extra ``[spark]``) embeds each batch of
                new chunks as a Spark job on ``spark_master`` (default ``local[2]``), then
                writes through the same path (PostgreSQL + pgvector when configured).
        """
        from datawheel.tables.spark_session import check_engine

        check_engine(engine, INGEST_ENGINES)
        if engine == "spark":
            from datawheel.spark_embed import embed_with_spark

            return embed_with_spark(
                self, paths, master=spark_master, sync=sync, groups=groups, progress=progress
            )
        self.indexes  # noqa: B018 - load and reconcile before writing
        self._chunk_info.clear()
        before = self.objects.snapshot() if self.objects is not None else {}
        report = run_ingest(
            self, [Path(p) for p in paths], sync=sync, groups=groups, progress=progress
        )
        if self.objects is not None:  # a failed copy is reported; the next ingest retries
            report.failed.extend(self.objects.copy_ingested(before))
        return report

    def ingest_uploads(
        self,
        files: Sequence[tuple[str, Any]],
        *,
        groups: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Store uploaded files (name, binary stream) under ``uploads/`` and ingest them."""
        folder = self.save_uploads(files)
        return self.ingest([folder], groups=groups, progress=progress)

    def save_uploads(self, files: Sequence[tuple[str, Any]]) -> Path:
        """Keep uploaded files (name, binary stream) in a new folder under ``uploads/``."""
        from datawheel.uploads import save_uploads

        folder = save_uploads(self.path, files)
        if self.objects is not None:
            for path, reason in self.objects.copy_originals(sorted(folder.iterdir())):
                log.warning("upload %s: %s", path, reason)
        return folder

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str | None = None,
        filters: Mapping[str, str] | None = None,
        groups: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        """Rank chunks for a query.

        Args:
            mode: ``bm25``, ``dense`` or ``hybrid`` (default from config).
            filters: metadata that must match (``{"topic": "billing"}``), applied inside
                retrieval.
            groups: the caller's groups; only documents shared with one of them are
                returned. ``None`` means no restriction.
        """
        if not query.strip():
            raise ConfigError("the query is empty; pass some words to search for")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        self._check_filter_fields(filters)
        from datawheel.apps.rag.rank import rank as rank_chunks

        ranking = rank_chunks(
            self, query, k, mode or self.config.search.mode, Filter.build(filters, groups)
        )
        views = {v.id: v for v in self.store.chunks([cid for cid, _ in ranking.hits])}
        hits = []
        for rank, (cid, score) in enumerate(ranking.hits, start=1):
            v = views.get(cid)
            if v is None:  # deleted by another process since the index was loaded
                continue
            scores = {name: part[cid] for name, part in ranking.parts.items() if cid in part}
            hits.append(
                SearchHit(
                    rank, score, cid, v.doc_id, v.title, v.uri, v.heading, v.text, v.fields, scores
                )
            )
        return hits

    def hidden_matches(
        self, query: str, groups: Sequence[str] | None, filters: Mapping[str, str] | None = None
    ) -> int:
        """How many of the top 10 passages for ``query`` the caller's ``groups`` may not read
        (a count, never which): why a search as that caller found nothing."""
        if groups is None:
            return 0
        hits = self.search(query, k=10, filters=filters)
        groups_of = self.store.doc_groups(h.doc_id for h in hits)
        flt = Filter.build(None, groups)
        return sum(not flt.matches({}, groups_of.get(h.doc_id, [])) for h in hits)

    def _check_filter_fields(self, filters: Mapping[str, str] | None) -> None:
        """A filter on a field no document has can match nothing: say so, with the fields."""
        if not filters:
            return
        known = self.indexes.bm25.catalog.field_names()
        unknown = sorted(set(filters) - known)
        if unknown and known:  # an empty index matches nothing anyway
            raise ConfigError(
                f"no document has the field {', '.join(map(repr, unknown))} to filter on; "
                f"the fields are: {', '.join(sorted(known))}"
            )

    def retriever(self) -> Any:
        from datawheel.apps.rag.retrieve import Retriever

        idx = self.indexes
        return Retriever(idx.bm25, idx.vectors, self.embedder, self.config.search)

    def evaluate(
        self,
        source: str | Path,
        *,
        split: str = "test",
        mode: str | None = None,
        squad: bool = False,
        max_chars: int = 300,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Score retrieval (nDCG@10, recall@100, MRR@10) and, for question sets, answers.

        Args:
            source: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) whose corpus is
                ingested here if needed; a question-set file (JSON lines of ``{"question",
                "answers", "relevant", "unanswerable"}``) over what is ingested; or, with
                ``squad``, a SQuAD 1.1/2.0 file whose paragraphs are ingested here.
            split: the BEIR qrels split to score.
            mode: ``bm25``, ``dense`` or ``hybrid`` (default from config).
            max_chars: the longest answer (citations aside) that can count as right.

        Answers are judged by their text (``datawheel.evaluate.answers``). Every result is
        recorded in the store with the model and index versions.
        """
        from datawheel.evaluate.beir import evaluate_beir
        from datawheel.evaluate.questions import evaluate_questions, evaluate_squad

        path = Path(source)
        mode = mode or self.config.search.mode
        if squad or path.is_file():
            if squad:
                result = evaluate_squad(self, path, mode, max_chars, progress)
            else:
                result = evaluate_questions(
                    self, path, mode, answers=True, max_chars=max_chars, progress=progress
                )
            self.store.record_evaluation(
                None,
                {
                    "dataset": str(path),
                    "split": "squad" if squad else "questions",
                    "mode": mode,
                    "metrics": {k: v for k, v in result.items() if k not in ("mode", "dataset")},
                    "versions": self.provenance(),
                },
            )
            return result
        return evaluate_beir(self, path, split=split, mode=mode, progress=progress)

    # -- users and what produced a result -------------------------------------------------

    @property
    def users(self) -> Any:
        """Users, API keys and web sessions (datawheel serve)."""
        from datawheel.users import UserDirectory

        return UserDirectory(self.store.engine)

    def add_user(
        self,
        name: str,
        *,
        role: str = "viewer",
        groups: Sequence[str] | None = None,
        password: str | None = None,
    ) -> str:
        """Create a user (groups default to ingest.default_groups); returns their API key."""
        chosen = self.config.ingest.default_groups if groups is None else groups
        return self.users.add(name, role=role, groups=chosen, password=password)

    def passage(self, chunk_id: str, *, groups: Sequence[str] | None = None) -> Any:
        """One chunk with its document's title and uri, if the caller's groups may read it.

        Raises:
            NotFoundError: no such chunk, or one the groups may not read (the same answer
                for both, so ids of hidden documents cannot be probed).
        """
        from datawheel.errors import NotFoundError

        view = next(iter(self.store.chunks([chunk_id])), None)
        if view is None or not Filter.build(None, groups).matches(view.fields, view.groups):
            raise NotFoundError(
                f"no passage {chunk_id!r} that you may read; cite it from an answer you got"
            )
        return view

    def provenance(self) -> dict[str, Any]:
        """What produced a result: model version, embedder, index size and search settings."""
        return {
            "version": self.model.version,
            "ranker": self.model.ranker_name,
            "embedder": self.embedder.model_id,
            "chunks": len(self.indexes.vectors),
            "search": self.config.search.model_dump(),
            "chunking": self.config.chunking.model_dump(),
        }

    def _current_version(self) -> str | None:
        from datawheel.improve.registry import Registry

        return Registry(self.store).current()

    def status(self) -> dict[str, Any]:
        """Counts and the latest runs, for ``datawheel status``."""
        return {
            "workspace": str(self.path),
            "store": self.store.engine.url.render_as_string(hide_password=True),
            "counts": self.store.counts(),
            "version": self._current_version(),
            "embedder": self.embedder.model_id,  # name:weights:runtime, as auto resolved it
            "cpu": self._cpu_status(),
            "runs": self.store.list_runs(limit=5),
        }

    def _cpu_status(self) -> dict[str, Any]:
        """The CPU features that decide the runtimes, and whether the local LLM runs here."""
        from datawheel.models.cpu import reported_features

        status: dict[str, Any] = {"features": reported_features()}
        check = getattr(getattr(self.generator, "primary", None), "check", None)
        if check is not None:  # a local llama.cpp model: tried once in a child process
            verdict = check()
            status["llama_cpp"] = "runs here" if verdict.ok else verdict.reason
        return status

    def roi(self, days: int = 30, *, extrapolate: bool = False) -> Any:
        """Annual value from measured usage against the investment (``roi:`` in the config).

        Returns a RoiReport: one line item each for answers, leads and forecast with its
        measured inputs and assumptions, adoption, ROI and payback months.
        """
        from datawheel.roi import compute_roi

        return compute_roi(
            self, days=days, registered_users=self._registered_users(), extrapolate=extrapolate
        )

    def _registered_users(self) -> int | None:
        """Users with an enabled account; None while the store has no users table."""
        from sqlalchemy import func, inspect, select

        from datawheel.store import schema as t

        if not inspect(self.store.engine).has_table("users"):
            return None
        query = select(func.count()).select_from(t.users).where(t.users.c.disabled.is_(False))
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
