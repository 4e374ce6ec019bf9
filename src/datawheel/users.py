"""Users, API keys and web sessions: who may call the service, and what they may read.

A user has a role (``viewer`` < ``editor`` < ``admin``) and the document groups they may
read; the group ``*`` reads everything. API keys look like ``dw_<id>_<secret>``: the id is
shown in listings, only a SHA-256 of the whole key is stored, and the key is printed once.
Passwords (for the web UI) are stored as scrypt hashes.

Example:
    >>> users = UserDirectory(store.engine)
    >>> key = users.add("alice", role="editor", groups=["sales"])
    >>> users.authenticate(key).role
    'editor'
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from datawheel.errors import AccessError, AuthError, ConfigError, NotFoundError
from datawheel.store import schema as t

ROLES = ("viewer", "editor", "admin")
EVERYTHING = "*"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_KEY = re.compile(r"dw_([0-9a-f]{8})_[A-Za-z0-9_-]{20,}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class User:
    name: str
    role: str
    groups: tuple[str, ...]

    @property
    def reads_everything(self) -> bool:
        return EVERYTHING in self.groups

    @property
    def filter_groups(self) -> list[str] | None:
        """The groups retrieval filters by (None: no filter)."""
        return None if self.reads_everything else list(self.groups)

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str) -> None:
        if not self.has_role(role):
            article = "an" if self.role[0] in "aeiou" else "a"
            raise AccessError(
                f"{self.name} is {article} {self.role}; this needs the {role} role "
                f"(an admin can change it: datawheel users set {self.name} --role {role})"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "groups": list(self.groups)}


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        again = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(again.hex(), digest)


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, checked against when a user has none."""
    return _hash_password(secrets.token_urlsafe(16))


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class UserDirectory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- users ----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        role: str = "viewer",
        groups: Sequence[str] = (),
        password: str | None = None,
    ) -> str:
        """Create a user and return their first API key (shown once, stored hashed)."""
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"user name {name!r} is not allowed; use letters, digits and . _ @ - "
                "(at most 100 characters)"
            )
        _check_role(role)
        groups = _clean_groups(groups)
        with self.engine.begin() as conn:
            if conn.execute(select(t.users.c.name).where(t.users.c.name == name)).first():
                raise ConfigError(
                    f"user {name!r} exists already; add a key with: datawheel users key {name}"
                )
            conn.execute(
                insert(t.users).values(
                    name=name,
                    role=role,
                    groups=groups,
                    password_hash=_hash_password(password) if password else None,
                    created_at=_now(),
                    disabled=False,
                )
            )
            return self._new_key(conn, name)

    def get(self, name: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None or row.disabled:
            raise NotFoundError(f"no user {name!r}; list them with: datawheel users list")
        return User(row.name, row.role, tuple(row.groups))

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            users = conn.execute(select(t.users).order_by(t.users.c.name)).all()
            keys = conn.execute(select(t.api_keys).order_by(t.api_keys.c.created_at)).all()
        out = []
        for u in users:
            out.append(
                {
                    "name": u.name,
                    "role": u.role,
                    "groups": list(u.groups),
                    "password": u.password_hash is not None,
                    "disabled": bool(u.disabled),
                    "created_at": _utc(u.created_at).isoformat(),
                    "keys": [
                        {
                            "id": k.id,
                            "created_at": _utc(k.created_at).isoformat(),
                            "revoked": k.revoked_at is not None,
                            "last_used_at": _utc(k.last_used_at).isoformat()
                            if k.last_used_at
                            else None,
                        }
                        for k in keys
                        if k.user == u.name
                    ],
                }
            )
        return out

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(t.users).where(t.users.c.disabled.is_(False))
                ).scalar()
                or 0
            )

    def update(
        self,
        name: str,
        *,
        role: str | None = None,
        groups: Sequence[str] | None = None,
        password: str | None = None,
    ) -> User:
        self.get(name)
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = _check_role(role)
        if groups is not None:
            values["groups"] = _clean_groups(groups)
        if password is not None:
            if len(password) < 8:
                raise ConfigError("a password needs at least 8 characters")
            values["password_hash"] = _hash_password(password)
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(t.users).where(t.users.c.name == name).values(**values))
                # A new role, new groups or a new password take effect at once: the
                # user's browser sessions end and they sign in again.
                conn.execute(delete(t.sessions).where(t.sessions.c.user == name))
        return self.get(name)

    def disable(self, name: str) -> None:
        """Disable a user: their keys and sessions stop working at once."""
        self.get(name)
        with self.engine.begin() as conn:
            conn.execute(update(t.users).where(t.users.c.name == name).values(disabled=True))
            conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.user == name, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            conn.execute(delete(t.sessions).where(t.sessions.c.user == name))

    # -- API keys -------------------------------------------------------------------------

    def new_key(self, name: str) -> str:
        self.get(name)
        with self.engine.begin() as conn:
            return self._new_key(conn, name)

    def _new_key(self, conn: Any, name: str) -> str:
        key_id = secrets.token_hex(4)
        key = f"dw_{key_id}_{secrets.token_urlsafe(24)}"
        conn.execute(
            insert(t.api_keys).values(
                id=key_id, user=name, secret_hash=_hash_key(key), created_at=_now()
            )
        )
        return key

    def revoke(self, key_id: str) -> None:
        key_id = key_id.removeprefix("dw_").split("_")[0]
        with self.engine.begin() as conn:
            owner = conn.execute(
                select(t.api_keys.c.user).where(
                    t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None)
                )
            ).scalar()
            done = conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            ).rowcount
            if owner is not None:  # a session signed in with this key ends with it
                conn.execute(delete(t.sessions).where(t.sessions.c.user == owner))
        if not done:
            raise NotFoundError(f"no active key {key_id!r}; list keys with: datawheel users list")

    def authenticate(self, key: str) -> User:
        """The user an API key belongs to; AuthError for a missing, wrong or revoked key."""
        match = _KEY.fullmatch(key.strip())
        if not match:
            raise AuthError(
                "not a datawheel API key (they look like dw_1a2b3c4d_...); "
                "an admin creates one with: datawheel users add NAME"
            )
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.api_keys, t.users.c.role, t.users.c.groups, t.users.c.disabled)
                .join(t.users, t.users.c.name == t.api_keys.c.user)
                .where(t.api_keys.c.id == match.group(1))
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash_key(key.strip())):
            raise AuthError("unknown API key; check it, or ask an admin for a new one")
        if row.revoked_at is not None or row.disabled:
            raise AuthError(f"API key {row.id} was revoked; ask an admin for a new one")
        return User(row.user, row.role, tuple(row.groups))

    def touch(self, key: str) -> None:
        """Note when a key was last used (listings show it)."""
        match = _KEY.fullmatch(key.strip())
        if match:
            with self.engine.begin() as conn:
                conn.execute(
                    update(t.api_keys)
                    .where(t.api_keys.c.id == match.group(1))
                    .values(last_used_at=_now())
                )

    # -- passwords and web sessions -------------------------------------------------------

    def check_password(self, name: str, password: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        # The same scrypt work whether the user exists or not, so the time taken does not
        # tell a guesser which names are real.
        stored = row.password_hash if row is not None and row.password_hash else _dummy_hash()
        matches = _check_password(password, stored)
        if row is None or row.disabled or not row.password_hash or not matches:
            raise AuthError("wrong user name or password (or sign in with an API key)")
        return User(row.name, row.role, tuple(row.groups))

    def start_session(self, user: User, hours: float) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.expires_at < now))
            conn.execute(
                insert(t.sessions).values(
                    token_hash=_hash_key(token),
                    user=user.name,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
        return token

    def session_user(self, token: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.sessions.c.expires_at, t.users)
                .join(t.users, t.users.c.name == t.sessions.c.user)
                .where(t.sessions.c.token_hash == _hash_key(token))
            ).first()
        if row is None or row.disabled or _utc(row.expires_at) < _now():
            raise AuthError("your session has ended; sign in again")
        return User(row.name, row.role, tuple(row.groups))

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == _hash_key(token)))


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    return role


def _clean_groups(groups: Sequence[str]) -> list[str]:
    out = sorted({g.strip() for g in groups if g.strip()})
    if not out:
        raise ConfigError(
            "give the user at least one group, e.g. --groups sales,support "
            "(or --groups '*' to read every document)"
        )
    return out
