"""The inventory as one self-contained HTML page (inline CSS, no scripts, nothing fetched).

Example::

    Path("inventory.html").write_text(render_html(build_inventory(ws, rules)), "utf-8")
"""

from __future__ import annotations

import html
from typing import Any

from datawheel.tables.inventory import Inventory, InventoryEntry

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;
color:#1d2430;background:#f6f8fa}
h1{margin:0 0 .2rem;font-size:1.6rem}h2{margin:.2rem 0 .6rem;font-size:1.2rem}
.muted{color:#5f6b7a}.error{color:#b42318;white-space:pre-wrap}
table{border-collapse:collapse;margin:.4rem 0 1rem;background:#fff}
th,td{border:1px solid #d8dee4;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:1rem 1.2rem;
margin:1rem 0}
.tag{display:inline-block;padding:0 .5rem;border-radius:.7rem;font-size:12px;color:#fff;
white-space:nowrap}
.business-process{background:#2f6fb3}.customer-interaction{background:#23875c}
.expert-knowledge{background:#7d48b5}.public-web{background:#a8691e}.failed{background:#b42318}
.high{font-weight:600;color:#0a6b2c}.low{color:#7b8591}
.bar{background:#e5e9ee;width:5rem;height:.55rem;display:inline-block;margin-right:.4rem}
.bar i{display:block;height:100%;background:#d9822b}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def _cells(values: list[Any], numeric: frozenset[int] = frozenset()) -> str:
    return "".join(
        f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
        for i, v in enumerate(values)
    )


def _tag(entry: InventoryEntry) -> str:
    if entry.classification is None:
        return '<span class="tag failed">unreadable</span>'
    c = entry.classification.category
    return f'<span class="tag {_e(c)}">{_e(c)}</span>'


SUMMARY_COLUMNS = (
    "source", "kind", "rows", "columns", "size", "last updated", "category", "confidence",
    "value density", "flywheel", "priority", "application",
)  # fmt: skip
_LEVEL_COLUMNS = ("value density", "flywheel", "priority")


def summary_row(entry: InventoryEntry) -> dict[str, str]:
    """One entry as display strings: the table of the CLI and of the HTML report."""
    p, d, c = entry.profile, entry.documents, entry.classification
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(source=entry.name, kind=entry.kind)
    if p:
        row.update(rows=f"{p.rows:,}", columns=str(len(p.columns)), size=_size(p.size_bytes))
        row["last updated"] = p.last_updated or ""
    if d:
        row.update(rows=f"{d.documents:,} docs", columns=f"{d.chunks:,} chunks")
        row.update(size=f"{d.text_chars:,} chars")
        row["last updated"] = d.newest_ingest or ""
    if c:
        row.update(category=c.category, confidence=f"{c.confidence:.2f}", flywheel=c.flywheel)
        row.update(priority=c.priority, application=c.application)
        row["value density"] = c.value_density
    return row


def _section(entry: InventoryEntry) -> str:
    parts = [f'<section id="{_e("src-" + entry.name)}"><h2>{_e(entry.name)} {_tag(entry)}</h2>']
    p, d, c = entry.profile, entry.documents, entry.classification
    if entry.error:
        parts.append(f'<p class="error">{_e(entry.error)}</p>')
    if p:
        facts = [p.origin, p.format, f"{p.rows:,} rows", _size(p.size_bytes)]
        if p.encoding:
            facts.append(f"encoding {p.encoding}")
        if p.rejected_lines:
            facts.append(f"{p.rejected_lines} unparseable lines")
        if p.newest:
            facts.append(f"newest {p.newest_column}: {p.newest}")
        parts.append(f'<p class="muted">{_e(" · ".join(f for f in facts if f))}</p>')
    if c:
        parts.append(
            f"<p>value density <b>{_e(c.value_density)}</b> · flywheel <b>{_e(c.flywheel)}</b>"
            f" · priority <b>{_e(c.priority)}</b> · confidence {c.confidence:.2f}"
            f" · suits <b>{_e(c.application)}</b></p>"
        )
        if c.reasons:
            items = "".join(f"<li>{_e(r)}</li>" for r in c.reasons)
            parts.append(f"<details open><summary>why</summary><ul>{items}</ul></details>")
    if d:
        rows = "".join(
            f"<tr>{_cells([k, f'{n:,}'], frozenset({1}))}</tr>" for k, n in d.kinds.items()
        )
        parts.append(
            f'<p class="muted">{d.documents:,} documents · {d.chunks:,} chunks · '
            f"newest ingest {_e(d.newest_ingest or '-')}</p>"
            f"<table><tr><th>kind</th><th>documents</th></tr>{rows}</table>"
        )
    if p and p.columns:
        head = ["column", "type", "null rate", "distinct", "min", "max"]
        rows = ""
        for col in p.columns:
            bar = f'<span class="bar"><i style="width:{col.null_rate * 100:.0f}%"></i></span>'
            rows += (
                f"<tr><td>{_e(col.name)}</td><td>{_e(col.type)}</td>"
                f'<td class="n">{bar}{col.null_rate:.1%}</td>'
                f"{_cells([col.distinct, col.min, col.max], frozenset({0}))}</tr>"
            )
        ths = "".join(f"<th>{h}</th>" for h in head)
        parts.append(f"<table><tr>{ths}</tr>{rows}</table>")
    parts.append("</section>")
    return "".join(parts)


def render_html(inventory: Inventory) -> str:
    """The inventory as one self-contained HTML page: inline CSS, no scripts, nothing fetched
    from the internet, every value escaped."""
    ranked = inventory.ranked()
    summary = " · ".join(f"{n} {k}" for k, n in inventory.summary().items() if n)
    rows = []
    for entry in ranked:
        r = summary_row(entry)
        link = f'<a href="#{_e("src-" + entry.name)}">{_e(entry.name)}</a>'
        category = (
            _tag(entry) if entry.classification else f'<span class="error">{_e(entry.error)}</span>'
        )
        cells = [f"<td>{link}</td>", f"<td>{_e(r['kind'])}</td>"]
        cells += [f'<td class="n">{_e(r[k])}</td>' for k in ("rows", "columns", "size")]
        cells += [f"<td>{_e(r['last updated'])}</td>", f"<td>{category}</td>"]
        cells.append(f'<td class="n">{_e(r["confidence"])}</td>')
        cells += [f'<td class="{_e(r[k])}">{_e(r[k])}</td>' for k in _LEVEL_COLUMNS]
        cells.append(f"<td>{_e(r['application'])}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in SUMMARY_COLUMNS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>datawheel inventory: {_e(inventory.workspace)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Data inventory</h1>"
        f'<p class="muted">{_e(inventory.workspace)} · generated {_e(inventory.generated_at)}'
        f" · {_e(summary)}</p><table><tr>{head}</tr>{''.join(rows)}</table>"
        f"{''.join(_section(e) for e in ranked)}</body></html>\n"
    )
