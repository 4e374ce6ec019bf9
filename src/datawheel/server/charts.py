"""The dashboard's charts: plotly figures drawn from ``Workspace.dashboard()``'s numbers.

Each chart is a ``<div>`` carrying its figure as JSON in ``data-figure``; ``app.js`` draws
it with plotly's own bundle from ``/static/plotly.min.js`` (nothing comes from a CDN, and no
inline script runs, so the pages' Content-Security-Policy allows scripts from the site
only). A chart with nothing to draw is ``None`` and the page says so instead.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

NAMES = (
    "satisfaction",
    "questions",
    "answer_rate",
    "latency",
    "adoption",
    "evaluations",
    "tables",
)
_CONFIG = {"displayModeBar": False, "responsive": True}
_BLUE, _GREEN, _ORANGE, _GREY = "#2f6fb3", "#23875c", "#d9822b", "#9aa4b1"


def charts(board: dict[str, Any]) -> dict[str, Markup | None]:
    """Every chart of the dashboard by name; ``None`` where there is no data yet."""
    import plotly.graph_objects as go

    weeks, daily = board["satisfaction"], board["daily"]
    days = [d["day"] for d in daily]
    asked = any(d["questions"] for d in daily)
    voted = any(w["up"] + w["down"] for w in weeks)
    out: dict[str, Any] = dict.fromkeys(NAMES)
    if voted:
        out["satisfaction"] = go.Figure(
            go.Bar(
                x=[w["week"] for w in weeks],
                y=[w["satisfaction"] for w in weeks],
                text=[_votes(w) for w in weeks],
                textposition="none",
                marker_color=_GREEN,
                hovertemplate="%{x}: %{y:.0%} (%{text})<extra></extra>",
            ),
            layout={
                "yaxis": {"tickformat": ".0%", "range": [0, 1]},
                "xaxis": {"type": "category"},  # "2026-W48" is not a date to plotly
            },
        )
    if asked:
        out["questions"] = go.Figure(
            go.Bar(x=days, y=[d["questions"] for d in daily], marker_color=_BLUE)
        )
        out["answer_rate"] = go.Figure(
            go.Scatter(
                x=days, y=[d["answer_rate"] for d in daily], mode="lines+markers", line_color=_GREEN
            ),
            layout={"yaxis": {"tickformat": ".0%", "range": [0, 1.05]}},
        )
        out["latency"] = go.Figure(
            go.Scatter(
                x=days,
                y=[d["p95_latency_ms"] for d in daily],
                mode="lines+markers",
                line_color=_ORANGE,
            ),
            layout={"yaxis": {"title": {"text": "ms"}, "rangemode": "tozero"}},
        )
        out["adoption"] = _adoption(go, board, days)
    if board["evaluations"]:
        out["evaluations"] = _evaluations(go, board["evaluations"])
    tables = board["data"]["tables"]
    if tables:
        out["tables"] = go.Figure(
            [
                go.Bar(
                    name="clean", x=[t["source"] for t in tables], y=[t["rows"] for t in tables]
                ),
                go.Bar(
                    name="quarantined",
                    x=[t["source"] for t in tables],
                    y=[t["quarantined"] for t in tables],
                    marker_color=_ORANGE,
                ),
            ],
            layout={"barmode": "stack"},
        )
    return {name: None if fig is None else _html(fig) for name, fig in out.items()}


def _votes(week: dict[str, Any]) -> str:
    return f"{week['up']} 👍 / {week['down']} 👎"


def _adoption(go: Any, board: dict[str, Any], days: list[str]) -> Any:
    fig = go.Figure(
        go.Bar(
            name="active users",
            x=days,
            y=[d["users"] for d in board["daily"]],
            marker_color=_BLUE,
        )
    )
    registered = board["adoption"]["registered"]
    if registered:
        fig.add_trace(
            go.Scatter(
                name="registered",
                x=days,
                y=[registered] * len(days),
                mode="lines",
                line={"color": _GREY, "dash": "dot"},
            )
        )
    return fig


def _evaluations(go: Any, rows: list[dict[str, Any]]) -> Any:
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    return go.Figure(
        [
            go.Bar(name=source, x=[r["version"] for r in runs], y=[r["value"] for r in runs])
            for source, runs in by_source.items()
        ],
        layout={"barmode": "group", "yaxis": {"title": {"text": "nDCG@10"}}},
    )


def _html(fig: Any) -> Markup:
    fig.update_layout(
        template="plotly_white",
        height=260,
        margin={"l": 48, "r": 12, "t": 12, "b": 36},
        showlegend=len(fig.data) > 1,
        legend={"orientation": "h", "y": -0.25},
    )
    spec = f'{{"figure": {fig.to_json()}, "config": {json.dumps(_CONFIG)}}}'
    return Markup(f'<div class="plotly-graph-div chart-plot" data-figure="{escape(spec)}"></div>')
