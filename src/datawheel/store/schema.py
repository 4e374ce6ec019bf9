"""The relational schema and its migrations.

Tables change only through migrations registered with ``@migration(n)``; each applied
version is recorded in ``schema_migrations`` so opening an old workspace upgrades it.
The same SQLAlchemy Core code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), server_default=func.now()),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),  # hash of the uri: stable identity
    Column("uri", Text, nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),  # hash of the raw content
    Column("title", Text, nullable=False, default=""),
    Column("kind", String(32), nullable=False, default=""),
    Column("author", Text),
    Column("date", String(40)),
    Column("topic", Text),
    Column("groups", JSON, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("ingested_at", DateTime(timezone=True), server_default=func.now()),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", String(32), primary_key=True),  # hash of (document id, text, ordinal)
    Column("doc_id", String(32), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("ord", Integer, nullable=False),
    Column("heading", Text, nullable=False, default=""),
    Column("text", Text, nullable=False),
    Column("text_hash", String(32), nullable=False),
    Index("ix_chunks_doc_id", "doc_id"),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("text_hash", String(32), primary_key=True),
    Column("model_id", String(120), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # running, finished, failed, interrupted
    Column("started_at", DateTime(timezone=True), server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("params", JSON, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("pid", Integer),
)

ingest_failures = Table(
    "ingest_failures",
    metadata,
    Column("uri", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("fingerprint", String(64)),
    Column("run_id", Integer),
    Column("at", DateTime(timezone=True), server_default=func.now()),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("dataset", Text, nullable=False),
    Column("split", String(40), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("versions", JSON, nullable=False),  # embedder, index generation, search settings
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

state = Table(
    "state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("user", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("declined", Boolean, nullable=False),
    Column("answered_from", String(20), nullable=False),  # generator, memory, declined
    Column("sources", JSON, nullable=False),  # [{n, chunk_id, doc_id, score, cited}]
    Column("versions", JSON, nullable=False),  # version, retriever, ranker, generator, embedder
    Column("warnings", JSON, nullable=False),
    Column("conversation", String(64)),  # the turns of one conversation share it
    Column("asked_as", Text),  # a follow-up as retrieval saw it, with the earlier turn
    Index("ix_interactions_created_at", "created_at"),
    Index("ix_interactions_conversation", "conversation"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("interaction_id", String(32), ForeignKey("interactions.id"), primary_key=True),
    Column("user", String(200), primary_key=True),  # one vote per user; the latest counts
    Column("vote", String(4), nullable=False),  # up, down
    Column("failure", String(20)),  # wrong_source, wrong_answer, not_in_sources
    Column("comment", Text),
    Column("correction", Text),
    Column("helpful", JSON, nullable=False),  # chunk ids
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A correction or a 👎 comment waits for an editor: pending, approved, rejected (NULL:
    # nothing to review). Only an approved correction becomes a curated answer.
    Column("review", String(10)),
    Column("reviewed_by", String(100)),
    Column("reviewed_at", DateTime(timezone=True)),
)

audit_log = Table(  # who read other users' questions and answers, and when
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),  # read_interaction, list_interactions, ...
    Column("target", Text, nullable=False),  # interaction ids or a description
    Index("ix_audit_log_at", "at"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(16), primary_key=True),  # v1, v2, ...
    Column("kind", String(20), nullable=False),  # rag
    Column("status", String(20), nullable=False),  # promoted, rejected, retired
    Column("parent", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("artifacts", Text, nullable=False),  # folder under the workspace
    Column("note", Text, nullable=False),
)

table_versions = Table(
    "table_versions",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),  # clean, readmit
    Column("clean_path", Text, nullable=False),  # relative to the workspace
    Column("quarantine_path", Text, nullable=False),
    Column("rows_in", Integer, nullable=False),
    Column("rows_clean", Integer, nullable=False),
    Column("rows_quarantined", Integer, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("app", String(20), nullable=False),  # leads, forecast
    Column("version", String(40)),  # the model version that made it
    Column("entity", Text, nullable=False),  # lead id, or series key + target date
    Column("inputs", JSON, nullable=False),
    Column("output", JSON, nullable=False),  # probability, reasons, action / quantiles
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_predictions_app_entity", "app", "entity"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app", String(20), nullable=False),
    Column("entity", Text, nullable=False),
    Column("value", JSON, nullable=False),  # won/lost, actual sales
    Column("observed_at", String(40)),
    Column("prediction_id", String(32)),  # the prediction it settles, when one matched
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Index("ix_outcomes_app_entity", "app", "entity"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False),  # admin, editor, viewer
    Column("groups", JSON, nullable=False),  # the document groups the user may read
    Column("password_hash", Text),  # scrypt; NULL: signs in with an API key only
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),  # the key's public part, shown in listings
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # sha256 of the whole key
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

copy_checkpoints = Table(
    "copy_checkpoints",
    metadata,
    Column("source", Text, primary_key=True),  # the source store's URL, without password
    Column("table_name", String(80), primary_key=True),
    Column("last_key", JSON),  # primary key of the last row copied; NULL: none yet
    Column("rows_read", Integer, nullable=False),
    Column("rows_inserted", Integer, nullable=False),
    Column("target_before", Integer, nullable=False),  # rows the target had at the start
    Column("id_offset", Integer, nullable=False),  # added to integer ids (--merge)
    Column("done", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

rate_limits = Table(  # fixed-window request counters shared by the workers of a service
    "rate_limits",
    metadata,
    Column("key", String(200), primary_key=True),  # the limit and the caller's bucket
    Column("hits", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),  # epoch seconds: the window's end
)

Migration = Callable[[Connection], None]
MIGRATIONS: dict[int, tuple[str, Migration]] = {}


def migration(version: int, name: str) -> Callable[[Migration], Migration]:
    """Register a schema migration; versions apply in order, each exactly once."""

    def register(fn: Migration) -> Migration:
        if version in MIGRATIONS:
            raise RuntimeError(f"migration {version} registered twice")
        MIGRATIONS[version] = (name, fn)
        return fn

    return register


@migration(1, "core tables: documents, chunks, embeddings, runs, failures, evaluations")
def _initial(conn: Connection) -> None:
    metadata.create_all(
        conn,
        tables=[documents, chunks, embeddings, runs, ingest_failures, evaluations, state],
    )


@migration(2, "flywheel: interactions, feedback, model versions")
def _flywheel(conn: Connection) -> None:
    metadata.create_all(conn, tables=[interactions, feedback, model_versions])


@migration(3, "table versions: every clean and readmit run's outputs")
def _table_versions(conn: Connection) -> None:
    metadata.create_all(conn, tables=[table_versions])


@migration(4, "monitor: snapshots and findings")
def _monitor(conn: Connection) -> None:
    from datawheel.monitor.history import create_tables  # late: it imports this module

    create_tables(conn)


@migration(5, "predictive apps: predictions and outcomes")
def _predictions(conn: Connection) -> None:
    metadata.create_all(conn, tables=[predictions, outcomes])


@migration(6, "service: users, API keys, web sessions")
def _users(conn: Connection) -> None:
    metadata.create_all(conn, tables=[users, api_keys, sessions])


@migration(7, "datawheel migrate: per-table copy checkpoints in the target store")
def _copy_checkpoints(conn: Connection) -> None:
    metadata.create_all(conn, tables=[copy_checkpoints])


@migration(8, "service: rate-limit counters shared by the workers")
def _rate_limits(conn: Connection) -> None:
    metadata.create_all(conn, tables=[rate_limits])


@migration(9, "security: corrections wait for review; an audit log of reads of others' content")
def _review(conn: Connection) -> None:
    from sqlalchemy import inspect, text, update

    have = {c["name"] for c in inspect(conn).get_columns("feedback")}
    for column in ("review", "reviewed_by", "reviewed_at"):
        if column not in have:  # workspaces made before this migration
            kind = feedback.c[column].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE feedback ADD COLUMN {column} {kind}"))
    # Nothing users wrote is lost: earlier corrections and 👎 comments wait for review.
    written = (feedback.c.correction.is_not(None) & (feedback.c.correction != "")) | (
        (feedback.c.vote == "down") & feedback.c.comment.is_not(None) & (feedback.c.comment != "")
    )
    conn.execute(
        update(feedback).where(written, feedback.c.review.is_(None)).values(review="pending")
    )
    metadata.create_all(conn, tables=[audit_log])


@migration(10, "conversations: follow-up questions share a conversation id")
def _conversations(conn: Connection) -> None:
    from sqlalchemy import inspect, text

    have = {c["name"] for c in inspect(conn).get_columns("interactions")}
    for column in ("conversation", "asked_as"):
        if column not in have:  # workspaces made before this migration
            kind = interactions.c[column].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE interactions ADD COLUMN {column} {kind}"))
    indexes = {i["name"] for i in inspect(conn).get_indexes("interactions")}
    if "ix_interactions_conversation" not in indexes:
        conn.execute(
            text("CREATE INDEX ix_interactions_conversation ON interactions (conversation)")
        )


def migrate(conn: Connection) -> list[int]:
    """Apply every migration not applied yet; returns the versions applied now."""
    schema_migrations.create(conn, checkfirst=True)
    done = set(conn.execute(select(schema_migrations.c.version)).scalars())
    applied = []
    for version in sorted(MIGRATIONS):
        if version in done:
            continue
        name, fn = MIGRATIONS[version]
        fn(conn)
        conn.execute(insert(schema_migrations).values(version=version, name=name))
        applied.append(version)
    return applied
