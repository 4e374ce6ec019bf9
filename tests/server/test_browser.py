"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against a real
uvicorn on 127.0.0.1 over a real SQLite workspace.

Chromium comes from the system (``make browser`` installs it); Playwright never downloads
a browser here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from ui_kb import PASSWORDS, Kb, build, open_copy

from datawheel.improve import ab
from datawheel.improve.registry import Registry
from datawheel.server.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Site:
    url: str
    kb: Kb
    page: Page
    requests: list[str]  # every URL the browser asked for
    dialogs: list[str]  # every alert/confirm/prompt that fired
    errors: list[str]  # console errors and uncaught exceptions (a CSP block is one)

    def go(self, path: str) -> None:
        self.page.goto(self.url + path)

    def sign_in(self, name: str, password: str | None = None) -> None:
        self.go("/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password or PASSWORDS[name])
        self.page.click("button[type=submit]")

    def ask(self, question: str) -> None:
        self.go("/ask")
        self.page.fill("#question", question)
        self.page.click("form.ask button")
        expect(self.page.locator("#answer")).to_be_visible()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def site(browser_template: Path, tmp_path: Path, browser: Browser) -> Iterator[Site]:
    kb = open_copy(browser_template, tmp_path / "kb")
    port = free_port()
    config = uvicorn.Config(
        create_app(kb.ws, warm=False), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    assert httpx.get(url + "/api/health").status_code == 200
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    site = Site(url, kb, page, [], [], [])
    page.on("request", lambda request: site.requests.append(request.url))
    page.on("console", lambda m: site.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: site.errors.append(str(exc)))

    def dialog(d: object) -> None:
        site.dialogs.append(d.message)  # type: ignore[attr-defined]
        d.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", dialog)
    try:
        yield site
    finally:
        context.close()
        server.should_exit = True
        thread.join(timeout=10)
        kb.ws.close()


def test_sign_in_ask_open_the_citation_vote_and_see_the_dashboard_change(site: Site) -> None:
    page = site.page
    site.go("/")
    expect(page).to_have_url(site.url + "/login")
    site.sign_in("vic")
    expect(page).to_have_url(site.url + "/ask")
    expect(page.locator("#who")).to_have_text("vic viewer")

    site.go("/dashboard")
    expect(page.locator("#satisfaction")).to_have_text("no votes")

    site.ask("How many weeks of parental leave do employees get?")
    expect(page.locator("#answer-text")).to_contain_text("16 weeks of paid parental leave")
    citation = page.locator("#answer-text a.cite").first
    expect(citation).to_have_text("1")
    page.click("#vote-up")
    expect(page.locator("#feedback-status")).to_have_text("Thanks: your 👍 is recorded.")
    expect(page.locator("#vote-up")).to_have_class("chosen")

    cited = site.kb.ws.interactions.recent(1)[0].sources[0]["chunk_id"]
    citation.click()
    expect(page).to_have_url(f"{site.url}/passage/{cited}")
    expect(page.locator("#passage-title")).to_have_text("Parental leave")
    expect(page.locator("#passage")).to_contain_text("within the first year after the birth")

    site.go("/dashboard")
    expect(page.locator("#satisfaction")).to_have_text("100%")
    expect(page.locator("#votes")).to_have_text("1 👍 / 0 👎")
    expect(page.locator("#questions")).to_have_text("1")
    # plotly's bundle, served locally, drew the charts
    expect(page.locator(".plotly-graph-div .main-svg").first).to_be_attached()
    assert page.locator(".plotly-graph-div").count() >= 4
    offsite = [u for u in site.requests if not u.startswith(site.url)]
    assert offsite == []
    # the Content-Security-Policy (scripts from the site only) blocked nothing on the way
    csp = page.request.get(site.url + "/dashboard").headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert site.errors == []


def test_a_viewer_sees_403_on_admin_pages_and_cannot_act_on_models(site: Site) -> None:
    page = site.page
    site.sign_in("vic")
    expect(page).to_have_url(site.url + "/ask")
    nav = page.locator("nav.top")
    expect(nav.get_by_role("link", name="Dashboard", exact=True)).to_have_count(1)
    for hidden in ("Data", "Models", "Users"):
        expect(nav.get_by_role("link", name=hidden, exact=True)).to_have_count(0)

    for path in ("/admin/users", "/data", "/models"):
        response = page.goto(site.url + path)
        assert response is not None and response.status == 403, path
        expect(page).to_have_url(site.url + path)  # a page, not a redirect loop
        expect(page.locator("h1")).to_have_text("Forbidden")
        expect(page.locator("#message")).to_contain_text("vic is signed in as viewer")

    for url, body in (("/api/ab/decide", {"action": "stop"}), ("/api/rollback", {})):
        status = page.evaluate(
            """async ([url, body]) => (await fetch(url, {method: "POST",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify(body)})).status""",
            [url, body],
        )
        assert status == 403, url


def test_an_admin_stops_the_ab_test_from_the_models_page(site: Site) -> None:
    Registry(site.kb.ws.store).record(
        "v1",
        status="challenger",
        parent=None,
        settings={},
        metrics={"holdout_ndcg@10": 0.8, "before": 0.7, "questions": 12},
        artifacts="models/v1",
        note="ranker",
    )
    ab.start(site.kb.ws, None, "v1")
    page = site.page
    site.sign_in("root")
    expect(page).to_have_url(site.url + "/ask")

    site.go("/models")
    expect(page.locator("#ab-status")).to_have_text("running")
    page.click("text=Stop the test")

    expect(page.locator("#ab-status")).to_have_text("stopped")  # after the reload
    assert site.kb.ws.ab_status().test.status == "stopped"

    site.go("/admin/users")
    expect(page.locator("#users")).to_contain_text("erin")


def test_html_in_a_question_and_a_document_is_shown_as_text(site: Site) -> None:
    page = site.page
    site.sign_in("vic")
    expect(page).to_have_url(site.url + "/ask")

    site.ask("How do I embed the feedback widget? <script>alert(1)</script>")

    expect(page.locator("#answer .question")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#answer-text")).to_contain_text("Paste <script>alert('doc')</script>")
    expect(page.locator("#answer-text")).to_contain_text("<b>bold</b> labels")
    expect(page.locator("#answer-text b")).to_have_count(0)
    page.locator("#answer-text a.cite").first.click()
    expect(page.locator("#passage")).to_contain_text("<script>alert('doc')</script>")
    site.go("/dashboard")
    expect(page.locator("#questions")).to_have_text("1")
    assert site.dialogs == []


def test_sign_in_errors_an_api_key_and_sign_out(site: Site) -> None:
    page = site.page
    site.sign_in("vic", "not-the-password")
    expect(page.locator("#login-error")).to_have_text(
        "wrong user name or password (or sign in with an API key)"
    )
    expect(page).to_have_url(site.url + "/login")

    site.go("/dashboard")
    expect(page).to_have_url(site.url + "/login?next=/dashboard")
    page.fill("input[name=key]", site.kb.keys["erin"])
    page.click("button[type=submit]")
    expect(page).to_have_url(site.url + "/dashboard")
    expect(page.locator("#who")).to_have_text("erin editor")

    page.click("text=Sign out")
    expect(page).to_have_url(site.url + "/login")
    site.go("/data")
    expect(page).to_have_url(site.url + "/login?next=/data")


def test_an_editor_approves_a_viewers_correction_on_the_review_page(site: Site) -> None:
    page = site.page
    site.sign_in("vic")
    expect(page).to_have_url(site.url + "/ask")
    site.ask("How many weeks of parental leave do employees get?")
    page.fill("textarea[name=correction]", "Sixteen weeks, paid, in the first year.")
    page.click("#vote-down")
    expect(page.locator("#feedback-status")).to_have_text("Thanks: your 👎 is recorded.")
    site.go("/review")
    expect(page.locator("h1")).to_have_text("Forbidden")  # viewers do not review
    site.errors.clear()  # that 403 was the point; anything after it is a real error

    site.go("/logout")
    site.sign_in("erin")
    expect(page).to_have_url(site.url + "/ask")
    site.go("/review")
    row = page.locator("#review tr[data-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Sixteen weeks, paid, in the first year.")
    expect(row).to_contain_text("vic")
    row.locator("button", has_text="Approve").click()
    expect(page.locator("#action-status")).to_contain_text("done")
    site.go("/review?status=approved")
    expect(page.locator("#review tr[data-id]")).to_contain_text("approved by erin")
    (item,) = site.kb.ws.corrections("approved")
    assert item.reviewed_by == "erin" and item.author == "vic"
    assert site.errors == []


def test_a_viewer_marks_an_answer_the_sources_do_not_hold(site: Site) -> None:
    page = site.page
    site.sign_in("vic")
    expect(page).to_have_url(site.url + "/ask")
    site.ask("How many weeks of parental leave do employees get?")
    page.check("#not-in-sources")
    page.click("#vote-down")
    expect(page.locator("#feedback-status")).to_have_text("Thanks: your 👎 is recorded.")
    asked = site.kb.ws.interactions.recent(1)[0]
    [mark] = [f for f in site.kb.ws.interactions.feedback() if f.interaction_id == asked.id]
    assert mark.failure == "not_in_sources" and mark.user == "vic"
    assert site.errors == []
