"""The embedding fine-tune candidate: trained on feedback, served, kept, rolled back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from datawheel.demo import SAMPLE_KB, SAMPLE_TRAFFIC
from datawheel.evaluate.simulate import replay
from datawheel.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, str]:
    """The sample knowledge base after a week of votes and an improve limited to fine-tuning."""
    cache = os.environ.get("DATAWHEEL_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    path = tmp_path_factory.mktemp("ft") / "kb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWHEEL_CACHE", cache)
        with Workspace.init(path) as ws:
            ws.ingest([SAMPLE_KB])
            base_id = ws.embedder.model_id
            traffic = [json.loads(x) for x in SAMPLE_TRAFFIC.read_text().splitlines() if x]

            def judge(qid: str, sources: list) -> list[str]:
                wanted = traffic[int(qid)]["relevant"]
                return [s.chunk_id for s in sources if any(s.uri.endswith(r) for r in wanted)]

            replay(ws, {str(i): r["question"] for i, r in enumerate(traffic)}, judge, shown=5)
            # margin -1: promote the fine-tuned candidate whatever it scores, to test serving
            report = ws.improve(
                only=["finetune"], margin=-1.0, min_finetune_pairs=10, finetune_epochs=1
            )
    return path, report, base_id


def test_fine_tune_trains_on_feedback_pairs_and_reports_held_out_mrr(tuned) -> None:
    _, report, _ = tuned
    assert report.promoted == "v1"
    info = report.finetune
    assert info["pairs"] >= 40  # one per helpful source in the training feedback
    assert len(info["held_out_mrr"]) == 2  # before training, after epoch 1
    assert all(0.0 < m <= 1.0 for m in info["held_out_mrr"])


def test_the_promoted_fine_tune_is_served_after_reopening(tuned) -> None:
    path, _, base_id = tuned
    with Workspace.open(path) as ws:
        assert ws.model.embedder == "models/v1/embedder"
        assert (path / "models" / "v1" / "embedder" / "model.safetensors").exists()
        tuned_id = ws.embedder.model_id
        assert tuned_id != base_id  # other weights, so another vector index
        assert len(ws.indexes.vectors) == ws.store.counts()["chunks"]  # every chunk re-embedded
        answer = ws.ask("restocking fee opened electronics", record=False)
        assert not answer.declined and any(s.cited for s in answer.sources)
        base_vec = None
        assert ws.rollback() is None
        assert ws.embedder.model_id == base_id  # the base model is back, its vectors kept
        base_vec = ws.embedder.embed(["gift card expiration"])[0]
        ws.rollback("v1")
        tuned_vec = ws.embedder.embed(["gift card expiration"])[0]
        assert ws.embedder.model_id == tuned_id
        assert float(np.dot(base_vec, tuned_vec)) < 0.9999  # the weights really changed
