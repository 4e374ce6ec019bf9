"""The web UI: server-rendered pages over the Workspace, for people with a browser.

Pages (role needed): ``/login`` and ``/logout``; ``/ask`` and ``/passage/{chunk_id}``,
``/dashboard`` (viewer); ``/data``, ``/models`` and ``/review`` (editor; acting on models needs
admin);
``/admin/users`` (admin). A page asked for without a session redirects to ``/login``; one
the caller's role does not allow is a 403 page.

Templates are Jinja2 with autoescaping on, so questions, answers and documents are shown as
text, never as markup. Sign-in, votes and model actions post JSON to the ``/api`` routes
from ``static/app.js`` with the session cookie (HttpOnly, SameSite=strict), so they follow
the API's rules exactly. Every asset, plotly's bundle included, is served from here: the UI
works offline.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from datawheel.errors import AuthError, DatawheelError, NotFoundError
from datawheel.server.service import SESSION_COOKIE, service
from datawheel.users import User

HERE = Path(__file__).parent
_HEADERS = {
    "Cache-Control": "no-store",  # pages show what only this user may read
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # scripts and connections from this site only, no inline script (charts are data for
    # app.js); inline styles stay allowed, as plotly styles what it draws
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
}
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

router = APIRouter(include_in_schema=False)


class _SignIn(Exception):
    """No valid session: the page redirects to /login, then back."""

    def __init__(self, path: str) -> None:
        self.path = path


class _Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def signed_in(need: str = "viewer") -> Any:
    """A dependency: the signed-in user, who must have at least the role ``need``."""

    def check(request: Request) -> User:
        try:
            user = service(request).identify(request)
        except AuthError as exc:
            query = request.url.query
            raise _SignIn(request.url.path + (f"?{query}" if query else "")) from exc
        request.state.user = user
        if not user.has_role(need):
            raise _Forbidden(
                f"{user.name} is signed in as {user.role}; this page needs the {need} role."
            )
        return user

    return Depends(check)


viewer, editor, admin = signed_in("viewer"), signed_in("editor"), signed_in("admin")


# -- templates ------------------------------------------------------------------------------


def _pct(value: float | None, empty: str = "–") -> str:
    return empty if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 0, empty: str = "–") -> str:
    return empty if value is None else f"{value:,.{digits}f}"


def _value(value: Any) -> str:
    """A measured input or assumption as a reader wants it: 85.17, 1,234, text as is."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"


def _cited(text: str, sources: list[Any]) -> Markup:
    """The answer as HTML: escaped, each citation ``[n]`` a link to its passage."""
    chunk_of = {s.n: s.chunk_id for s in sources}

    def link(match: re.Match[str]) -> str:
        parts = []
        for number in match.group(1).split(","):
            n = int(number)
            if n in chunk_of:
                href = escape(f"/passage/{quote(chunk_of[n])}")
                parts.append(f'<a class="cite" href="{href}" title="source {n}">{n}</a>')
            else:
                parts.append(str(n))
        return "[" + ", ".join(parts) + "]"

    return Markup(_CITATION.sub(link, str(escape(text))))


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters.update(pct=_pct, num=_num, cited=_cited, value=_value)
    return Jinja2Templates(env=env)


templates = _templates()


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    user = getattr(request.state, "user", None)
    return templates.TemplateResponse(
        request, name, {"me": user, **context}, status_code=status, headers=_HEADERS
    )


def _next(target: str | None) -> str:
    r"""Where to go after signing in: a path on this site only (no open redirect).

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    ``/\t/evil.example`` and ``/\\evil.example`` would leave the site: any control
    character, whitespace or backslash, and anything with a scheme or host, gives /ask.
    """
    from urllib.parse import urlsplit

    if not target or not target.startswith("/") or target.startswith("//"):
        return "/ask"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return "/ask"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/ask"
    return target


# -- pages ----------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    try:
        service(request).identify(request)
    except AuthError:
        return RedirectResponse("/login", 303)
    return RedirectResponse("/ask", 303)


@router.get("/login")
def login(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_next(next))


@router.get("/logout")
def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service(request).ws.users.end_session(token)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/ask")
def ask_page(request: Request, _: User = viewer) -> Response:
    return render(request, "ask.html", question="", answer=None)


@router.post("/ask")
def ask(
    request: Request,
    question: Annotated[str, Form()] = "",
    conversation: Annotated[str, Form()] = "",
    user: User = viewer,
) -> Response:
    svc = service(request)
    conversation = conversation.strip() or uuid.uuid4().hex
    try:
        with svc.reading() as ws:
            answer = ws.ask(
                question, user=user.name, groups=user.filter_groups, conversation=conversation
            )
            earlier = ws.interactions.conversation(conversation, user.name)[:-1]
    except DatawheelError as exc:
        return render(
            request,
            "ask.html",
            400,
            question=question,
            answer=None,
            error=str(exc),
            conversation=conversation,
        )
    svc.show_paths(answer.sources)
    return render(
        request,
        "ask.html",
        question="",
        answer=answer,
        conversation=conversation,
        earlier=earlier,
    )


@router.get("/passage/{chunk_id}")
def passage(chunk_id: str, request: Request, user: User = viewer) -> Response:
    try:
        chunk = service(request).ws.passage(chunk_id, groups=user.filter_groups)
    except NotFoundError as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    service(request).show_paths([chunk])
    return render(request, "passage.html", chunk=chunk)


@router.get("/dashboard")
def dashboard(request: Request, days: int = 30, _: User = viewer) -> Response:
    from datawheel.server.charts import charts

    board = service(request).ws.dashboard(days=min(max(days, 1), 365))
    return render(request, "dashboard.html", board=board, charts=charts(board))


@router.get("/data")
def data(request: Request, source: str | None = None, _: User = editor) -> Response:
    ws = service(request).ws
    rows, problem = [], None
    if source:
        try:
            rows = ws.quarantined(source, limit=100)
        except DatawheelError as exc:
            problem = str(exc)
    return render(
        request,
        "data.html",
        inventory=ws.inventory(),
        findings=ws.monitor_findings(),
        runs=ws.table_versions(),
        source=source,
        quarantine=rows,
        columns=sorted({k for r in rows for k in r if not k.startswith("_")}),
        problem=problem,
    )


@router.get("/models")
def models(request: Request, _: User = editor) -> Response:
    ws = service(request).ws
    return render(request, "models.html", versions=ws.versions(), ab=ws.ab_status().to_dict())


@router.get("/review")
def review(request: Request, status: str = "pending", user: User = editor) -> Response:
    chosen = status if status in ("pending", "approved", "rejected", "all") else "pending"
    ws = service(request).ws
    items = ws.corrections(None if chosen == "all" else chosen, reader=user)
    return render(request, "review.html", items=items, shown=chosen)


@router.get("/admin/users")
def users(request: Request, _: User = admin) -> Response:
    return render(request, "users.html", users=service(request).ws.users.list())


@router.get("/static/plotly.min.js")
def plotly_js() -> Response:
    """plotly's own bundle, from the installed package (no CDN)."""
    from importlib.resources import files

    bundle = files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(
        str(bundle), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


def install(app: FastAPI) -> None:
    """Add the pages, the static files and the HTML answers for sign-in and forbidden."""

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _SignIn)
        return RedirectResponse(f"/login?next={quote(exc.path)}", 303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Forbidden)
        return render(request, "error.html", 403, title="Forbidden", message=exc.message)

    app.add_exception_handler(_SignIn, sign_in)
    app.add_exception_handler(_Forbidden, forbidden)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
