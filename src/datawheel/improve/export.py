"""Export 👍 and corrected answers as a fine-tuning dataset for an LLM trained elsewhere.

``openai``: chat JSONL (``{"messages": [system, user, assistant]}``), the format OpenAI's
and most open-source fine-tuning tools read. ``hf``: one flat record per line
(``question``, ``context``, ``answer``), loadable with ``datasets.load_dataset("json")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from datawheel.errors import ConfigError
from datawheel.improve.examples import collect
from datawheel.models.generators.base import Passage, cited_numbers, prompt_messages
from datawheel.store._files import write_atomic

if TYPE_CHECKING:
    from datawheel.workspace import Workspace

FORMATS = ("openai", "hf")


def export_pairs(ws: Workspace, path: Path, fmt: str = "openai") -> int:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    lines = []
    for ex in collect(ws):
        if not ex.answer:
            continue
        views = {v.id: v for v in ws.store.chunks([c["chunk_id"] for c in ex.citations])}
        passages = [
            Passage(int(c["n"]), v.id, v.title, v.heading, v.text, 0.0)
            for c in ex.citations
            if (v := views.get(c["chunk_id"])) is not None
        ]
        answer = ex.answer
        if passages and not cited_numbers(answer, len(passages)):
            # A correction is written without [n]; the prompt asks for citations, so the
            # pair cites the sources it was given (those marked helpful, else those cited).
            answer = f"{answer.rstrip()} " + "".join(f"[{p.n}]" for p in passages)
        if fmt == "openai":
            messages = prompt_messages(ex.question, passages)
            messages.append({"role": "assistant", "content": answer})
            record: dict[str, object] = {"messages": messages}
        else:
            context = "\n\n".join(f"[{p.n}] {p.title}\n{p.text}" for p in passages)
            record = {"question": ex.question, "context": context, "answer": answer}
        lines.append(json.dumps(record, ensure_ascii=False))
    payload = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
    write_atomic(path, lambda fh: fh.write(payload))
    return len(lines)
