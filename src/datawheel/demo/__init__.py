"""The demo: one turn of the flywheel on a sample company knowledge base, offline.

``datawheel demo`` (and ``make demo``) ingests the sample, answers questions with
citations, measures the held-out sample questions and the week's questions, replays that
week of employee questions with their 👍/👎, runs improve, and measures both sets again:
held-out questions show what carries over to new questions, the week's what a colleague
asking the same thing again gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datawheel.ingest import IngestReport, Progress
from datawheel.workspace import Workspace

SAMPLE_KB = Path(__file__).parent / "kb"
SAMPLE_QUESTIONS = Path(__file__).parent / "questions.jsonl"  # held out: measured only
SAMPLE_TRAFFIC = Path(__file__).parent / "traffic.jsonl"  # a week of questions with votes
EXAMPLE_QUESTIONS = (
    "How long do enterprise customers have to return an order?",
    "What is the capital of Mongolia?",
)


@dataclass
class DemoResult:
    workspace: Path
    ingest: IngestReport
    answers: list[Any] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)
    report: Any = None
    improve: Any = None
    after: dict[str, Any] = field(default_factory=dict)
    seen_before: dict[str, Any] = field(default_factory=dict)  # the week's questions
    seen_after: dict[str, Any] = field(default_factory=dict)
    asked_again: list[Any] = field(default_factory=list)  # corrected questions, after improve


def run_demo(
    path: Path,
    *,
    progress: Progress | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Create (or reuse) a workspace at ``path`` and turn the flywheel once.

    Re-running starts the flywheel afresh (interactions and versions are reset), so the
    numbers are the same every time.
    """
    from datawheel.evaluate.simulate import replay, reset_flywheel

    ws = Workspace.init(path)
    try:
        on_step(f"ingesting the sample knowledge base from {SAMPLE_KB}")
        report = ws.ingest([SAMPLE_KB], sync=True, progress=progress)
        reset_flywheel(ws)
        result = DemoResult(ws.path, report)
        on_step("asking")
        for question in EXAMPLE_QUESTIONS:
            result.answers.append(ws.ask(question, user="demo", record=False))
        on_step(
            f"measuring the held-out questions ({SAMPLE_QUESTIONS.name}) and the week's "
            f"({SAMPLE_TRAFFIC.name}): before"
        )
        result.before = ws.evaluate(SAMPLE_QUESTIONS)
        result.seen_before = ws.evaluate(SAMPLE_TRAFFIC)
        traffic = [json.loads(line) for line in SAMPLE_TRAFFIC.read_text().splitlines() if line]
        questions = {str(i): row["question"] for i, row in enumerate(traffic)}
        on_step(f"replaying {len(traffic)} employee questions with their votes")

        corrections = {str(i): r["correction"] for i, r in enumerate(traffic) if "correction" in r}
        corrected: list[str] = []  # a correction goes with a 👎, when no shown source helped

        def judge(qid: str, sources: list[Any]) -> list[str]:
            wanted = traffic[int(qid)]["relevant"]
            helpful = [s.chunk_id for s in sources if any(s.uri.endswith(r) for r in wanted)]
            if not helpful and qid in corrections:
                corrected.append(qid)
            return helpful

        answers = {str(i): r["answers"] for i, r in enumerate(traffic) if r.get("answers")}
        result.votes = replay(
            ws,
            questions,
            judge,
            shown=5,
            corrections=corrections,
            answers=answers,
            progress=progress,
        )
        result.report = ws.report()
        on_step("improving: candidates from feedback, judged on held-out feedback")
        result.improve = ws.improve(min_ranker_questions=10)
        on_step("measuring the held-out questions: after")
        result.after = ws.evaluate(SAMPLE_QUESTIONS)
        on_step("measuring the week's questions again, as colleagues would ask them again")
        result.seen_after = ws.evaluate(SAMPLE_TRAFFIC)
        for qid in corrected:  # what colleagues corrected is now answered from memory
            result.asked_again.append(ws.ask(questions[qid], user="demo", record=False))
        return result
    finally:
        ws.close()
