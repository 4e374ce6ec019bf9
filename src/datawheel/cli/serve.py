"""``datawheel serve``, ``datawheel users`` and ``datawheel ab``: the service and its access."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

users_app = typer.Typer(
    rich_markup_mode=None,
    help="Users, roles, groups and API keys of datawheel serve.\n\n"
    "Example: datawheel users add alice --role editor --groups sales,support",
    no_args_is_help=True,
)
ab_app = typer.Typer(
    rich_markup_mode=None,
    help="The online A/B test of a challenger version (set ab.share in datawheel.yaml).\n\n"
    "Example: datawheel ab status && datawheel ab promote",
    no_args_is_help=True,
)

GroupsOpt = Annotated[
    str | None,
    typer.Option(
        "--groups",
        help="Comma-separated document groups the user may read ('*': all; "
        "default: ingest.default_groups).",
    ),
]
RoleOpt = Annotated[str, typer.Option("--role", help="viewer, editor or admin.")]


def register(app: typer.Typer) -> None:
    app.command("serve", cls=Command)(serve)
    app.add_typer(users_app, name="users")
    users_app.command("add", cls=Command)(add)
    users_app.command("list", cls=Command)(list_users)
    users_app.command("key", cls=Command)(new_key)
    users_app.command("revoke", cls=Command)(revoke)
    users_app.command("set", cls=Command)(set_user)
    users_app.command("disable", cls=Command)(disable)
    app.add_typer(ab_app, name="ab")
    ab_app.command("status", cls=Command)(ab_status)
    ab_app.command("decide", cls=Command)(ab_decide)
    ab_app.command("promote", cls=Command)(ab_promote)
    ab_app.command("stop", cls=Command)(ab_stop)


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default: server.host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default: server.port.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Worker processes (more than 1 needs the PostgreSQL store)."
        ),
    ] = 1,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the JSON API, the OpenAI-compatible endpoint, the web UI and the scheduled jobs.

    Example: datawheel serve --port 8080 -w kb/   (then open http://127.0.0.1:8080)

    With the PostgreSQL store: datawheel serve --workers 4
    """
    from datawheel.server.app import serve as run

    with opened(workspace) as ws:
        cfg = ws.config.server
        if ws.users.count() == 0:
            out.print(
                "no users yet: create one with  datawheel users add NAME --role admin",
                highlight=False,
            )
        run(ws, host or cfg.host, port or cfg.port, workers=workers, log_level="info")


def _groups(groups: str | None) -> list[str] | None:
    return None if groups is None else [g for g in groups.split(",") if g.strip()]


def add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: RoleOpt = "viewer",
    groups: GroupsOpt = None,
    password: Annotated[
        bool, typer.Option("--password", help="Also ask for a password (web UI sign-in).")
    ] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create a user and print their API key once (only a hash is kept).

    Example: datawheel users add alice --role editor --groups sales,support
    """
    secret = (
        typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    )
    with opened(workspace) as ws:
        key = ws.add_user(name, role=role, groups=_groups(groups), password=secret)
        user = ws.users.get(name)
    if json_:
        print_json({"user": user.to_dict(), "key": key})
        return
    out.print(f"{user.name}: {user.role}, reads {', '.join(user.groups)}", highlight=False)
    out.print(f"API key (shown once, keep it safe): {key}", highlight=False)


def list_users(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """List users, their roles, groups and keys (ids only).

    Example: datawheel users list --json
    """
    with opened(workspace) as ws:
        rows = ws.users.list()
    if json_:
        print_json(rows)
        return
    table = Table("user", "role", "groups", "password", "keys (active)")
    for r in rows:
        active = [k["id"] for k in r["keys"] if not k["revoked"]]
        name = r["name"] + (" (disabled)" if r["disabled"] else "")
        table.add_row(
            name,
            r["role"],
            ", ".join(r["groups"]),
            "yes" if r["password"] else "-",
            ", ".join(active) or "-",
        )
    out.print(table)


def new_key(
    name: Annotated[str, typer.Argument(help="The user.")], workspace: WorkspaceOpt = None
) -> None:
    """Give a user another API key (printed once).

    Example: datawheel users key alice
    """
    with opened(workspace) as ws:
        key = ws.users.new_key(name)
    out.print(f"API key for {name} (shown once): {key}", highlight=False)


def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (datawheel users list) or the key.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke an API key; requests with it get 401 at once.

    Example: datawheel users revoke 1a2b3c4d
    """
    with opened(workspace) as ws:
        ws.users.revoke(key_id)
    out.print(f"revoked {key_id}", highlight=False)


def set_user(
    name: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str | None, typer.Option("--role", help="viewer, editor or admin.")] = None,
    groups: GroupsOpt = None,
    password: Annotated[
        bool, typer.Option("--password", help="Set a new password (asked for).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Change a user's role, groups or password.

    Example: datawheel users set alice --role admin --groups '*'
    """
    secret = (
        typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    )
    with opened(workspace) as ws:
        user = ws.users.update(name, role=role, groups=_groups(groups), password=secret)
    out.print(f"{user.name}: {user.role}, reads {', '.join(user.groups)}", highlight=False)


def disable(
    name: Annotated[str, typer.Argument(help="The user.")], workspace: WorkspaceOpt = None
) -> None:
    """Disable a user: their keys and sessions stop working.

    Example: datawheel users disable bob
    """
    with opened(workspace) as ws:
        ws.users.disable(name)
    out.print(f"disabled {name}", highlight=False)


def _print_ab(data: dict, json_: bool) -> None:  # type: ignore[type-arg]
    if json_:
        print_json(data)
        return
    test = data["test"]
    if test is None:
        out.print("no A/B test has run (set ab.share, then datawheel improve)", highlight=False)
        return
    out.print(
        f"{test['id']}: {test['challenger']} vs {test['champion'] or 'baseline'} "
        f"({test['share']:.0%} of users), {test['status']}",
        highlight=False,
    )
    table = Table("variant", "version", "questions", "👍", "👎", "satisfaction")
    for name, v in data["variants"].items():
        sat = f"{v['satisfaction']:.0%}" if v["satisfaction"] is not None else "-"
        version = test["challenger"] if name == "challenger" else test["champion"] or "baseline"
        table.add_row(name, version, str(v["questions"]), str(v["up"]), str(v["down"]), sat)
    out.print(table)
    p = data["p_challenger_better"]
    if p is not None:
        out.print(f"P(challenger more satisfying) = {p:.3f}", highlight=False)
    out.print(f"{data['decision']}: {data['reason']}", highlight=False)


def ab_status(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Show the A/B test: per-variant votes, P(challenger better), what the rules say.

    Example: datawheel ab status
    """
    with opened(workspace) as ws:
        data = ws.ab_status().to_dict()
    _print_ab(data, json_)


def _decide(workspace: WorkspaceOpt, action: str | None, json_: bool) -> None:
    with opened(workspace) as ws:
        data = ws.ab_decide(action, by="cli").to_dict()
    _print_ab(data, json_)


def ab_decide(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Apply the rules now: promote, stop, or keep collecting votes.

    Example: datawheel ab decide
    """
    _decide(workspace, None, json_)


def ab_promote(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Promote the challenger now (manual override, logged).

    Example: datawheel ab promote
    """
    _decide(workspace, "promote", json_)


def ab_stop(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Stop the test and keep the champion (manual override, logged).

    Example: datawheel ab stop
    """
    _decide(workspace, "stop", json_)
