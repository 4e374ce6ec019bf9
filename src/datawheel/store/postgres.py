"""What the store needs only on PostgreSQL: the driver, clear connection errors, COPY.

Everything here is behind the ``postgres`` extra (psycopg 3 and pgvector). The store and
the vector index call in only when their URL is a PostgreSQL one, so the embedded default
never imports psycopg.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import URL, Connection, make_url, text
from sqlalchemy.exc import DBAPIError

from datawheel.errors import MissingExtraError, WorkspaceError

log = logging.getLogger(__name__)

# One key for pg_advisory_xact_lock: document writes queue behind each other, as they do
# on SQLite, so two workers replacing the same document never collide on its chunk ids.
DOCUMENT_WRITE_LOCK = 0x64617461  # "data"

INSTALL_PGVECTOR = (
    "install pgvector on the server (Debian/Ubuntu with the PGDG repository: "
    "apt install postgresql-<version>-pgvector; otherwise build it from "
    "https://github.com/pgvector/pgvector), then run CREATE EXTENSION vector; as a "
    "superuser in the database"
)


def is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def engine_url(url: str | URL) -> URL:
    """The URL with psycopg 3 as the driver when none is named (``postgresql://``)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgresql+psycopg":
        psycopg()
    return parsed


def psycopg() -> Any:
    try:
        import psycopg as driver
    except ImportError as exc:
        raise MissingExtraError("the PostgreSQL store (psycopg)", "postgres") from exc
    return driver


def safe_url(url: str | URL) -> str:
    """The URL as users may see it in a message or a log: never with the password."""
    return make_url(url).render_as_string(hide_password=True)


def connect_error(exc: DBAPIError, url: str | URL) -> WorkspaceError:
    """Turn a failed connection into a message that says what to check."""
    shown = safe_url(url)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    low = str(exc.orig).lower()
    if "password authentication failed" in low or "role" in low and "does not exist" in low:
        hint = (
            "the server refused the user name or password; check them in "
            "DATAWHEEL_DATABASE_URL (write the password in the URL or in ~/.pgpass)"
        )
    elif "database" in low and "does not exist" in low:
        hint = "create the database first (createdb NAME, or CREATE DATABASE NAME;)"
    elif any(
        s in low
        for s in (
            "connection refused",
            "could not translate host name",
            "no such file or directory",
            "timeout expired",
            "could not connect",
            "network is unreachable",
            "no route to host",
        )
    ):
        hint = (
            "no PostgreSQL server answers there; check the host and port in "
            "DATAWHEEL_DATABASE_URL and that the server is running"
        )
    else:
        hint = "check DATAWHEEL_DATABASE_URL and the server's log"
    return WorkspaceError(f"cannot connect to PostgreSQL at {shown}: {reason}. {hint}")


def ensure_pgvector(conn: Connection, url: str | URL, extension: str = "vector") -> None:
    """Create the ``vector`` extension where it is missing, or say how to install it."""
    name = {"n": extension}
    have = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = :n"), name).first()
    if have:
        return
    available = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), name
    ).first()
    if not available:
        raise WorkspaceError(
            f"the PostgreSQL server at {safe_url(url)} has no pgvector extension, which "
            f"datawheel needs for its vectors; {INSTALL_PGVECTOR}"
        )
    try:
        with conn.begin_nested():
            conn.execute(text(f'CREATE EXTENSION IF NOT EXISTS "{extension}"'))
    except DBAPIError as exc:
        raise WorkspaceError(
            f"pgvector is installed on {safe_url(url)} but this user may not enable it "
            f"({str(exc.orig).strip().splitlines()[0]}); ask a superuser to run "
            "CREATE EXTENSION vector; in the database"
        ) from exc


def lock_document_writes(conn: Connection) -> None:
    """Hold the document-write lock until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DOCUMENT_WRITE_LOCK})


def copy_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    binary: Sequence[str] | None = None,
) -> int:
    """COPY rows into a table inside the connection's transaction; returns how many.

    Text format: JSON values must already be text; psycopg adapts the rest (str, int,
    float, bytes, datetime, bool, None). ``binary``: the PostgreSQL type of each column,
    for COPY in binary format.
    """
    cols = ", ".join(_quote(c) for c in columns)
    statement = f"COPY {_quote(table)} ({cols}) FROM STDIN"
    if binary:
        statement += " (FORMAT BINARY)"
    cursor = _driver_connection(conn).cursor()
    n = 0
    driver = psycopg()
    try:
        with cursor.copy(statement) as copy:
            if binary:
                copy.set_types(list(binary))
            for row in rows:
                copy.write_row(row)
                n += 1
    except driver.Error as exc:
        # the same exception types as SQLAlchemy's own statements (IntegrityError, ...)
        raise DBAPIError.instance(statement, None, exc, driver.Error) from exc
    return n


def _driver_connection(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
