"""The JSON API in process: every route, its roles, the error shape and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _kb import QUESTIONS, Keys, bearer
from fastapi.testclient import TestClient

from datawheel.server.app import create_app
from datawheel.workspace import Workspace


@pytest.fixture()
def client(kb: tuple[Workspace, Keys]) -> Iterator[tuple[TestClient, Workspace, Keys]]:
    ws, keys = kb
    with TestClient(create_app(ws)) as c:
        yield c, ws, keys


def _error(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == status and body["error"]
    return str(body["error"])


def test_health_needs_no_key_and_counts_documents(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, _ = client
    body = c.get("/api/health").json()
    assert body["ok"] is True and body["documents"] == ws.store.counts()["documents"] == 13


def test_keys_missing_invalid_revoked_and_disabled_get_401(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    ask = {"question": "How long do free trials last?"}
    assert "missing API key" in _error(c.post("/api/ask", json=ask), 401)
    assert "not a datawheel API key" in _error(
        c.post("/api/ask", json=ask, headers=bearer("hunter2")), 401
    )
    forged = keys.alice[:-4] + ("AAAA" if not keys.alice.endswith("AAAA") else "BBBB")
    assert "unknown API key" in _error(c.post("/api/ask", json=ask, headers=bearer(forged)), 401)
    assert "Bearer" in _error(
        c.post("/api/ask", json=ask, headers={"Authorization": keys.alice}), 401
    )
    ws.users.revoke(keys.alice)
    assert "revoked" in _error(c.post("/api/ask", json=ask, headers=bearer(keys.alice)), 401)
    assert c.post("/api/ask", json=ask, headers=bearer(keys.carol)).status_code == 200
    ws.users.disable("carol")
    _error(c.post("/api/ask", json=ask, headers=bearer(keys.carol)), 401)


def test_roles_viewer_editor_admin(client) -> None:  # type: ignore[no-untyped-def]
    c, _, keys = client
    assert "needs the admin role" in _error(c.post("/api/improve", headers=bearer(keys.alice)), 403)
    assert "needs the editor role" in _error(c.get("/api/inventory", headers=bearer(keys.bob)), 403)
    _error(c.get("/api/users", headers=bearer(keys.bob)), 403)
    _error(c.post("/api/rollback", json={}, headers=bearer(keys.bob)), 403)
    listed = c.get("/api/users", headers=bearer(keys.admin)).json()["users"]
    assert {u["name"]: u["role"] for u in listed} == {
        "alice": "editor",
        "bob": "viewer",
        "carol": "viewer",
        "root": "admin",
    }
    assert all("secret" not in str(u) and "dw_" not in str(u) for u in listed)


def test_ask_then_feedback_is_stored_with_the_callers_name(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    answer = c.post(
        "/api/ask", json={"question": QUESTIONS["sales"][4]}, headers=bearer(keys.alice)
    ).json()
    assert "14 days" in answer["text"] and answer["sources"][0]["title"] == "Free trials"
    voted = c.post(
        "/api/feedback",
        json={"interaction_id": answer["id"], "vote": "down", "comment": "too short"},
        headers=bearer(keys.alice),
    ).json()
    assert voted["ok"] is True
    stored = ws.interactions.feedback([answer["id"]])
    assert [(f.user, f.vote, f.comment) for f in stored] == [("alice", "down", "too short")]
    one = c.get(f"/api/interactions/{answer['id']}", headers=bearer(keys.alice)).json()
    assert one["user"] == "alice" and one["feedback"][0]["vote"] == "down"


def test_viewers_see_only_their_own_interactions(client) -> None:  # type: ignore[no-untyped-def]
    c, _, keys = client
    mine = c.post("/api/ask", json={"question": QUESTIONS["hr"][0]}, headers=bearer(keys.bob))
    theirs = c.post("/api/ask", json={"question": QUESTIONS["hr"][1]}, headers=bearer(keys.carol))
    listed = c.get("/api/interactions", headers=bearer(keys.bob)).json()["interactions"]
    assert [i["id"] for i in listed] == [mine.json()["id"]]
    _error(c.get(f"/api/interactions/{theirs.json()['id']}", headers=bearer(keys.bob)), 404)
    everyone = c.get("/api/interactions", headers=bearer(keys.admin)).json()["interactions"]
    assert len(everyone) == 2
    # an editor sees other people's only where they may read every source shown (alice: sales)
    assert c.get("/api/interactions", headers=bearer(keys.alice)).json()["interactions"] == []


def test_bad_input_gets_one_clear_error(client) -> None:  # type: ignore[no-untyped-def]
    c, _, keys = client
    h = bearer(keys.alice)
    assert "question" in _error(c.post("/api/ask", json={}, headers=h), 422)
    assert "vote" in _error(
        c.post("/api/feedback", json={"interaction_id": "abc123", "vote": "meh"}, headers=h), 422
    )
    bad_json = c.post(
        "/api/ask", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    _error(bad_json, 422)
    unknown = c.post(
        "/api/feedback", json={"interaction_id": "abcdef123456", "vote": "up"}, headers=h
    )
    assert "no answer with this id was shown to you" in _error(unknown, 404)
    assert "not found" in _error(c.get("/api/nothing-here", headers=h), 404).lower()


def test_oversized_body_gets_413(kb: tuple[Workspace, Keys]) -> None:
    ws, keys = kb
    ws.config.server.max_request_mb = 0.01  # about 10 KB
    with TestClient(create_app(ws, warm=False)) as c:
        big = {"question": "x" * 20_000}
        assert "limit" in _error(c.post("/api/ask", json=big, headers=bearer(keys.alice)), 413)
        files = {"files": ("big.md", b"# Big\n\n" + b"word " * 5000, "text/markdown")}
        _error(c.post("/api/ingest", files=files, headers=bearer(keys.alice)), 413)


def test_rate_limit_per_key(kb: tuple[Workspace, Keys]) -> None:
    ws, keys = kb
    ws.config.server.rate_limit = "3/minute"
    with TestClient(create_app(ws, warm=False)) as c:
        codes = [c.get("/api/me", headers=bearer(keys.bob)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert c.get("/api/me", headers=bearer(keys.carol)).status_code == 200  # own budget


def test_upload_ingests_and_refuses_path_traversal(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    h = bearer(keys.alice)
    files = [("files", ("../../escape.md", b"# Escape\n\nnope", "text/markdown"))]
    assert "not a plain file name" in _error(c.post("/api/ingest", files=files, headers=h), 400)
    assert not any(ws.path.parent.rglob("escape.md"))
    assert not (ws.path / "uploads").exists() or not any((ws.path / "uploads").rglob("*.md"))
    files = [
        (
            "files",
            (
                "onboarding.md",
                b"# Onboarding\n\nNew hires get a laptop on day one.",
                "text/markdown",
            ),
        )
    ]
    report = c.post("/api/ingest", files=files, data={"groups": "sales"}, headers=h).json()
    assert report["added"] == 1 and report["failed"] == []
    hits = c.post("/api/search", json={"query": "laptop day one"}, headers=h).json()["hits"]
    assert hits[0]["title"] == "Onboarding"
    _error(c.post("/api/ingest", files=files, headers=bearer(keys.bob)), 403)


def test_models_routes(client) -> None:  # type: ignore[no-untyped-def]
    c, _, keys = client
    h = bearer(keys.admin)
    assert c.get("/api/versions", headers=h).json() == {"versions": []}
    assert "nothing to roll back" in _error(c.post("/api/rollback", json={}, headers=h), 400)
    assert c.get("/api/ab", headers=h).json()["decision"] == "none"
    assert "no A/B test is running" in _error(c.post("/api/ab/decide", json={}, headers=h), 400)
    assert "no feedback" in _error(c.post("/api/improve", headers=h), 400).lower()
    report = c.get("/api/report", headers=bearer(keys.bob)).json()
    assert "satisfaction" in str(report)


def test_users_created_through_the_api_can_call_it(client) -> None:  # type: ignore[no-untyped-def]
    c, _, keys = client
    made = c.post(
        "/api/users",
        json={"name": "dave", "role": "viewer", "groups": ["hr"]},
        headers=bearer(keys.admin),
    ).json()
    assert made["user"] == {"name": "dave", "role": "viewer", "groups": ["hr"]}
    me = c.get("/api/me", headers=bearer(made["key"])).json()
    assert me["name"] == "dave"
    key_id = made["key"].split("_")[1]
    assert c.delete(f"/api/keys/{key_id}", headers=bearer(keys.admin)).json()["ok"] is True
    _error(c.get("/api/me", headers=bearer(made["key"])), 401)
    assert "exists already" in _error(
        c.post("/api/users", json={"name": "dave"}, headers=bearer(keys.admin)), 400
    )


def test_session_cookie_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = client
    assert "wrong user name or password" in _error(
        c.post("/api/session", json={"name": "bob", "password": "nope"}), 401
    )
    signed = c.post("/api/session", json={"name": "bob", "password": "bob-pass1"})
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/api/me").json()["name"] == "bob"  # the client keeps the cookie
    c.delete("/api/session")
    _error(c.get("/api/me"), 401)


def test_jobs_runs_a_scheduled_job_and_records_it(kb: tuple[Workspace, Keys]) -> None:
    ws, keys = kb
    with TestClient(create_app(ws, scheduler=True, warm=False)) as c:
        svc = c.app.state.service  # type: ignore[attr-defined]
        planned = {
            j["job"] for j in c.get("/api/jobs", headers=bearer(keys.bob)).json()["scheduled"]
        }
        assert planned == {"monitor", "report", "improve", "ab"}
        assert svc.scheduler.run("report")["status"] == "finished"
        assert svc.scheduler.run("improve")["status"] == "failed"  # no feedback yet: recorded
        runs = c.get("/api/jobs", headers=bearer(keys.bob)).json()["runs"]
    jobs = [r for r in runs if r["kind"].startswith("job:")]
    assert [(r["kind"], r["status"]) for r in jobs] == [
        ("job:improve", "failed"),
        ("job:report", "finished"),
    ]
    assert "no feedback yet" in jobs[0]["counts"]["error"]


def test_a_worker_without_the_scheduler_shows_the_same_plan(kb: tuple[Workspace, Keys]) -> None:
    ws, keys = kb
    with TestClient(create_app(ws, scheduler=True, warm=False)) as c:
        runner = c.get("/api/jobs", headers=bearer(keys.bob)).json()
    with TestClient(create_app(ws, warm=False, jobs_elsewhere=True)) as c:
        peer = c.get("/api/jobs", headers=bearer(keys.bob)).json()
    with TestClient(create_app(ws, warm=False)) as c:
        alone = c.get("/api/jobs", headers=bearer(keys.bob)).json()
    assert (runner["runs_in"], peer["runs_in"], alone["runs_in"]) == (
        "this worker",
        "another worker",
        None,
    )
    plan = [(j["job"], j["schedule"]) for j in runner["scheduled"]]
    assert [(j["job"], j["schedule"]) for j in peer["scheduled"]] == plan and len(plan) == 4
    for mine, theirs in zip(runner["scheduled"], peer["scheduled"], strict=True):
        gap = datetime.fromisoformat(theirs["next_run"]) - datetime.fromisoformat(mine["next_run"])
        assert abs(gap.total_seconds()) <= 60  # the same cron time (a minute may pass between)
        assert datetime.fromisoformat(theirs["next_run"]) > datetime.now(UTC)
    assert alone["scheduled"] == []
