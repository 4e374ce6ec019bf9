"""BEIR corpora: one item per line, failures per bad line."""

from __future__ import annotations

import json
from pathlib import Path

from datawheel.sources import fingerprint

from .helpers import run


def corpus(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def record(_id: str, text: str, title: str = "") -> str:
    return json.dumps({"_id": _id, "title": title, "text": text, "metadata": {}})


def test_one_item_per_line_with_id_in_uri(tmp_path: Path) -> None:
    line = record("d1", "Aspirin lowers fever.", "Aspirin")
    path = corpus(tmp_path, [line, record("d2", "Second abstract.")])
    items, failures = run(path)
    assert failures == []
    assert [item.uri for item in items] == [f"{path}#d1", f"{path}#d2"]
    assert items[0].fingerprint == fingerprint(line.encode())
    doc = items[0].load()
    assert doc.title == "Aspirin"
    assert doc.text == "Aspirin lowers fever."
    assert doc.metadata["kind"] == "beir"
    assert doc.metadata["beir_id"] == "d1"
    assert items[1].load().title == "d2"  # no title: the id stands in


def test_malformed_line_is_a_failure_with_its_number_others_still_yielded(
    tmp_path: Path,
) -> None:
    path = corpus(
        tmp_path,
        [
            record("d1", "One."),
            '{"_id": "d2", "text": "broken',
            json.dumps({"title": "no id", "text": "x"}),
            record("d1", "Duplicate id."),
            "",
            record("d5", "Five."),
        ],
    )
    items, failures = run(path)
    assert [item.uri.rsplit("#", 1)[1] for item in items] == ["d1", "d5"]
    assert [f.uri for f in failures] == [f"{path}#line-2", f"{path}#line-3", f"{path}#line-4"]
    assert failures[0].reason.startswith("line 2: invalid JSON")
    assert 'no "_id"' in failures[1].reason
    assert "duplicate _id 'd1'" in failures[2].reason


def test_jsonl_that_is_not_beir_is_one_failure(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "click"}\n{"event": "view"}\n', "utf-8")
    items, (failure,) = run(path)
    assert items == []
    assert "not a BEIR corpus" in failure.reason
