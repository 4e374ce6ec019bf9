"""An answer never cites a document the caller may not read: ask, search, chat completions,
curated answers and the learned ranker, with two users whose groups overlap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _kb import QUESTIONS, Keys, bearer
from fastapi.testclient import TestClient

from datawheel.server.app import create_app
from datawheel.workspace import Workspace

EVERY_QUESTION = QUESTIONS["hr"] + QUESTIONS["sales"]


@pytest.fixture()
def client(kb: tuple[Workspace, Keys]) -> Iterator[tuple[TestClient, Workspace, Keys]]:
    ws, keys = kb
    with TestClient(create_app(ws)) as c:
        yield c, ws, keys


def _doc_groups(ws: Workspace) -> dict[str, set[str]]:
    return {d["id"]: set(d["groups"]) for d in ws.store.documents(limit=1000)}


def _readable(groups: dict[str, set[str]], doc_ids: list[str], user_groups: set[str]) -> bool:
    return all(groups[d] & user_groups for d in doc_ids)


def _check_everywhere(c: TestClient, ws: Workspace, keys: Keys) -> dict[str, int]:
    """Ask every question as every user through all three routes; count sources seen."""
    groups = _doc_groups(ws)
    seen = {"alice": 0, "bob": 0, "carol": 0}
    for user, key, mine in [
        ("alice", keys.alice, {"sales"}),
        ("bob", keys.bob, {"hr"}),
        ("carol", keys.carol, {"hr", "sales"}),
    ]:
        h = bearer(key)
        for question in EVERY_QUESTION:
            answer = c.post("/api/ask", json={"question": question}, headers=h).json()
            docs = [s["doc_id"] for s in answer["sources"]]
            assert _readable(groups, docs, mine), (user, question, answer["sources"])
            hits = c.post("/api/search", json={"query": question, "k": 13}, headers=h).json()
            assert _readable(groups, [x["doc_id"] for x in hits["hits"]], mine)
            chat = c.post(
                "/v1/chat/completions",
                json={"model": "datawheel", "messages": [{"role": "user", "content": question}]},
                headers=h,
            ).json()
            chat_docs = [s["doc_id"] for s in chat["datawheel"]["sources"]]
            assert _readable(groups, chat_docs, mine)
            seen[user] += len(docs)
    return seen


def test_overlapping_groups_see_exactly_their_documents(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    seen = _check_everywhere(c, ws, keys)
    assert all(n > 0 for n in seen.values())
    # carol reads both groups: search returns all 13 documents to her, 7 to each of the others
    for key, expected in [(keys.alice, 7), (keys.bob, 7), (keys.carol, 13), (keys.admin, 13)]:
        hits = c.post("/api/search", json={"query": "policy", "k": 50}, headers=bearer(key))
        assert len({h["doc_id"] for h in hits.json()["hits"]}) == expected


def test_a_curated_answer_is_only_given_to_those_who_may_read_its_sources(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    question = QUESTIONS["hr"][0]
    first = c.post("/api/ask", json={"question": question}, headers=bearer(keys.bob)).json()
    c.post(
        "/api/feedback",
        json={
            "interaction_id": first["id"],
            "vote": "down",
            "correction": "Sixteen weeks, paid, within a year of the birth or adoption.",
            "helpful": [first["sources"][0]["chunk_id"]],
        },
        headers=bearer(keys.bob),
    )
    (pending,) = c.get("/api/corrections", headers=bearer(keys.admin)).json()["corrections"]
    approved = c.post(f"/api/corrections/{pending['id']}/approve", headers=bearer(keys.admin))
    assert approved.json()["correction"]["status"] == "approved"
    report = c.post("/api/improve", headers=bearer(keys.admin)).json()
    assert report["promoted"], report
    for key, may_read in [(keys.bob, True), (keys.carol, True), (keys.alice, False)]:
        again = c.post("/api/ask", json={"question": question}, headers=bearer(key)).json()
        assert (again["answered_from"] == "memory") is may_read, again
        if not may_read:
            assert "Sixteen weeks" not in again["text"]
            assert all(s["title"] != "Parental leave" for s in again["sources"])


def test_the_learned_ranker_keeps_the_group_filter(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    for question in EVERY_QUESTION:
        answer = c.post("/api/ask", json={"question": question}, headers=bearer(keys.carol))
        body = answer.json()
        c.post(
            "/api/feedback",
            json={
                "interaction_id": body["id"],
                "vote": "up",
                "helpful": [body["sources"][0]["chunk_id"]],
            },
            headers=bearer(keys.carol),
        )
    report = ws.improve(only=["ranker"], margin=0.0, finetune=False)
    assert report.promoted, report.to_dict()
    assert ws.model.ranker is not None
    _check_everywhere(c, ws, keys)


def test_a_source_marked_helpful_leads_only_for_those_who_may_read_it(client) -> None:  # type: ignore[no-untyped-def]
    c, ws, keys = client
    groups = _doc_groups(ws)
    question = QUESTIONS["hr"][0]
    first = c.post("/api/ask", json={"question": question}, headers=bearer(keys.carol)).json()
    marked = first["sources"][-1]  # the last one shown: an HR document
    assert groups[marked["doc_id"]] == {"hr"}, marked
    c.post(
        "/api/feedback",
        json={"interaction_id": first["id"], "vote": "up", "helpful": [marked["chunk_id"]]},
        headers=bearer(keys.carol),
    )
    assert c.post("/api/improve", headers=bearer(keys.admin)).json()["promoted"]
    for key, mine in [(keys.bob, {"hr"}), (keys.alice, {"sales"})]:
        again = c.post("/api/ask", json={"question": question}, headers=bearer(key)).json()
        docs = [s["doc_id"] for s in again["sources"]]
        assert _readable(groups, docs, mine), again["sources"]
        leads = again["sources"][0]["chunk_id"] == marked["chunk_id"]
        assert leads is ("hr" in mine), again["sources"]
