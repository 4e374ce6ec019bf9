"""Every command a message or an example tells the user to run exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer.main

import datawheel
from datawheel.cli.main import app

SRC = Path(datawheel.__file__).parent
#: "datawheel X [Y]" where the text tells the user to run it: after a colon, "with",
#: "run", a backtick, a bracket, "e.g." or a shell operator.
HINT = re.compile(
    r"(?:: |with:? |run:? |`|\(|e\.g\. |&& |\|\s+)datawheel ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?"
)


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(
        n.value, str)]  # fmt: skip


def test_every_hinted_command_exists() -> None:
    root = typer.main.get_command(app)
    found, wrong = 0, []
    for path in sorted(SRC.rglob("*.py")):
        for text in _strings(path):
            for name, sub in HINT.findall(" ".join(text.split())):
                found += 1
                command = root.commands.get(name)  # type: ignore[attr-defined]
                if command is None:
                    wrong.append(f"{path.relative_to(SRC)}: datawheel {name}")
                elif hasattr(command, "commands") and sub and sub not in command.commands:
                    wrong.append(f"{path.relative_to(SRC)}: datawheel {name} {sub}")
    assert found > 100  # the pattern still finds the hints
    assert not wrong, wrong
