"""Slack exports: ``users.json``, ``channels.json`` and ``<channel>/YYYY-MM-DD.json`` files.

Each channel-day becomes one document titled ``#channel YYYY-MM-DD``: its messages in time
order, one paragraph each, as ``Name: text`` with user ids resolved to names.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from datawheel.errors import SourceError
from datawheel.sources.base import Section, SourceDocument, fingerprint
from datawheel.sources.entries import (
    READ_ERRORS,
    Entry,
    base_metadata,
    read_reason,
    too_big_reason,
)

DAY_FILE = re.compile(r"^[^/]+/\d{4}-\d{2}-\d{2}\.json$")
SKIPPED_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "group_join",
        "group_leave",
        "channel_purpose",
        "channel_topic",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "pinned_item",
    }
)
_USER = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(?:subteam\^[A-Z0-9]+\|)?([^>|]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


class SlackUsers:
    """An export's ``users.json``: fingerprinted at discovery, parsed once on first load."""

    def __init__(self, entry: Entry, max_file_bytes: int) -> None:
        self._entry = entry
        self._max_file_bytes = max_file_bytes
        self._names: dict[str, str] | None = None
        self.fingerprint = ""
        if entry.size <= max_file_bytes:
            with contextlib.suppress(*READ_ERRORS):  # names() says why, when a day is loaded
                self.fingerprint = fingerprint(entry.read())

    def names(self) -> dict[str, str]:
        """User id to display name (raises ``SourceError`` when users.json is unusable)."""
        if self._names is None:
            if self._entry.size > self._max_file_bytes:
                reason = too_big_reason(self._entry.size, self._max_file_bytes)
                raise SourceError(f"users.json: {reason}")
            try:
                data = self._entry.read()
            except READ_ERRORS as exc:
                raise SourceError(f"users.json: {read_reason(exc)}") from exc
            self._names = read_users(data)
        return self._names


def find_roots(entries: list[Entry], max_file_bytes: int) -> dict[str, SlackUsers]:
    """Export folders (relative, "" for the top) holding both users.json and channels.json."""
    rels = {entry.rel for entry in entries}
    roots = {}
    for entry in entries:
        folder, _, name = entry.rel.rpartition("/")
        channels = f"{folder}/channels.json" if folder else "channels.json"
        if name == "users.json" and channels in rels:
            roots[folder] = SlackUsers(entry, max_file_bytes)
    return roots


def is_day_file(rel_in_root: str) -> bool:
    """True for ``channel/YYYY-MM-DD.json`` directly under the export root."""
    return bool(DAY_FILE.match(rel_in_root))


def read_users(data: bytes) -> dict[str, str]:
    """Map user ids to display names from ``users.json`` (real name, else user name).

    Raises:
        SourceError: the file is not a JSON list of users.
    """
    try:
        users = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"users.json is not valid JSON ({exc}); re-export from Slack") from exc
    if not isinstance(users, list):
        raise SourceError("users.json is not a list of users; re-export from Slack")
    names = {}
    for user in users:
        if isinstance(user, dict) and user.get("id"):
            profile = user.get("profile") or {}
            names[user["id"]] = (
                user.get("real_name")
                or profile.get("real_name")
                or profile.get("display_name")
                or user.get("name")
                or user["id"]
            )
    return names


def parse(data: bytes, entry: Entry, *, users: Callable[[], dict[str, str]]) -> SourceDocument:
    """Parse one channel-day file; ``users`` returns the export's id-to-name map."""
    try:
        messages = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"not valid JSON ({exc}); re-export the channel from Slack") from exc
    if not isinstance(messages, list):
        raise SourceError("not a Slack day file: expected a JSON list of messages")
    names = users()
    rows = sorted(
        (row for row in (_row(m, names) for m in messages) if row is not None),
        key=lambda row: row[0],
    )
    if not rows:
        raise SourceError("empty: no messages that day (only join/leave events or blank messages)")
    channel, day = entry.rel.split("/")[-2], entry.stem
    posters = Counter(name for _, name, _ in rows)
    metadata = base_metadata(entry, "slack")
    metadata.update(
        author=posters.most_common(1)[0][0],
        date=day,
        topic=channel,
        channel=channel,
        participants=list(posters),
    )
    text = "\n\n".join(f"{name}: {body}" for _, name, body in rows)
    return SourceDocument(
        uri=entry.uri,
        title=f"#{channel} {day}",
        sections=[Section(heading_path=(), text=text)],
        metadata=metadata,
    )


def _row(message: Any, names: dict[str, str]) -> tuple[float, str, str] | None:
    if not isinstance(message, dict) or message.get("type", "message") != "message":
        return None
    if message.get("subtype") in SKIPPED_SUBTYPES:
        return None
    body = render(str(message.get("text") or ""), names)
    if not body:
        return None
    user = message.get("user")
    profile = message.get("user_profile") or {}
    name = (
        names.get(user or "")
        or profile.get("real_name")
        or message.get("username")
        or user
        or "unknown"
    )
    try:
        ts = float(message.get("ts") or 0)
    except (TypeError, ValueError):
        ts = 0.0
    return ts, name, body


def render(text: str, names: dict[str, str]) -> str:
    """Slack markup to plain text: ``<@U1>`` -> ``@Name``, links to their label."""
    text = _USER.sub(lambda m: "@" + (names.get(m.group(1)) or m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = _SPECIAL.sub(lambda m: m.group(2) or "@" + m.group(1).lstrip("@"), text)
    return html.unescape(text).strip()
