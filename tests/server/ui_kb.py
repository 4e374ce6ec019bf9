"""The web UI tests' workspace: a few markdown documents, one table source, users of every role.

One document holds HTML and a script, and so does one quarantined row, so the tests can
check that pages show them as text. One document is in the ``finance`` group, which only
the admin may read.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from datawheel.config import CONFIG_FILE
from datawheel.workspace import Workspace

DOCS = {
    "leave.md": "# Parental leave\n\nEmployees get 16 weeks of paid parental leave, taken "
    "within the first year after the birth or adoption of a child.",
    "widget.md": "# Embedding the widget\n\nPaste <script>alert('doc')</script> into the page "
    "footer to embed the feedback widget; it also accepts <b>bold</b> labels.",
    "expenses.md": "# Travel expenses\n\nTravel expenses are reimbursed within 14 days when the "
    "receipts are uploaded to the expense tool.",
}
SECRET = {
    "budget.md": "# Budget 2027\n\nThe confidential budget for 2027 raises marketing spend by "
    "40 percent and freezes hiring in the second half.",
}
ORDERS = (
    'order_id,customer,amount\n1,Acme,120.5\n2,Globex,80\n3,"<img src=x onerror=alert(3)>",-5\n'
)
SOURCES = """
sources:
  orders:
    path: {path}
    key: [order_id]
    clean:
      types: {{amount: double}}
      rules:
        - amount > 0
"""
PASSWORDS = {"root": "root-password", "erin": "erin-password", "vic": "vic-password"}
ROLES = {"root": "admin", "erin": "editor", "vic": "viewer"}


@dataclass
class Kb:
    ws: Workspace
    keys: dict[str, str]  # user name -> API key
    secret_chunk: str  # a chunk of the finance document


def build(root: Path) -> Path:
    """Ingest the documents, clean the table source and run the monitor once; the path."""
    path = root / "kb"
    docs, secret = root / "docs", root / "secret"
    for folder, files in ((docs, DOCS), (secret, SECRET)):
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    orders = root / "orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    Workspace.init(path).close()
    with (path / CONFIG_FILE).open("a", encoding="utf-8") as config:
        config.write(SOURCES.format(path=orders))
    with Workspace.open(path) as ws:
        assert ws.ingest([docs]).failed == []
        assert ws.ingest([secret], groups=["finance"]).failed == []
        assert ws.clean("orders").rows_quarantined == 1
        ws.monitor()
    return path


def open_copy(template: Path, dest: Path) -> Kb:
    """A copy of the built workspace, opened, with one user per role (password and key)."""
    shutil.copytree(template, dest)
    ws = Workspace.open(dest)
    keys = {
        name: ws.add_user(
            name,
            role=ROLES[name],
            groups=["*"] if name == "root" else ["everyone"],
            password=PASSWORDS[name],
        )
        for name in PASSWORDS
    }
    secret = next(v.id for v in ws.store.chunks() if v.title == "Budget 2027")
    return Kb(ws, keys, secret)
