"""What datawheel copies to object storage, where each copy is, and what is still to copy.

* **Originals**: every file ingested from disk and every upload, content-addressed at
  ``<url>/originals/<sha256>/<name>``; the same bytes are copied once, whatever their path.
* **Model versions**: every registered version folder, at ``<url>/models/<version>/``, with
  ``_datawheel_manifest.json`` (each file's size and sha256) written last: a version without
  it is not fully uploaded. A version whose folder is missing here is downloaded, checked
  against the manifest and moved into place before it is loaded.

The ledger lives in the store's ``state`` table: ``original:<sha256>`` (object URL, name,
local paths), ``pending:original:<sha256>`` (a copy that failed, retried on the next ingest)
and ``model_object:<version>``. Why there and not in each document's metadata: document
metadata becomes filterable search fields shown to every reader, one archive or corpus file
holds many documents, and the copy happens after the documents are written (a failed copy
must not hold back or undo an ingest). The ``state`` table needs no migration, lives in
SQLite and PostgreSQL alike, and moves with the store under ``datawheel migrate``.

A failed copy never loses data: the local file or folder stays where it is, the failure is
reported (ingest's failure list, the improve report's warnings) and the next run retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete, select

from datawheel.errors import NotFoundError, StorageError
from datawheel.store import schema as t
from datawheel.store.objects import ObjectStore
from datawheel.store.sql import SQLStore

log = logging.getLogger(__name__)

ORIGINAL = "original:"
PENDING = "pending:original:"
MODEL = "model_object:"
MANIFEST = "_datawheel_manifest.json"
#: Reasons that concern the whole store, not one file: stop trying the others.
_STORE_WIDE = {"no_bucket", "credentials", "unreachable"}
_WORKERS = 8
_KEPT = "not copied to object storage (kept on disk; the next ingest retries):"


@dataclass
class _Original:
    path: Path
    sha256: str

    @property
    def key(self) -> str:
        return f"originals/{self.sha256}/{self.path.name}"


class Mirror:
    """Copies originals and model versions to an ObjectStore and fetches them back."""

    def __init__(self, objects: ObjectStore, store: SQLStore, root: Path) -> None:
        self.objects = objects
        self.store = store
        self.root = root

    # -- originals ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, str]:
        """Each document's fingerprint, to tell afterwards which ones an ingest wrote."""
        return {uri: fp for uri, (_, fp) in self.store.document_states().items()}

    def copy_ingested(self, before: dict[str, str]) -> list[tuple[str, str]]:
        """Copy the files behind the documents written since ``before``; returns failures."""
        changed = [
            uri for uri, (_, fp) in self.store.document_states().items() if before.get(uri) != fp
        ]
        files = {f for f in map(file_of, changed) if f is not None}
        return self.copy_originals(sorted(files))

    def copy_originals(self, paths: Iterable[Path]) -> list[tuple[str, str]]:
        """Copy files not copied yet, and retry earlier failures; returns (path, reason)."""
        failures: list[tuple[str, str]] = []
        todo: dict[str, _Original] = {}
        for path in paths:
            try:
                item = _Original(path, sha256_file(path))
            except OSError as exc:
                failures.append((str(path), f"not copied to object storage: {exc}"))
                continue
            todo.setdefault(item.sha256, item)
        copied = self._ledger(ORIGINAL, [ORIGINAL + sha for sha in todo])
        for key, value in copied.items():
            self._note_path(key, value, todo.pop(key[len(ORIGINAL) :]).path)
        for item in self._pending():
            todo.setdefault(item.sha256, item)
        if not todo:
            return failures
        results = self._run(list(todo.values()), lambda o: self.objects.put_file(o.path, o.key))
        store_wide: list[tuple[_Original, StorageError]] = []
        with self.store.engine.begin() as conn:
            for item, outcome in results:
                if isinstance(outcome, StorageError):
                    reason = {"path": str(item.path), "error": str(outcome)}
                    _put(conn, PENDING + item.sha256, reason)
                    if outcome.reason in _STORE_WIDE:
                        store_wide.append((item, outcome))
                    else:
                        failures.append((str(item.path), f"{_KEPT} {outcome}"))
                    continue
                _put(conn, ORIGINAL + item.sha256, _record(outcome, item.path))
                conn.execute(delete(t.state).where(t.state.c.key == PENDING + item.sha256))
        if store_wide:
            first = store_wide[0][1]
            failures.append(
                (
                    self.objects.url,
                    f"{len(store_wide)} file(s) not copied to object storage; they stay on disk "
                    f"and are copied at the next ingest: {first}",
                )
            )
            log.warning("object storage: %s", first)
        return failures

    def originals(self) -> list[dict[str, Any]]:
        """Every copied original: sha256, object URL, name and the local paths seen."""
        rows = self._ledger(ORIGINAL, None)
        return [{"sha256": k[len(ORIGINAL) :], **v} for k, v in sorted(rows.items())]

    def pending(self) -> list[dict[str, Any]]:
        """Originals whose copy failed and will be retried."""
        rows = self._ledger(PENDING, None)
        return [{"sha256": k[len(PENDING) :], **v} for k, v in sorted(rows.items())]

    def _pending(self) -> list[_Original]:
        out = []
        for row in self.pending():
            path = Path(row["path"])
            try:
                same = sha256_file(path) == row["sha256"]
            except OSError:
                same = False
            if same:
                out.append(_Original(path, row["sha256"]))
                continue
            # The file changed or went away: its new content is copied when it is ingested.
            log.warning("object storage: %s changed or is gone; its old copy is dropped", path)
            with self.store.engine.begin() as conn:
                conn.execute(delete(t.state).where(t.state.c.key == PENDING + row["sha256"]))
        return out

    def _note_path(self, key: str, value: dict[str, Any], path: Path) -> None:
        if str(path) in value.get("paths", []):
            return
        value["paths"] = [*value.get("paths", []), str(path)]
        with self.store.engine.begin() as conn:
            _put(conn, key, value)

    # -- model versions -------------------------------------------------------------------

    def push_models(self) -> list[str]:
        """Upload every registered version folder not uploaded yet; returns warnings."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(t.model_versions.c.id, t.model_versions.c.artifacts).order_by(
                    t.model_versions.c.created_at
                )
            ).all()
        done = self._ledger(MODEL, None)
        warnings: list[str] = []
        for version, artifacts in rows:
            folder = self.root / (artifacts or f"models/{version}")
            if MODEL + version in done or not folder.is_dir():
                continue
            try:
                self.push_model(version, folder)
            except StorageError as exc:
                warnings.append(
                    f"model version {version} not copied to object storage; it stays in "
                    f"{folder} and the next run retries: {exc}"
                )
                log.warning("object storage: %s", warnings[-1])
                if exc.reason in _STORE_WIDE:
                    break
        return warnings

    def push_model(self, version: str, folder: Path) -> str:
        """Upload one version folder, its manifest last; returns the folder's URL."""
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        prefix = f"models/{version}"
        entries: dict[str, dict[str, Any]] = {}
        for path in files:
            rel = path.relative_to(folder).as_posix()
            entries[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        results = self._run(
            files,
            lambda p: self.objects.put_file(p, f"{prefix}/{p.relative_to(folder).as_posix()}"),
        )
        for _, outcome in results:
            if isinstance(outcome, StorageError):
                raise outcome
        manifest = {"version": version, "files": entries, "at": _now()}
        self.objects.put_bytes(f"{prefix}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
        url = self.objects.object_url(prefix)
        size = sum(int(e["bytes"]) for e in entries.values())
        with self.store.engine.begin() as conn:
            _put(conn, MODEL + version, {"url": url, "files": len(entries), "bytes": size})
        log.info("object storage: copied %s (%d files) to %s", version, len(entries), url)
        return url

    def fetch(self, version: str, artifacts: str | None = None) -> Path:
        """The local folder of a version, downloaded first when it is missing here."""
        if artifacts is None:
            with self.store.engine.connect() as conn:
                artifacts = conn.execute(
                    select(t.model_versions.c.artifacts).where(t.model_versions.c.id == version)
                ).scalar()
            if artifacts is None:
                raise NotFoundError(f"no model version {version!r}; see: datawheel versions")
        folder = self.root / artifacts
        if folder.exists():
            return folder
        prefix = f"models/{version}"
        try:
            manifest = json.loads(self.objects.get_bytes(f"{prefix}/{MANIFEST}"))
        except StorageError as exc:
            if exc.reason != "missing":
                raise
            raise StorageError(
                f"model version {version} is neither in {folder} nor complete in object "
                f"storage ({self.objects.object_url(prefix)}/): its upload never finished. "
                "Run datawheel improve (or the app's train) where it was made to retry the "
                "upload, or put another version in use with datawheel rollback",
                "missing",
            ) from exc
        tmp = folder.with_name(f".{folder.name}.download-{secrets.token_hex(4)}")
        try:
            self._download(prefix, manifest, tmp)
            try:
                tmp.rename(folder)
            except OSError:
                if not folder.exists():  # another worker won the race otherwise
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("object storage: fetched %s into %s", version, folder)
        return folder

    def _download(self, prefix: str, manifest: dict[str, Any], into: Path) -> None:
        files: dict[str, dict[str, Any]] = manifest.get("files", {})
        for rel in files:
            parts = PurePosixPath(rel).parts
            if not parts or rel.startswith("/") or ".." in parts:
                raise StorageError(f"{prefix}/{MANIFEST} lists an unsafe path {rel!r}")
        into.mkdir(parents=True)
        results = self._run(
            list(files), lambda rel: self.objects.get_file(f"{prefix}/{rel}", into / rel)
        )
        for rel, outcome in results:
            if isinstance(outcome, StorageError):
                raise outcome
            if sha256_file(into / rel) != files[rel]["sha256"]:
                raise StorageError(
                    f"{self.objects.object_url(f'{prefix}/{rel}')} differs from its manifest "
                    "(a partial or overwritten upload); run improve where the version was "
                    "made to upload it again"
                )

    # -- both -----------------------------------------------------------------------------

    def sync(self) -> dict[str, Any]:
        """Check the store, then retry every failed copy: pending originals and versions
        not uploaded. Raises StorageError when the store cannot be used at all."""
        self.objects.check()
        return {
            "originals": [{"path": p, "reason": r} for p, r in self.copy_originals([])],
            "models": self.push_models(),
        }

    def _run(self, items: Sequence[Any], op: Callable[[Any], Any]) -> list[tuple[Any, Any]]:
        """Run ``op`` on every item in a few threads; a store-wide error stops the rest."""
        stop = threading.Event()
        first: list[StorageError] = []

        def one(item: Any) -> tuple[Any, Any]:
            if stop.is_set():
                return item, first[0]
            try:
                return item, op(item)
            except StorageError as exc:
                if exc.reason in _STORE_WIDE:
                    first.append(exc)
                    stop.set()
                return item, exc

        if len(items) <= 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(min(_WORKERS, len(items))) as pool:
            return list(pool.map(one, items))

    def _ledger(self, prefix: str, keys: list[str] | None) -> dict[str, dict[str, Any]]:
        query = select(t.state.c.key, t.state.c.value)
        if keys is None:
            query = query.where(t.state.c.key.startswith(prefix, autoescape=True))
        elif not keys:
            return {}
        out: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            for part in _batches(keys) if keys is not None else [None]:
                q = query if part is None else query.where(t.state.c.key.in_(part))
                for key, value in conn.execute(q):
                    out[key] = json.loads(value)
        return out


def file_of(uri: str) -> Path | None:
    """The file on disk behind a document uri: the file itself, the archive of a member
    (``/a/export.zip!/page.md``) or the corpus of a line (``/a/corpus.jsonl#doc-1``)."""
    for candidate in (uri, uri.partition("!/")[0], uri.rpartition("#")[0]):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(url: str, path: Path) -> dict[str, Any]:
    return {"url": url, "name": path.name, "paths": [str(path)]}


def _put(conn: Any, key: str, value: dict[str, Any]) -> None:
    """Insert or replace one ledger entry (an upsert: workers may write the same one)."""
    from sqlalchemy.dialects import postgresql, sqlite

    text = json.dumps({**value, "at": _now()})
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t.state).values(key=key, value=text)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": text}))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _batches(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
