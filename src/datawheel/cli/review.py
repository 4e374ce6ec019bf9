"""``datawheel corrections`` (the review queue) and ``datawheel audit`` (who read what)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

corrections_app = typer.Typer(
    rich_markup_mode=None,
    help="Review corrections and 👎 comments: a correction answers other users only once an "
    "editor approves it.\n\n"
    "Example: datawheel corrections list && datawheel corrections approve 4be1c09f2a3d",
    no_args_is_help=True,
)
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Review as this user (an editor or admin of the workspace)."),
]
IdArg = Annotated[str, typer.Argument(help="The id that `datawheel corrections list` shows.")]


def register(app: typer.Typer) -> None:
    app.add_typer(corrections_app, name="corrections")
    corrections_app.command("list", cls=Command)(list_corrections)
    corrections_app.command("approve", cls=Command)(approve)
    corrections_app.command("reject", cls=Command)(reject)
    app.command("audit", cls=Command)(audit)
    app.command("interactions", cls=Command)(interactions)


def interactions(
    user: Annotated[str | None, typer.Option("--user", help="Only this asker's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest to show.")] = 20,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List recent questions with their interaction ids (to vote on, or to look up).

    Example: datawheel interactions --user alice --limit 5
    """
    with opened(workspace) as ws:
        items = ws.recent_interactions(limit=limit, user=user)
    if json_:
        print_json([i.to_dict() for i in items])
        return
    if not items:
        out.print("no questions asked yet" + (f" by {user}" if user else ""), highlight=False)
        return
    table = Table(title="recent questions")
    table.add_column("id", no_wrap=True)  # whole, to copy into feedback
    for name in ("asked", "user", "question", "answered from"):
        table.add_column(name)
    for i in items:
        table.add_row(i.id, i.created_at.isoformat()[:16], i.user, escape(i.question[:90]),
                      i.answered_from)  # fmt: skip
    out.print(table)
    out.print("vote with: datawheel feedback ID up|down", highlight=False)


def list_corrections(
    status: Annotated[
        str, typer.Option("--status", help="pending, approved, rejected or all.")
    ] = "pending",
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List corrections and 👎 comments waiting for review (or another status).

    Example: datawheel corrections list --status all
    """
    with opened(workspace) as ws:
        items = ws.corrections(None if status == "all" else status)
    if json_:
        print_json([i.to_dict() for i in items])
        return
    if not items:
        out.print(f"nothing {status if status != 'all' else 'to review'}.")
        return
    table = Table("id", "status", "by", "question", "correction / comment", title="review queue")
    for i in items:
        words = i.correction or i.comment or ""
        table.add_row(i.id, i.status, i.author, escape(i.question[:80]), escape(words[:160]))
    out.print(table)
    out.print("approve one with: datawheel corrections approve ID", highlight=False)


def _decide(
    item_id: str, decision: str, by: str | None, workspace: WorkspaceOpt, json_: bool
) -> None:
    with opened(workspace) as ws:
        reviewer = ws.users.get(by) if by else None
        item = ws.review(item_id, decision, by=reviewer)
    if json_:
        print_json(item.to_dict())
        return
    out.print(f"{item.id}: {item.status} by {item.reviewed_by}", highlight=False)
    if item.status == "approved" and item.correction:
        out.print("it answers similar questions after the next: datawheel improve")


def approve(
    item_id: IdArg, by: ByOpt = None, workspace: WorkspaceOpt = None, json_: JsonOpt = False
) -> None:
    """Approve a correction: it becomes a curated answer at the next improve.

    Example: datawheel corrections approve 4be1c09f2a3d --by alice
    """
    _decide(item_id, "approve", by, workspace, json_)


def reject(
    item_id: IdArg, by: ByOpt = None, workspace: WorkspaceOpt = None, json_: JsonOpt = False
) -> None:
    """Reject a correction: it never answers anyone (it is kept, marked rejected).

    Example: datawheel corrections reject 4be1c09f2a3d
    """
    _decide(item_id, "reject", by, workspace, json_)


def audit(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest rows to show.")] = 50,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show who read other users' questions and answers through the service, and when.

    Example: datawheel audit --limit 20
    """
    with opened(workspace) as ws:
        rows = ws.audit(limit)
    if json_:
        print_json(rows)
        return
    table = Table("at", "who", "what", "interactions", title="reads of other users' content")
    for r in rows:
        ids = r["interactions"]
        shown = " ".join(i[:8] for i in ids[:4]) + (f" (+{len(ids) - 4})" if len(ids) > 4 else "")
        table.add_row(r["at"][:19], r["actor"], r["action"], shown)
    out.print(table)
