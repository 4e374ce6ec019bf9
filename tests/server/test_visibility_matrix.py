"""Who sees what: every route of the app, for every role and group, against a real server.

The routes are read from the app itself: a route added without a line in RULES fails
``test_every_route_has_a_visibility_rule``, so nothing new ships without a rule.

Kinds:
- ``interaction``: returns people's questions and answers. bob's secret question and its
  answer reach only those the visibility rule allows: bob, an admin who reads everything,
  and erin (an editor in hr, who may read every document his answer shows).
- ``document``: returns document text for a query. The secret reaches only callers who
  may read the hr document (bob, carol, erin, root); nobody gets bob's question.
- ``aggregate`` and ``none``: counts and settings; neither the secret nor bob's question.
- ``action``: changes state and answers with the caller's own result; covered by the
  security and API tests, not called here.
"""

from __future__ import annotations

from typing import Any

import httpx
from test_security import BOBS_QUESTION, SECRET, World, world  # noqa: F401  (the fixture)

from datawheel.server.app import create_app

USERS = ["root", "alice", "bob", "carol", "dave", "erin"]
READS_BOBS_CONTENT = {"bob", "root", "erin"}
READS_HR = {"bob", "carol", "erin", "root"}
#: Document routes are asked this, not bob's words, so that a caller's own log never holds
#: bob's question.
DOC_QUESTION = "Tell me the Nightingale code phrase of the hr audit"

RULES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "none",
    ("GET", "/docs"): "none",
    ("GET", "/docs/oauth2-redirect"): "none",
    ("GET", "/redoc"): "none",
    ("GET", "/api/health"): "aggregate",
    ("POST", "/api/session"): "action",
    ("DELETE", "/api/session"): "action",
    ("GET", "/api/me"): "none",
    ("POST", "/api/ask"): "document",
    ("POST", "/api/search"): "document",
    ("POST", "/api/feedback"): "action",
    ("GET", "/api/interactions"): "interaction",
    ("GET", "/api/interactions/{interaction_id}"): "interaction",
    ("GET", "/api/report"): "interaction",
    ("GET", "/api/corrections"): "interaction",
    ("POST", "/api/corrections/{item_id}/{decision}"): "action",
    ("GET", "/api/audit"): "none",  # ids only, admins only
    ("GET", "/api/dashboard"): "aggregate",
    ("POST", "/api/ingest"): "action",
    ("POST", "/api/improve"): "action",
    ("GET", "/api/versions"): "aggregate",
    ("POST", "/api/rollback"): "action",
    ("GET", "/api/ab"): "aggregate",
    ("POST", "/api/ab/decide"): "action",
    ("GET", "/api/jobs"): "aggregate",
    ("GET", "/api/roi"): "aggregate",
    ("GET", "/api/sources"): "none",
    ("POST", "/api/sources/{name}/clean"): "action",
    ("GET", "/api/sources/{name}/quarantine"): "none",  # table rows, editors only
    ("GET", "/api/inventory"): "none",
    ("POST", "/api/monitor"): "action",
    ("POST", "/api/leads/score"): "action",
    ("POST", "/api/forecast"): "action",
    ("POST", "/api/outcomes/{app}"): "action",
    ("GET", "/api/users"): "none",
    ("POST", "/api/users"): "action",
    ("DELETE", "/api/keys/{key_id}"): "action",
    ("GET", "/v1/models"): "none",
    ("POST", "/v1/chat/completions"): "document",
    ("GET", "/"): "none",
    ("GET", "/login"): "none",
    ("GET", "/logout"): "action",
    ("GET", "/ask"): "none",
    ("POST", "/ask"): "document",
    ("GET", "/passage/{chunk_id}"): "document",
    ("GET", "/dashboard"): "aggregate",
    ("GET", "/data"): "none",
    ("GET", "/models"): "aggregate",
    ("GET", "/review"): "interaction",
    ("GET", "/admin/users"): "none",
    ("GET", "/static/plotly.min.js"): "none",
}


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers too (HEAD aside)."""

    def walk(routes: Any) -> Any:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's included router
                yield from walk(route.original_router.routes)
            elif hasattr(route, "routes") and not hasattr(route, "methods"):
                if getattr(route, "path", "") != "/static":  # files, not user content
                    yield from walk(route.routes)
            elif getattr(route, "methods", None):
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, route.path

    return sorted(set(walk(app.routes)))


def test_every_route_has_a_visibility_rule(world: World) -> None:  # noqa: F811
    routes = app_routes(create_app(world.ws, warm=False))

    missing = [r for r in routes if r not in RULES]
    assert not missing, f"add these routes to RULES with their visibility kind: {missing}"
    assert not [r for r in RULES if r not in routes], "RULES names routes the app lacks"


def _call(w: World, who: str, method: str, path: str) -> httpx.Response:
    secret_chunk = next(s["chunk_id"] for s in w.bobs["sources"] if s["cited"] and s["title"] != "")
    filled = (
        path.replace("{interaction_id}", w.bobs["id"])
        .replace("{chunk_id}", secret_chunk)
        .replace("{name}", "crm")
    )
    if method == "GET":
        return w.get(who, filled)
    bodies: dict[str, dict[str, Any]] = {
        "/api/ask": {"json": {"question": DOC_QUESTION}},
        "/api/search": {"json": {"query": DOC_QUESTION, "k": 20}},
        "/v1/chat/completions": {
            "json": {"model": "datawheel", "messages": [{"role": "user", "content": DOC_QUESTION}]}
        },
        "/ask": {"data": {"question": DOC_QUESTION}},
    }
    return w.post(who, filled, **bodies[path])


def test_who_sees_what_on_every_route(world: World) -> None:  # noqa: F811
    # bob's 👎 with a correction puts his question in the review queue too
    world.post(
        "bob",
        "/api/feedback",
        json={"interaction_id": world.bobs["id"], "vote": "down", "correction": "Ask Kim."},
    )
    checked = 0
    for who in USERS:
        for (method, path), kind in RULES.items():
            if kind == "action":
                continue
            response = _call(world, who, method, path)
            text = response.text
            where = f"{method} {path} as {who} ({response.status_code})"
            if kind == "interaction":  # others may ask about the secret: bob's words count
                bobs = BOBS_QUESTION in text or world.bobs["id"] in text
                assert bobs <= (who in READS_BOBS_CONTENT), where
                if who == "root":  # the route really returns the content to someone
                    assert BOBS_QUESTION in text, where
            elif kind == "document":
                assert (SECRET in text) <= (who in READS_HR), where
                if who == "root":
                    assert SECRET in text, where
                assert BOBS_QUESTION not in text, where
            else:
                assert SECRET not in text and BOBS_QUESTION not in text, where
            checked += 1
    assert checked == len(USERS) * sum(1 for kind in RULES.values() if kind != "action")
