"""Answer quality as a reader judges it, on SQuAD 2.0 (or any SQuAD file) and question sets.

Every paragraph becomes a document titled by its article, every question is asked through
the real ask path (the default extractive generator unless --provider says otherwise), and
the answer *text* is scored: right when not declined, at most --max-chars long (citations
aside) and holding a reference answer after SQuAD normalisation. Unanswerable questions are
handled right when the answer declines. Also measured: the sample's held-out demo questions
(``--demo``) by the same rule.

Targets (squad2_sample, extractive): answered_right >= 0.75, answerable_declined <= 0.10,
unanswerable_declined >= 0.50, p95_ms <= 200.

Usage: python benchmarks/answers.py [--squad FILE] [--demo] [--provider llamacpp] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _common import SHARED, emit

from datawheel import Workspace

SQUAD = SHARED / "squad2_sample" / "dev-v2.0-sample.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--demo", action="store_true", help="also the demo's held-out questions")
    ap.add_argument("--provider", default=None, help="generation.provider (default: extractive)")
    ap.add_argument("--model", default=None, help="generation.model for --provider")
    ap.add_argument("--base-url", default=None, help="generation.base_url for --provider")
    ap.add_argument("--max-chars", type=int, default=300)
    ap.add_argument(
        "--sample", type=int, default=0, help="ask every n-th question only (slow generators)"
    )
    ap.add_argument("--workspace", type=Path, default=Path(".bench") / "answers")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    results = []
    squad = _sampled(args.squad, args.sample, args.workspace) if args.sample > 1 else args.squad
    with Workspace.init(args.workspace / squad.stem) as ws:
        _configure(ws, args)
        results.append(
            _row(ws.evaluate(squad, squad=True, max_chars=args.max_chars), args.squad.name)
        )
    if args.demo:
        from datawheel.demo import SAMPLE_KB, SAMPLE_QUESTIONS

        path = args.workspace / "demo"
        shutil.rmtree(path, ignore_errors=True)
        with Workspace.init(path) as ws:
            _configure(ws, args)
            ws.ingest([SAMPLE_KB])
            results.append(
                _row(ws.evaluate(SAMPLE_QUESTIONS, max_chars=args.max_chars), "demo held-out")
            )
    for r in results:
        print(
            f"{r['dataset']} ({r['generator']}): answered right {_pct(r['answered_right'])}, "
            f"answerable declined {_pct(r['answerable_declined'])}, unanswerable declined "
            f"{_pct(r['unanswerable_declined'])}, token F1 {r['token_f1']:.3f}, "
            f"median {r['median_answer_chars']} chars, p95 {r['p95_ms']:.0f} ms"
        )
    emit(results[0] if len(results) == 1 else {**results[0], "more": results[1:]}, args.json)


def _sampled(path: Path, every: int, folder: Path) -> Path:
    """The SQuAD file with every paragraph but only every ``every``-th question."""
    data = json.loads(path.read_text(encoding="utf-8"))
    n = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            kept = []
            for qa in paragraph["qas"]:
                if n % every == 0:
                    kept.append(qa)
                n += 1
            paragraph["qas"] = kept
    out = folder / f"{path.stem}-every-{every}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _configure(ws: Workspace, args: argparse.Namespace) -> None:
    if args.provider:
        ws.config.generation.provider = args.provider
        ws.config.generation.model = args.model
        ws.config.generation.base_url = args.base_url


def _row(result: dict, name: str) -> dict:
    return {
        "dataset": name,
        "generator": result.get("generator", ""),
        "answered_right": result["answered_right"],
        "answerable_declined": result["answerable_declined"],
        "unanswerable_declined": result["unanswerable_declined"],
        "token_f1": result["token_f1"],
        "median_answer_chars": result["median_answer_chars"],
        "p95_ms": result["latency_p95_ms"],
        "questions": result["questions"],
        "cited_relevant": result["cited_relevant"],
    }


if __name__ == "__main__":
    main()
