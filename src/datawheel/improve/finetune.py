"""Fine-tune the embedding model on feedback: questions paired with the sources that helped.

In-batch negatives (MultipleNegativesRankingLoss) plus one hard negative per question: the
best-ranked source from another document that the user was shown and did not mark. Epochs
stop early when the held-out pairs stop improving. The result is a sentence-transformers
folder inside the version, served through the configured runtime (ONNX int8 by default).
Needs the ``[train]`` extra (datasets, accelerate) and PyTorch on CPU, or a GPU when present.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datawheel.errors import MissingExtraError

if TYPE_CHECKING:
    from datawheel.improve.examples import Example
    from datawheel.improve.run import _Retrieval

log = logging.getLogger(__name__)


@dataclass
class Triplet:
    question: str
    positive: str
    negative: str


def mine_triplets(cache: _Retrieval, examples: Sequence[Example], weight: float) -> list[Triplet]:
    """One (question, helpful source, hard negative) per helpful source."""
    from datawheel.ingest import index_text

    wanted: dict[str, tuple[list[str], str | None]] = {}
    for ex in examples:
        if not ex.helpful:
            continue
        ranking = cache.ranking(ex, weight)
        head = [cid for cid, _ in ranking.hits[:30]]
        info = cache.ws.chunk_info(head)
        docs = set(ex.helpful_docs)
        negative = next(
            (c for c in head if c in info and info[c].doc_id not in docs and c not in ex.helpful),
            None,
        )
        wanted[ex.interaction_id] = (ex.helpful, negative)
    ids = {c for helpful, neg in wanted.values() for c in [*helpful, neg] if c}
    texts = {v.id: index_text(v.title, v.heading, v.text) for v in cache.ws.store.chunks(ids)}
    triplets = []
    for ex in examples:
        if ex.interaction_id not in wanted:
            continue
        helpful, negative = wanted[ex.interaction_id]
        if negative is None or negative not in texts:
            continue
        for chunk in helpful:
            if chunk in texts:
                triplets.append(Triplet(ex.question, texts[chunk], texts[negative]))
    return triplets


def train_embedder(
    base: Path,
    train: list[Triplet],
    held_out: list[Triplet],
    out: Path,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
) -> dict[str, Any]:
    """Train from ``base`` into ``out``; returns the held-out MRR per epoch and the best."""
    try:
        import datasets  # noqa: F401
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers
    except ImportError as exc:
        raise MissingExtraError("embedding fine-tuning (datasets, accelerate)", "train") from exc
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar as quiet_datasets
    from transformers.utils.logging import disable_progress_bar as quiet_transformers

    quiet_datasets()
    quiet_transformers()
    model = SentenceTransformer(str(base), device=_device())
    data = Dataset.from_dict(
        {
            "anchor": [t.question for t in train],
            "positive": [t.positive for t in train],
            "negative": [t.negative for t in train],
        }
    )
    loss = MultipleNegativesRankingLoss(model)
    history = [_held_out_mrr(model, held_out)]
    best = history[0]
    best_epoch = 0
    scratch = out.parent / f".{out.name}-trainer"
    for epoch in range(1, epochs + 1):
        args = SentenceTransformerTrainingArguments(
            output_dir=str(scratch),
            num_train_epochs=1,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=math.ceil(0.1 * len(train) / batch_size) if epoch == 1 else 0,
            lr_scheduler_type="constant_with_warmup",
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            seed=epoch,
            disable_tqdm=True,
            use_cpu=_device() == "cpu",
        )
        SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
        score = _held_out_mrr(model, held_out)
        history.append(score)
        log.info("fine-tune epoch %d: held-out MRR %.4f", epoch, score)
        if score > best:
            best, best_epoch = score, epoch
            model.save(str(out))
        elif held_out:
            break  # early stop: the held-out pairs stopped improving
    if best_epoch == 0 and not out.exists():
        model.save(str(out))  # nothing to judge by: keep the last epoch
        best_epoch = len(history) - 1
    return {"held_out_mrr": history, "best_epoch": best_epoch, "pairs": len(train)}


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def _held_out_mrr(model: Any, held_out: list[Triplet]) -> float:
    """MRR of each question's positive among all held-out positives and negatives."""
    if not held_out:
        return 0.0
    pool = list(dict.fromkeys([t.positive for t in held_out] + [t.negative for t in held_out]))
    index = {text: i for i, text in enumerate(pool)}
    q = model.encode([t.question for t in held_out], normalize_embeddings=True)
    d = model.encode(pool, normalize_embeddings=True)
    scores = np.asarray(q) @ np.asarray(d).T
    total = 0.0
    for row, t in enumerate(held_out):
        rank = int((scores[row] > scores[row, index[t.positive]]).sum())
        total += 1.0 / (rank + 1) if rank < 10 else 0.0
    return total / len(held_out) if held_out else math.nan
