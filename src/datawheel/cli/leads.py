"""``datawheel leads``: train, score, backtest, and import outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from datawheel.cli.common import Command, JsonOpt, WorkspaceOpt, opened, out, print_json

leads_app = typer.Typer(
    rich_markup_mode=None,
    help="Lead scoring: close probability, reasons, best next action.\n\n"
    "Example: datawheel leads train && datawheel leads score open_leads.csv --json",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(leads_app, name="leads")
    leads_app.command("train", cls=Command)(train)
    leads_app.command("score", cls=Command)(score)
    leads_app.command("backtest", cls=Command)(backtest)
    leads_app.command("outcomes", cls=Command)(outcomes)


def train(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Train on closed deals (leads: in datawheel.yaml); promote it if it beats the current.

    Example: datawheel leads train -w kb/
    """
    with opened(workspace) as ws:
        report = ws.leads_train()
    if json_:
        print_json(report.to_dict())
        return
    out.print(escape(report.render()), highlight=False)
    for column, rows in report.evidence.items():
        out.print(_win_rates(column, rows))


def _win_rates(column: str, rows: list[dict[str, Any]]) -> Table:
    table = Table("value", "won", "closed", "win rate", "95% CI", title=f"win rate by {column}")
    for r in rows:
        lo, hi = r["ci"]
        table.add_row(
            r["value"] + (" (thin)" if r["thin"] else ""),
            f"{r['won']:,}",
            f"{r['n']:,}",
            f"{r['rate']:.1%}",
            f"{lo:.1%}–{hi:.1%}",
        )
    return table


def score(
    file: Annotated[
        str | None,
        typer.Argument(help="Leads to score: a file or a source (default: the open deals)."),
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also write every score to this CSV.")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Rows shown in the table.")] = 20,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Score leads: close probability, top reasons, best next action; every score is logged.

    Example: datawheel leads score new-leads.csv --csv scored.csv -w kb/
    """
    with opened(workspace) as ws:
        result = ws.leads_score(file)
    if csv_out is not None:
        result.write_csv(csv_out)
    if json_:
        print_json(result.to_dict())
        return
    out.print(f"{len(result.rows):,} leads scored by {result.version}: {result.verdict}")
    table = Table("id", "close", "top reasons", "best next action")
    for r in sorted(result.rows, key=lambda r: -r["probability"])[:top]:
        actions = [
            f"{a['column']}={a['best']} ({a['lift']:+.1%})"
            if a["lift"] > 0
            else f"keep {a['column']}"
            for a in r["actions"]
        ]
        table.add_row(
            r["id"],
            f"{r['probability']:.1%}",
            "; ".join(x["text"] for x in r["reasons"]) or "no feature moves it much",
            "; ".join(actions),
        )
    out.print(table)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if csv_out is not None:
        out.print(f"wrote {csv_out}", highlight=False)


def backtest(workspace: WorkspaceOpt = None, json_: JsonOpt = False) -> None:
    """Walk forward in time: train on the past, score the next slice, never the future.

    Example: datawheel leads backtest -w kb/
    """
    with opened(workspace) as ws:
        result = ws.leads_backtest()
    if json_:
        print_json(result)
        return
    table = Table("fold", "trained on", "scored", "AUC", "Brier", "base Brier", "top-20% lift")
    for f in result["folds"]:
        table.add_row(
            str(f["fold"]),
            f"{f['train']:,}",
            f"{f['n']:,}",
            "" if f["auc"] is None else f"{f['auc']:.3f}",
            f"{f['brier']:.3f}",
            f"{f['base_brier']:.3f}",
            "" if f["lift_top20"] is None else f"{f['lift_top20']:.2f}x",
        )
    out.print(table)
    aucs = [f["auc"] for f in result["folds"] if f["auc"] is not None]
    out.print(
        f"ordered by {result['ordered_by']}; mean AUC {result['mean_auc']:.3f} over "
        f"{len(aucs)} folds ({min(aucs):.3f}–{max(aucs):.3f}); all folds pooled: "
        f"{result['pooled']['verdict']}",
        highlight=False,
    )


def outcomes(
    file: Annotated[Path, typer.Argument(help="Won/lost outcomes: the lead id and target.")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Import won/lost outcomes; they settle the latest score of each lead.

    Example: datawheel leads outcomes closed-this-week.csv -w kb/
    """
    with opened(workspace) as ws:
        report = ws.leads_outcomes(file)
    if json_:
        print_json(report.to_dict())
    else:
        out.print(escape(report.render()), highlight=False)
