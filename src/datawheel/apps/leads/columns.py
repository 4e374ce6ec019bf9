"""Which columns of a deals table may be features: those that give the outcome away (known
only at the close), those that alone separate won from lost suspiciously well, and numbered
ids.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


def leaking_columns(frame: pd.DataFrame, y: pd.Series, features: list[str]) -> dict[str, str]:
    """Features that give the outcome away, with why: recorded at the close (filled for
    closed deals, empty for open ones, like a close date or value), filled for one outcome
    only (like a lost reason), or separating won from lost on their own (AUC >= 0.99, like a
    value that is 0 for every lost deal)."""
    from sklearn.metrics import roc_auc_score

    closed, still_open = y.notna(), y.isna()
    found: dict[str, str] = {}
    for col in features:
        text = frame[col].astype("string").str.strip()
        filled = (text.notna() & (text != "")).fillna(False).astype(bool)
        in_closed, in_open = filled[closed].mean(), filled[still_open].mean()
        if still_open.sum() >= 10 and in_closed >= 0.9 and in_open <= 0.1:
            found[col] = (
                f"filled for {in_closed:.0%} of closed deals and {in_open:.0%} of open ones, "
                "so it is recorded at the close"
            )
            continue
        outcome = y[closed]
        if outcome.nunique() == 2 and filled[closed].nunique() == 2:
            auc = float(roc_auc_score(outcome, filled[closed]))
            if max(auc, 1 - auc) >= 0.99:
                found[col] = "whether it is filled alone tells won from lost"
                continue
        alone = numeric_auc(frame, y, col)
        if alone is None:
            alone = category_auc(frame, y, col)
        if alone is not None and alone >= 0.99:
            found[col] = f"alone it tells won from lost (AUC {alone:.3f})"
    return found


#: A number that alone ranks won above lost this well is worth a second look: it may be
#: known only once the outcome is (the UCI bank data's call duration: 0.82; the next: 0.75).
STRONG_AUC = 0.8


def strong_columns(frame: pd.DataFrame, y: pd.Series, features: list[str]) -> dict[str, float]:
    """Features that alone separate won from lost with AUC in [0.8, 0.99): numbers by their
    value, categories by their won share (measured out of fold)."""
    found = {}
    for col in features:
        auc = numeric_auc(frame, y, col)
        if auc is None:
            auc = category_auc(frame, y, col)
        if auc is not None and STRONG_AUC <= auc < 0.99:
            found[col] = auc
    return found


def category_auc(frame: pd.DataFrame, y: pd.Series, col: str, folds: int = 5) -> float | None:
    """How well a category column alone ranks won above lost (0.5-1): each closed deal is
    scored by the won share of its category among the other folds' deals (so a category seen
    once scores nothing), None for number columns or near-unique ones (ids, free text)."""
    from sklearn.metrics import roc_auc_score

    closed = y.notna()
    if closed.sum() < 20 or numeric_auc(frame, y, col) is not None:
        return None
    values = frame[col][closed].astype("string").fillna("<missing>").str.strip()
    if not 2 <= values.nunique() <= max(2, len(values) // 5):
        return None
    outcome = y[closed].to_numpy(dtype=float)
    if outcome.min() == outcome.max():
        return None
    prior = float(outcome.mean())
    fold = np.arange(len(values)) % folds
    scores = np.empty(len(values))
    for k in range(folds):
        rest = pd.DataFrame({"v": values.to_numpy()[fold != k], "y": outcome[fold != k]})
        stats = rest.groupby("v")["y"].agg(["sum", "count"])
        share = (stats["sum"] + 10 * prior) / (stats["count"] + 10)  # shrunk to the base rate
        scores[fold == k] = [share.get(v, prior) for v in values.to_numpy()[fold == k]]
    auc = float(roc_auc_score(outcome, scores))
    return max(auc, 1 - auc)


def numeric_auc(frame: pd.DataFrame, y: pd.Series, col: str) -> float | None:
    """How well ``col`` alone ranks won above lost or the reverse (0.5-1), for a column of
    numbers on closed deals; None for other columns."""
    from sklearn.metrics import roc_auc_score

    closed = y.notna()
    numbers = pd.to_numeric(frame.loc[closed, col], errors="coerce")
    known = numbers.notna()
    if known.mean() < 0.98 or numbers[known].nunique() < 2:
        return None
    outcome = y[closed][known]
    if outcome.nunique() < 2:
        return None
    auc = float(roc_auc_score(outcome, numbers[known]))
    return max(auc, 1 - auc)


_ID_WORD = re.compile(r"(?:^|[\s_.-])(?:id|key|no|nr|num|number)$", re.I)  # lead_id, Lead No
_ID_CAMEL = re.compile(r"[a-z](?:Id|ID|Key|No|Number)$")  # LeadId, prospectID


def numbered_ids(name: str, numbers: pd.Series) -> bool:
    """An id column of numbers (lead_id, LeadNumber): named like one, whole and distinct.
    As a feature it would stand for when the deal was entered and mean nothing for new ids."""
    known = numbers.dropna()
    return (
        bool(_ID_WORD.search(name.strip()) or _ID_CAMEL.search(name.strip()))
        and len(known) >= 20
        and known.is_unique
        and bool((known == known.round()).all())
    )
