"""Files sent to the service: stored under ``uploads/`` with safe names, then ingested.

A name must be a plain file name: a path (``../x``, ``a/b``, ``C:\\x``), an empty name or a
hidden file is refused with the reason before anything is written.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from datawheel.errors import ConfigError

_SAFE = re.compile(r"[^\w.\- ()]+", flags=re.UNICODE)


def safe_name(name: str) -> str:
    """The name to store an upload under; ConfigError for a path or an unusable name."""
    raw = (name or "").strip()
    if not raw or "/" in raw or "\\" in raw or raw in (".", "..") or raw.startswith("."):
        raise ConfigError(
            f"upload name {name!r} is not a plain file name; send files by their name only "
            "(no folders, no leading dot)"
        )
    if len(raw) > 200:
        raise ConfigError(f"upload name {raw[:40]!r}... is over 200 characters")
    return _SAFE.sub("_", raw)


def save_uploads(root: Path, files: Iterable[tuple[str, BinaryIO]]) -> Path:
    """Write the files into a new folder under ``root/uploads``; returns the folder.

    Every name is checked before the first byte is written, so a bad name stores nothing.
    """
    items = [(safe_name(name), stream) for name, stream in files]
    if not items:
        raise ConfigError("no files in the upload; send them as multipart form field 'files'")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError("two uploaded files have the same name; rename one")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = root / "uploads" / f"{stamp}-{secrets.token_hex(3)}"
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True)
    try:
        for name, stream in items:
            with (partial / name).open("wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder
