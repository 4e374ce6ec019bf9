"""Users, API keys and sessions on a real SQLite store, and the users CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from datawheel.cli.main import app
from datawheel.errors import AccessError, AuthError, ConfigError, NotFoundError
from datawheel.store import schema as t
from datawheel.workspace import Workspace


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "kb")


def test_keys_are_stored_hashed_and_shown_once(ws: Workspace) -> None:
    key = ws.add_user("alice", role="editor", groups=["sales", "support"])
    assert ws.users.authenticate(key).to_dict() == {
        "name": "alice",
        "role": "editor",
        "groups": ["sales", "support"],
    }
    dump = "\n".join(sqlite3.connect(ws.path / "datawheel.db").iterdump())
    secret = key.split("_", 2)[2]
    assert secret not in dump and key not in dump
    assert secret not in json.dumps(ws.users.list())


def test_groups_default_to_the_config_and_roles_are_checked(ws: Workspace) -> None:
    ws.add_user("bob")
    bob = ws.users.get("bob")
    assert bob.groups == ("everyone",) and bob.role == "viewer"
    with pytest.raises(AccessError, match="needs the admin role"):
        bob.require("admin")
    with pytest.raises(ConfigError, match="valid roles: viewer, editor, admin"):
        ws.add_user("carl", role="owner")
    with pytest.raises(ConfigError, match="not allowed"):
        ws.add_user("../etc")
    with pytest.raises(ConfigError, match="exists already"):
        ws.add_user("bob")


def test_everything_group_reads_without_a_filter(ws: Workspace) -> None:
    ws.add_user("root", role="admin", groups=["*"])
    root = ws.users.get("root")
    assert root.filter_groups is None and root.has_role("editor")


def test_revoked_and_disabled_keys_fail(ws: Workspace) -> None:
    first = ws.add_user("dana")
    second = ws.users.new_key("dana")
    ws.users.revoke(first.split("_")[1])
    with pytest.raises(AuthError, match="revoked"):
        ws.users.authenticate(first)
    assert ws.users.authenticate(second).name == "dana"
    ws.users.disable("dana")
    with pytest.raises(AuthError):
        ws.users.authenticate(second)
    with pytest.raises(NotFoundError):
        ws.users.revoke("deadbeef")


def test_passwords_and_sessions(ws: Workspace) -> None:
    ws.add_user("erin", password="long enough")
    with pytest.raises(AuthError, match="wrong user name or password"):
        ws.users.check_password("erin", "wrong")
    user = ws.users.check_password("erin", "long enough")
    token = ws.users.start_session(user, hours=1)
    assert ws.users.session_user(token).name == "erin"
    with ws.store.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(minutes=1)
        conn.execute(update(t.sessions).values(expires_at=past))
    with pytest.raises(AuthError, match="session has ended"):
        ws.users.session_user(token)
    with pytest.raises(ConfigError, match="at least 8"):
        ws.users.update("erin", password="short")


def test_users_cli(ws: Workspace) -> None:
    path = str(ws.path)
    ws.close()
    runner = CliRunner()
    made = runner.invoke(
        app, ["users", "add", "alice", "--role", "editor", "--groups", "sales,support", "-w", path]
    )
    assert made.exit_code == 0, made.output
    key = next(w for w in made.output.split() if w.startswith("dw_"))
    listed = runner.invoke(app, ["users", "list", "-w", path, "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["groups"]) for r in rows] == [
        ("alice", "editor", ["sales", "support"])
    ]
    assert key not in listed.stdout
    changed = runner.invoke(app, ["users", "set", "alice", "--role", "admin", "-w", path])
    assert changed.exit_code == 0 and "alice: admin" in changed.output
    bad = runner.invoke(app, ["users", "add", "zed", "--role", "boss", "-w", path])
    assert bad.exit_code == 2 and "valid roles" in bad.output
    revoked = runner.invoke(app, ["users", "revoke", key.split("_")[1], "-w", path])
    assert revoked.exit_code == 0
    with Workspace.open(path) as again, pytest.raises(AuthError):
        again.users.authenticate(key)
