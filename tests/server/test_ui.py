"""Tests for datawheel.server.ui in process: every page per role, sign-in, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ui_kb import PASSWORDS, Kb, build, open_copy

from datawheel.server.app import create_app

PAGES = ["/ask", "/dashboard", "/data", "/models", "/admin/users"]
# page -> the lowest role that may open it
NEEDS = {
    "/ask": "viewer",
    "/dashboard": "viewer",
    "/data": "editor",
    "/models": "editor",
    "/admin/users": "admin",
}
RANK = {"vic": 0, "erin": 1, "root": 2}
LEVEL = {"viewer": 0, "editor": 1, "admin": 2}


@pytest.fixture(scope="module")
def ui_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("ui"))


@pytest.fixture()
def kb(ui_template: Path, tmp_path: Path) -> Iterator[Kb]:
    kb = open_copy(ui_template, tmp_path / "kb")
    try:
        yield kb
    finally:
        kb.ws.close()


@pytest.fixture()
def client(kb: Kb) -> Iterator[TestClient]:
    with TestClient(create_app(kb.ws, warm=False)) as client:
        yield client


def sign_in(client: TestClient, name: str) -> None:
    response = client.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text


def ask(client: TestClient, question: str) -> str:
    response = client.post("/ask", data={"question": question})
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("path", ["/", *PAGES, "/passage/abc"])
def test_a_page_without_a_session_redirects_to_login(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)

    assert response.status_code == 303
    expected = "/login" if path == "/" else f"/login?next={path}"
    assert response.headers["location"] == expected


def test_an_ended_session_redirects_to_login_and_back_with_the_query(
    client: TestClient,
) -> None:
    client.cookies.set("datawheel_session", "not-a-session")

    response = client.get("/data?source=orders", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (
        303,
        "/login?next=/data%3Fsource%3Dorders",
    )
    login = client.get(response.headers["location"])
    assert 'data-next="/data?source=orders"' in login.text


@pytest.mark.parametrize("name", ["vic", "erin", "root"])
def test_each_page_answers_per_role(client: TestClient, name: str) -> None:
    sign_in(client, name)
    codes = {path: client.get(path).status_code for path in PAGES}

    expected = {p: 200 if RANK[name] >= LEVEL[role] else 403 for p, role in NEEDS.items()}
    assert codes == expected
    assert client.get("/", follow_redirects=False).headers["location"] == "/ask"


def test_a_forbidden_page_is_an_html_403_naming_the_role(client: TestClient) -> None:
    sign_in(client, "vic")

    response = client.get("/admin/users", follow_redirects=False)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "vic is signed in as viewer; this page needs the admin role." in response.text
    assert 'id="who">vic <span class="role">viewer</span>' in response.text


def test_the_nav_shows_the_user_and_only_the_pages_of_their_role(client: TestClient) -> None:
    sign_in(client, "erin")
    page = client.get("/ask").text

    assert 'id="who">erin <span class="role">editor</span>' in page
    assert 'href="/data"' in page and 'href="/models"' in page
    assert 'href="/admin/users"' not in page


def test_login_page_posts_to_the_api_and_only_goes_back_to_local_paths(
    client: TestClient,
) -> None:
    page = client.get("/login?next=/dashboard")
    assert page.status_code == 200
    assert 'data-next="/dashboard"' in page.text
    assert 'data-next="/ask"' in client.get("/login?next=//evil.example/x").text
    assert 'data-next="/ask"' in client.get("/login?next=https://evil.example").text


def test_sign_in_with_a_key_then_sign_out(client: TestClient, kb: Kb) -> None:
    assert client.post("/api/session", json={"key": kb.keys["erin"]}).status_code == 200
    assert client.get("/data").status_code == 200

    response = client.get("/logout", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/data", follow_redirects=False).status_code == 303


def test_ask_shows_the_answer_with_citation_links_to_the_passage(client: TestClient) -> None:
    sign_in(client, "vic")

    page = ask(client, "How many weeks of parental leave do employees get?")

    assert "Employees get 16 weeks of paid parental leave" in page
    links = re.findall(r'<a class="cite" href="/passage/([0-9a-f]+)"', page)
    assert links, page
    passage = client.get(f"/passage/{links[0]}")
    assert passage.status_code == 200
    assert '<h1 id="passage-title">Parental leave</h1>' in passage.text
    assert "within the first year after the birth or adoption of a child." in passage.text
    assert re.search(r'data-interaction="[0-9a-f]{32}"', page)


def test_the_ask_page_carries_a_conversation(client: TestClient) -> None:
    sign_in(client, "vic")
    first = ask(client, "How many weeks of parental leave do employees get?")
    conversation = re.search(r'name="conversation" id="conversation" value="([0-9a-f]{32})"', first)
    assert conversation, first
    response = client.post(
        "/ask", data={"question": "and when can it be taken?", "conversation": conversation[1]}
    )
    assert response.status_code == 200
    page = response.text
    assert 'id="earlier-turns"' in page and "How many weeks of parental leave" in page
    assert "read as a follow-up: How many weeks of parental leave do employees get? when" in page
    assert f'value="{conversation[1]}"' in page
    assert "New conversation" in page


def test_ask_says_when_an_earlier_question_answered_it(client: TestClient, kb: Kb) -> None:
    """After a 👍 with a source marked helpful and improve, the same question says which
    earlier question its sources come from (or its curated answer)."""
    sign_in(client, "root")
    question = "How many weeks of parental leave do employees get?"
    first = ask(client, question)
    assert 'id="provenance"' not in first
    interaction = re.search(r'data-interaction="([0-9a-f]{32})"', first)
    assert interaction is not None
    answer = kb.ws.interactions.get(interaction.group(1))
    helpful = [s["chunk_id"] for s in answer.sources]
    vote = {"interaction_id": interaction.group(1), "vote": "up", "helpful": helpful[:1]}
    assert client.post("/api/feedback", json=vote).status_code == 200
    assert client.post("/api/improve").json()["promoted"]
    again = ask(client, question)
    assert re.search(r'id="provenance">(answered from a curated answer|led by the sources)', again)
    assert re.search(rf"similar question: {re.escape(question)}( \(written by [^)]+\))?</p>", again)


def test_a_passage_outside_the_callers_groups_is_not_found(client: TestClient, kb: Kb) -> None:
    sign_in(client, "vic")
    hidden = client.get(f"/passage/{kb.secret_chunk}")
    assert hidden.status_code == 404
    assert "Budget" not in hidden.text
    assert "no passage" in hidden.text

    sign_in(client, "root")
    shown = client.get(f"/passage/{kb.secret_chunk}")
    assert shown.status_code == 200
    assert "confidential budget for 2027" in shown.text


def test_html_in_a_question_and_in_a_document_is_escaped(client: TestClient) -> None:
    sign_in(client, "vic")

    page = ask(client, "How do I embed the feedback widget? <script>alert(1)</script>")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the question, in the box and above
    assert "<script>alert(1)" not in page
    assert "Paste &lt;script&gt;alert(&#39;doc&#39;)&lt;/script&gt; into the page" in page
    assert "<script>alert('doc')" not in page and "<b>bold</b>" not in page
    chunk = re.search(r'<a class="cite" href="/passage/([0-9a-f]+)"', page)
    assert chunk is not None
    passage = client.get(f"/passage/{chunk.group(1)}").text
    assert "&lt;b&gt;bold&lt;/b&gt;" in passage and "<b>bold</b>" not in passage


def test_an_empty_question_shows_the_error_on_the_page(client: TestClient) -> None:
    sign_in(client, "vic")

    response = client.post("/ask", data={"question": "   "})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "the question is empty" in response.text


def test_dashboard_shows_satisfaction_before_and_after_a_vote(client: TestClient) -> None:
    sign_in(client, "vic")
    page = ask(client, "How many weeks of parental leave do employees get?")
    interaction = re.search(r'data-interaction="([0-9a-f]{32})"', page)
    assert interaction is not None

    before = client.get("/dashboard").text
    assert 'id="satisfaction">no votes<' in before
    assert 'id="questions">1<' in before

    vote = {"interaction_id": interaction.group(1), "vote": "up", "comment": "clear"}
    assert client.post("/api/feedback", json=vote).status_code == 200

    after = client.get("/dashboard").text
    assert 'id="satisfaction">100%<' in after
    assert 'id="votes">1 👍 / 0 👎<' in after
    assert 'id="answer-rate">100%<' in after
    assert 'id="active-users">1<' in after
    numbers = client.get("/api/dashboard").json()  # the same numbers, as JSON
    assert (numbers["totals"]["up"], numbers["totals"]["satisfaction"]) == (1, 1.0)


def test_dashboard_charts_use_the_local_plotly_bundle(client: TestClient) -> None:
    sign_in(client, "vic")
    ask(client, "How are travel expenses reimbursed?")

    page = client.get("/dashboard").text

    assert '<script src="/static/plotly.min.js"></script>' in page
    assert page.count('class="plotly-graph-div chart-plot"') >= 4  # questions, rate, ...
    assert "<script>" not in page and 'type="text/javascript"' not in page  # no inline code
    assert "cdn" not in page.lower()
    assert "roi.minutes_saved_per_answer" in page  # an assumption next to its number
    bundle = client.get("/static/plotly.min.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 1_000_000
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200


def test_data_page_shows_inventory_checks_and_the_quarantine_escaped(client: TestClient) -> None:
    sign_in(client, "erin")

    page = client.get("/data?source=orders").text

    assert '<section id="inventory">' in page and "knowledge base" in page
    assert '<section id="checks">' in page and "No checks yet" not in page
    assert 'href="/data?source=orders#quarantine"' in page
    assert "rule amount &gt; 0" in page  # the reason of the held-back row
    assert "&lt;img src=x onerror=alert(3)&gt;" in page
    assert "<img src=x" not in page


def test_models_page_shows_actions_to_admins_only(client: TestClient, kb: Kb) -> None:
    from datawheel.improve import ab
    from datawheel.improve.registry import Registry

    Registry(kb.ws.store).record(
        "v1",
        status="challenger",
        parent=None,
        settings={},
        metrics={"holdout_ndcg@10": 0.8123, "before": 0.7, "questions": 12},
        artifacts="models/v1",
        note="ranker",
    )
    ab.start(kb.ws, None, "v1")

    sign_in(client, "erin")
    editor = client.get("/models").text
    assert "0.8123" in editor and "challenger <strong>v1</strong>" in editor
    assert 'class="act"' not in editor
    assert "An admin can promote, stop or roll back." in editor

    sign_in(client, "root")
    admin = client.get("/models").text
    assert admin.count('class="act"') == 5  # put v1 in use, roll back, promote, stop, rules
    assert 'data-body=\'{"action": "promote"}\'' in admin


def test_admin_users_lists_every_user(client: TestClient) -> None:
    sign_in(client, "root")

    page = client.get("/admin/users").text

    rows = re.findall(r"<tr><td>(\w+)</td>\s*<td>(\w+)</td>", page)
    assert rows == [("erin", "editor"), ("root", "admin"), ("vic", "viewer")]
