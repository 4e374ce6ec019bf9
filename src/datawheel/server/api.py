"""The JSON API under ``/api``. Each route checks the caller's role and calls the Workspace.

Roles: viewers ask, search, vote and read reports; editors also manage data (ingest,
sources, cleaning, scoring, forecasts, outcomes); admins also change models and users.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel, Field

from datawheel.errors import AuthError
from datawheel.feedback.log import MAX_QUESTION_CHARS
from datawheel.server.service import SESSION_COOKIE, admin, editor, service, viewer
from datawheel.users import User

router = APIRouter(prefix="/api")
Uploads = Annotated[list[UploadFile], File(description="One or more files.")]
MaybeUploads = Annotated[list[UploadFile] | None, File(description="A file (optional).")]


def out(value: Any) -> Any:
    """Reports and records as JSON-ready data."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return jsonable_encoder(value)


def _files(files: list[UploadFile]) -> list[tuple[str, Any]]:
    return [(f.filename or "", f.file) for f in files]


# -- requests -------------------------------------------------------------------------------


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(None, ge=1, le=20, description="Sources to retrieve and show.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(10, ge=1, le=100)
    mode: Literal["bm25", "dense", "hybrid"] | None = None


class FeedbackRequest(BaseModel):
    interaction_id: str = Field(min_length=1, max_length=64)
    vote: Literal["up", "down"]
    comment: str | None = Field(None, max_length=5000)
    correction: str | None = Field(None, max_length=20000)
    helpful: list[str] = Field(default_factory=list, max_length=20)
    failure: Literal["wrong_source", "wrong_answer", "not_in_sources"] | None = None


class SessionRequest(BaseModel):
    name: str | None = Field(None, description="User name (with password).")
    password: str | None = None
    key: str | None = Field(None, description="Or an API key.")


class VersionRequest(BaseModel):
    version: str | None = Field(None, description="Default: the version before the current.")


class ABRequest(BaseModel):
    action: Literal["promote", "stop"] | None = Field(
        None, description="A manual decision; none: apply the rules."
    )


class UserRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "editor", "admin"] = "viewer"
    groups: list[str] | None = None
    password: str | None = Field(None, min_length=8)


class ForecastRequest(BaseModel):
    horizon: int | None = Field(None, ge=1, le=365)
    lead_time: int | None = Field(None, ge=0, le=365)
    service_level: float | None = Field(None, gt=0, lt=1)


# -- health and sessions --------------------------------------------------------------------


@router.get("/health", summary="Is the service up (no key needed)")
def health(request: Request) -> dict[str, Any]:
    ws = service(request).ws
    return {"ok": True, "version": ws.provenance().get("version"), **ws.store.counts()}


@router.post("/session", summary="Sign in (web UI): sets an HttpOnly session cookie")
def sign_in(body: SessionRequest, request: Request, response: Response) -> dict[str, Any]:
    svc = service(request)
    address = request.client.host if request.client else "unknown"
    name = "" if body.key else (body.name or "")
    svc.before_sign_in(name, address)
    users = svc.ws.users
    try:
        if body.key:
            user = users.authenticate(body.key)
        else:
            user = users.check_password(body.name or "", body.password or "")
    except AuthError:
        svc.failed_sign_in(name or "(API key)", address)
        raise
    cfg = svc.ws.config.server
    token = users.start_session(user, cfg.session_hours)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(cfg.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=cfg.secure_cookies,
        path="/",
    )
    return {"ok": True, "user": user.to_dict()}


@router.delete("/session", summary="Sign out")
def sign_out(request: Request, response: Response) -> dict[str, Any]:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service(request).ws.users.end_session(token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me", summary="Who the key or session belongs to")
def me(user: User = viewer) -> dict[str, Any]:
    return user.to_dict()


# -- the knowledge base ---------------------------------------------------------------------


@router.post("/ask", summary="Answer a question with citations; logged for feedback")
def ask(body: AskRequest, request: Request, user: User = viewer) -> Any:
    svc = service(request)
    with svc.reading() as ws:
        answer = ws.ask(body.question, user=user.name, groups=user.filter_groups, k=body.k)
    svc.show_paths(answer.sources)
    return out(answer)


@router.post("/search", summary="Rank passages the caller may read")
def search(body: SearchRequest, request: Request, user: User = viewer) -> Any:
    svc = service(request)
    with svc.reading() as ws:
        hits = ws.search(body.query, k=body.k, mode=body.mode, groups=user.filter_groups)
    svc.show_paths(hits)
    # nothing the caller may read: say how many matches their groups hide, never which
    hidden = 0 if hits else svc.ws.hidden_matches(body.query, user.filter_groups)
    return {"hits": out(hits), "hidden": hidden}


@router.post("/feedback", summary="👍/👎 on an answer, with an optional comment or correction")
def feedback(body: FeedbackRequest, request: Request, user: User = viewer) -> Any:
    with service(request).reading() as ws:
        record = ws.feedback(
            body.interaction_id,
            body.vote,
            user=user.name,
            comment=body.comment,
            correction=body.correction,
            helpful=body.helpful,
            failure=body.failure,
            own_only=True,
        )
    return {"ok": True, "feedback": out(record)}


@router.get("/interactions", summary="Recent questions and answers the caller may read")
def interactions(
    request: Request, limit: int = Query(50, ge=1, le=1000), user: User = viewer
) -> Any:
    items = service(request).ws.recent_interactions(limit=limit, reader=user)
    return {"interactions": out(items)}


@router.get("/interactions/{interaction_id}", summary="One interaction with its votes")
def interaction(interaction_id: str, request: Request, user: User = viewer) -> Any:
    return out(service(request).ws.interaction(interaction_id, reader=user))


@router.get("/report", summary="Weekly satisfaction, volume, latency and content gaps")
def report(request: Request, weeks: int = Query(1, ge=1, le=52), user: User = viewer) -> Any:
    # A read never runs improve: the scheduler's weekly report job does that.
    return out(service(request).ws.report(weeks=weeks, reader=user, auto_improve=False))


@router.get("/corrections", summary="The review queue: corrections and 👎 comments")
def corrections(
    request: Request,
    status: Literal["pending", "approved", "rejected", "all"] = "pending",
    user: User = editor,
) -> Any:
    items = service(request).ws.corrections(None if status == "all" else status, reader=user)
    return {"corrections": out(items)}


@router.post("/corrections/{item_id}/{decision}", summary="Approve or reject a correction")
def review(
    item_id: str, decision: Literal["approve", "reject"], request: Request, user: User = editor
) -> Any:
    return {"ok": True, "correction": out(service(request).ws.review(item_id, decision, by=user))}


@router.get("/audit", summary="Who read other users' questions and answers, and when")
def audit(request: Request, limit: int = Query(100, ge=1, le=1000), _: User = admin) -> Any:
    return {"audit": service(request).ws.audit(limit)}


@router.get("/dashboard", summary="The dashboard's numbers: usage, quality, data, alerts, ROI")
def dashboard(request: Request, _: User = viewer) -> Any:
    return out(service(request).ws.dashboard())


@router.post("/ingest", summary="Upload files and ingest them")
def ingest(
    request: Request,
    files: Uploads,
    groups: Annotated[str | None, Form(description="Comma-separated groups")] = None,
    _: User = editor,
) -> Any:
    chosen = [g for g in groups.split(",") if g.strip()] if groups else None
    with service(request).writing() as ws:
        return out(ws.ingest_uploads(_files(files), groups=chosen))


# -- models ---------------------------------------------------------------------------------


@router.post("/improve", summary="Build candidates from feedback; promote or A/B test a winner")
def improve(request: Request, _: User = admin) -> Any:
    with service(request).writing() as ws:
        return out(ws.improve())


@router.get("/versions", summary="Model versions with their metrics")
def versions(request: Request, _: User = viewer) -> Any:
    return {"versions": out(service(request).ws.versions())}


@router.post("/rollback", summary="Put a kept version back in use")
def rollback(body: VersionRequest, request: Request, _: User = admin) -> Any:
    with service(request).writing() as ws:
        return {"ok": True, "version": ws.rollback(body.version)}


@router.get("/ab", summary="The online A/B test: variants, votes, P(challenger better)")
def ab_status(request: Request, _: User = viewer) -> Any:
    return out(service(request).ws.ab_status())


@router.post("/ab/decide", summary="Apply the A/B rules now, or promote / stop by hand")
def ab_decide(body: ABRequest, request: Request, user: User = admin) -> Any:
    with service(request).writing() as ws:
        return out(ws.ab_decide(body.action, by=user.name))


@router.get("/jobs", summary="Scheduled and manual job runs")
def jobs(request: Request, limit: int = Query(50, ge=1, le=500), _: User = viewer) -> Any:
    return out(service(request).jobs(limit))


@router.get("/roi", summary="Annual value, investment, ROI and payback from measured usage")
def roi(request: Request, days: int = Query(30, ge=1, le=365), _: User = viewer) -> Any:
    return out(service(request).ws.roi(days=days))


# -- tables ---------------------------------------------------------------------------------


@router.get("/sources", summary="Table sources and their latest clean run")
def sources(request: Request, _: User = editor) -> Any:
    return {"sources": out(service(request).ws.table_versions())}


@router.post("/sources/{name}/clean", summary="Clean a source: steps, rules, quarantine")
def clean(name: str, request: Request, _: User = editor) -> Any:
    with service(request).writing() as ws:
        return out(ws.clean(name))


@router.get("/sources/{name}/quarantine", summary="Rows held back, with every reason")
def quarantine(
    name: str,
    request: Request,
    rule: str | None = None,
    limit: int = Query(50, ge=1, le=10000),
    _: User = editor,
) -> Any:
    return {"rows": out(service(request).ws.quarantined(name, rule=rule, limit=limit))}


@router.get("/inventory", summary="Every data asset, profiled and classified")
def inventory(request: Request, _: User = editor) -> Any:
    return out(service(request).ws.inventory())


@router.post("/monitor", summary="Run the data checks now")
def monitor(
    request: Request, source: str | None = None, rebaseline: bool = False, _: User = editor
) -> Any:
    with service(request).reading() as ws:
        return out(ws.monitor(source, rebaseline=rebaseline))


# -- predictive apps ------------------------------------------------------------------------


@router.post("/leads/score", summary="Score leads from an uploaded CSV (default: open deals)")
def leads_score(request: Request, files: MaybeUploads = None, _: User = editor) -> Any:
    with service(request).reading() as ws:
        path = ws.save_uploads(_files(files)) if files else None
        target = next(path.iterdir()) if path else None
        return out(ws.leads_score(target))


@router.post("/forecast", summary="Forecast every series (and order quantities when set)")
def forecast(body: ForecastRequest, request: Request, _: User = editor) -> Any:
    with service(request).reading() as ws:
        return out(
            ws.forecast_run(
                body.horizon, lead_time=body.lead_time, service_level=body.service_level
            )
        )


@router.post("/outcomes/{app}", summary="Import real outcomes (leads: won/lost; forecast: sales)")
def outcomes(
    app: Literal["leads", "forecast"], request: Request, files: Uploads, _: User = editor
) -> Any:
    with service(request).reading() as ws:
        path = next(ws.save_uploads(_files(files)).iterdir())
        result = ws.leads_outcomes(path) if app == "leads" else ws.forecast_actuals(path)
        return out(result)


# -- users ----------------------------------------------------------------------------------


@router.get("/users", summary="Users and their keys (ids only)")
def users(request: Request, _: User = admin) -> Any:
    return {"users": service(request).ws.users.list()}


@router.post("/users", summary="Create a user; the API key is in the answer, once")
def add_user(body: UserRequest, request: Request, _: User = admin) -> Any:
    ws = service(request).ws
    key = ws.add_user(body.name, role=body.role, groups=body.groups, password=body.password)
    return {"ok": True, "user": ws.users.get(body.name).to_dict(), "key": key}


@router.delete("/keys/{key_id}", summary="Revoke an API key")
def revoke(key_id: str, request: Request, _: User = admin) -> Any:
    service(request).ws.users.revoke(key_id)
    return {"ok": True}
