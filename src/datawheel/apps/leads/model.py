"""The lead model: read deals, train LightGBM with calibrated probabilities, measure honestly.

Probabilities are calibrated with Platt scaling (a logistic fit on the booster's log-odds over
a calibration split). It is monotone, so the ranking (AUC) and the direction of each
per-prediction contribution stay those of the booster.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from datawheel.apps.leads.columns import leaking_columns, numbered_ids, strong_columns
from datawheel.apps.leads.config import LeadsConfig
from datawheel.dates import parse_dates
from datawheel.errors import ConfigError
from datawheel.tables.read import ROW, ident, load
from datawheel.tables.spec import TableSource

log = logging.getLogger(__name__)

MIN_CLOSED = 50
PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 50,
    "colsample_bytree": 0.7,
    "subsample": 0.8,
    "subsample_freq": 1,
    "reg_lambda": 1.0,
    "verbose": -1,
    "n_jobs": 1,  # OpenMP threads spin when cores are shared; one is faster for CRM-sized data
}


# --- reading deals ---------------------------------------------------------------------------


def read_table(source: TableSource) -> pd.DataFrame:
    """A table source as a DataFrame of strings (types are decided per feature later; a
    clean table's typed columns are read as text too)."""
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="datawheel-leads-") as work:
            loaded = load(con, source, "raw", Path(work))
            cols = ", ".join(
                f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in loaded.columns if c != ROW
            )
            frame = con.execute(f"SELECT {cols}, {ROW} FROM raw ORDER BY {ROW}").df()
    finally:
        con.close()
    return frame.drop(columns=[ROW])


def source_of(ws: Any, name_or_path: str | Path) -> TableSource:
    """A configured source by name, else a file path."""
    if isinstance(name_or_path, str) and name_or_path in ws.config.sources:
        return ws.table_source(name_or_path)  # type: ignore[no-any-return]
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and not path.exists():
        path = ws.path / path
    if not path.exists():
        known = ", ".join(sorted(ws.config.sources)) or "none"
        raise ConfigError(f"{name_or_path} is neither a file nor a source (sources: {known})")
    return TableSource(name="leads-input", path=str(path))


def read_deals(
    ws: Any, cfg: LeadsConfig, source: TableSource | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The deals (``cfg.source`` unless given) with every join applied, and notes on the joins."""
    given = source is not None  # a file to score may lack a join key; that is reported later
    if source is None:
        if not cfg.source:
            raise ConfigError(
                "no lead source configured; set leads.source in datawheel.yaml to a table "
                "source under sources: (add one with: datawheel sources add crm deals.csv)"
            )
        source, which = ws.app_table(cfg.source)
    frame = read_table(source)
    notes: list[str] = [] if given else [which]
    for join in cfg.joins:
        other = read_table(source_of(ws, join.source or join.path or ""))
        name = join.source or Path(join.path or "").stem
        if join.on not in frame.columns and given:
            continue  # a scored file without the key: the missing-columns check names it
        if join.on not in frame.columns or join.on not in other.columns:
            raise ConfigError(
                f"join {name}: column {join.on!r} must be in both tables; deals have "
                f"{', '.join(frame.columns)}; {name} has {', '.join(other.columns)}"
            )
        other = other.drop_duplicates(subset=[join.on])
        extra = [c for c in other.columns if c != join.on and c not in frame.columns]
        missed = frame[join.on].notna() & ~frame[join.on].isin(set(other[join.on]))
        if missed.any():
            examples = ", ".join(repr(v) for v in frame.loc[missed, join.on].unique()[:3])
            notes.append(
                f"join {name} on {join.on}: {int(missed.sum()):,} of {len(frame):,} deals found "
                f"no match (e.g. {examples}); their {name} columns are missing"
            )
        frame = frame.merge(other[[join.on, *extra]], on=join.on, how="left")
    return frame, notes


def labels(frame: pd.DataFrame, cfg: LeadsConfig) -> pd.Series:
    """1 won, 0 lost, NaN open; any other target value is an error naming the values seen."""
    pos = {v.lower() for v in cfg.positive}
    neg = {v.lower() for v in cfg.negative}
    opn = {v.lower() for v in cfg.open} | {""}
    if cfg.target not in frame.columns:
        readable = [c for c in frame.columns if _reads_as_outcome(frame[c], pos, neg, opn)]
        hint = (
            f"; columns whose values read as won/lost: {', '.join(readable)}"
            if readable
            else "; leads.positive / leads.negative list the values that mean won / lost"
        )
        raise ConfigError(
            f"target column {cfg.target!r} is not in the deals: set leads.target in "
            f"datawheel.yaml to the column saying how each deal ended{hint} (columns: "
            f"{', '.join(frame.columns)})"
        )
    text = frame[cfg.target].astype("string").str.strip().str.lower()
    known = text.isna() | text.isin(pos | neg | opn)
    if not known.all():
        counts = frame.loc[~known, cfg.target].value_counts()
        seen = ", ".join(f"{v!r} ({n:,} rows)" for v, n in counts.items())
        raise ConfigError(
            f"{cfg.target} has values that are neither won ({', '.join(cfg.positive)}), lost "
            f"({', '.join(cfg.negative)}) nor open ({', '.join(cfg.open) or 'none'}): {seen}; "
            "add each to leads.positive, leads.negative or leads.open"
        )
    y = pd.Series(np.nan, index=frame.index)
    y[text.isin(pos)] = 1.0
    y[text.isin(neg)] = 0.0
    return y


def _reads_as_outcome(column: pd.Series, pos: set[str], neg: set[str], opn: set[str]) -> bool:
    """Every value is won, lost or open, and both won and lost occur."""
    values = set(column.dropna().astype("string").str.strip().str.lower().unique()[:50])
    return bool(values & pos) and bool(values & neg) and values <= pos | neg | opn


def feature_columns(frame: pd.DataFrame, cfg: LeadsConfig) -> list[str]:
    if cfg.features:
        return list(cfg.features)
    skip = {cfg.id_column, cfg.target, cfg.time_column, *cfg.exclude}
    return [c for c in frame.columns if c not in skip]


def missing_columns(frame: pd.DataFrame, features: list[str]) -> None:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"the file is missing feature column(s) {', '.join(missing)}; the model was "
            f"trained on {', '.join(features)} (columns here: {', '.join(frame.columns)})"
        )


# --- the model -------------------------------------------------------------------------------


@dataclass
class Schema:
    """How each feature is typed: numbers, or categories with their training counts."""

    numeric: list[str]
    categories: dict[str, dict[str, int]]  # column -> {value: closed deals in training}
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it is not used

    @property
    def features(self) -> list[str]:
        order = {**dict.fromkeys(self.numeric), **dict.fromkeys(self.categories)}
        return list(order)

    @classmethod
    def infer(cls, frame: pd.DataFrame, columns: list[str]) -> Schema:
        numeric: list[str] = []
        categories: dict[str, dict[str, int]] = {}
        skipped: dict[str, str] = {}
        for col in columns:
            values = frame[col].dropna()
            values = values[values.astype(str).str.strip() != ""]
            if values.empty:
                skipped[col] = "always empty"
                continue
            parsed = pd.to_numeric(values, errors="coerce")
            if parsed.notna().mean() >= 0.98:
                if numbered_ids(col, parsed):
                    skipped[col] = "a number per deal (an id), not a property of the deal"
                    continue
                numeric.append(col)
                continue
            counts = values.astype(str).value_counts()
            if len(counts) > max(50, 0.5 * len(values)):
                skipped[col] = f"{len(counts):,} distinct values (an id or free text)"
                continue
            categories[col] = {str(k): int(v) for k, v in counts.items()}
        return cls(numeric, categories, skipped)

    def matrix(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
        """Typed features; values unseen in training become missing and are returned."""
        out = pd.DataFrame(index=frame.index)
        unseen: dict[str, list[str]] = {}
        for col in self.features:
            if col in self.categories:
                cats = list(self.categories[col])
                text = frame[col].astype("string").str.strip()
                text = text.mask(text == "")
                new = text.notna() & ~text.isin(cats)
                if new.any():
                    unseen[col] = [str(v) for v in text[new].unique()]
                out[col] = pd.Categorical(text.where(~new), categories=cats)
            else:
                out[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        return out, unseen


class LeadModel:
    """LightGBM plus Platt calibration; follows the scikit-learn fit/predict_proba habit."""

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42) -> None:
        self.params = {**PARAMS, **(params or {})}
        self.seed = seed

    def fit(
        self, x: pd.DataFrame, y: np.ndarray, x_cal: pd.DataFrame, y_cal: np.ndarray
    ) -> LeadModel:
        """Boost on ``x`` (early stopping on the calibration split), then calibrate on it."""
        import lightgbm as lgb
        from sklearn.linear_model import LogisticRegression

        model = lgb.LGBMClassifier(n_estimators=2000, random_state=self.seed, **self.params)
        model.fit(
            x,
            y,
            eval_X=(x_cal,),
            eval_y=(y_cal,),
            eval_metric="auc",
            callbacks=[lgb.early_stopping(100, verbose=False)],
        )
        self.booster_ = model.booster_
        margin = np.asarray(self.booster_.predict(x_cal, raw_score=True)).reshape(-1, 1)
        platt = LogisticRegression(C=1e6).fit(margin, y_cal)
        self.calibration_ = (float(platt.coef_[0][0]), float(platt.intercept_[0]))
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        """Calibrated close probability per row (a 1-d array)."""
        a, b = self.calibration_
        margin = np.asarray(self.booster_.predict(x, raw_score=True))
        return np.asarray(1.0 / (1.0 + np.exp(-(a * margin + b))))

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """Per-row, per-feature contributions to the log-odds (last column: the bias)."""
        return np.asarray(self.booster_.predict(x, pred_contrib=True))

    def save(self, folder: Path, schema: Schema, info: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / "booster.txt"))
        meta = {"calibration": self.calibration_, "schema": asdict(schema), **info}
        (folder / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> tuple[LeadModel, Schema, dict[str, Any]]:
        import lightgbm as lgb

        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        model = cls()
        model.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        model.calibration_ = tuple(meta.pop("calibration"))  # type: ignore[assignment]
        return model, Schema(**meta.pop("schema")), meta


# --- metrics ---------------------------------------------------------------------------------


def metrics(
    y: np.ndarray, p: np.ndarray, *, base_rate: float | None = None, seed: int = 42
) -> dict[str, Any]:
    """AUC with a bootstrap 95% CI, Brier vs always predicting the base rate, top-20% lift."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    rate = float(y.mean()) if base_rate is None else base_rate
    out: dict[str, Any] = {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()),
    }
    out["brier"] = float(brier_score_loss(y, p))
    out["base_brier"] = float(np.mean((rate - y) ** 2))
    top = np.argsort(-p, kind="stable")[: max(1, int(round(0.2 * len(y))))]
    out["lift_top20"] = float(y[top].mean() / y.mean()) if y.mean() > 0 else None
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, p))
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(200):
            idx = rng.integers(0, len(y), len(y))
            if 0 < y[idx].sum() < len(y):
                boots.append(roc_auc_score(y[idx], p[idx]))
        out["auc_ci"] = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    else:
        out["auc"], out["auc_ci"] = None, None
    out["calibration"] = calibration(y, p)
    out["signal"] = out["auc_ci"] is not None and out["auc_ci"][0] > 0.5
    out["verdict"] = verdict(out)
    return out


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 5) -> list[dict[str, float]]:
    """Mean predicted vs observed win rate in equal-size bins of predicted probability."""
    order = np.argsort(p, kind="stable")
    return [
        {"predicted": float(p[i].mean()), "observed": float(y[i].mean()), "n": int(len(i))}
        for i in np.array_split(order, bins)
        if len(i)
    ]


def verdict(m: dict[str, Any]) -> str:
    if m.get("auc") is None:
        return "AUC undefined: the evaluation rows are all won or all lost"
    lo, hi = m["auc_ci"]
    head = f"AUC {m['auc']:.2f} (CI {lo:.2f}–{hi:.2f})"
    if hi < 0.5:
        return f"{head}: worse than chance; do not rank leads by it"
    if lo <= 0.5:
        return f"{head}: no better than chance; do not rank leads by it"
    return f"{head}: better than chance (Brier {m['brier']:.3f} vs {m['base_brier']:.3f} " + (
        "for the base rate)"
    )


# --- splits and training ---------------------------------------------------------------------


def split(
    closed: pd.DataFrame, y: np.ndarray, cfg: LeadsConfig, share: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Positions of the (train, holdout) rows; time-ordered when the config allows."""
    how = cfg.holdout
    if how == "auto":
        how = "time" if cfg.time_column else "stratified"
    n = len(closed)
    if how == "time":
        order = np.argsort(time_order(closed, cfg), kind="stable")
        cut = int(round(n * (1 - share)))
        return order[:cut], order[cut:], f"time-ordered (latest {share:.0%} held out)"
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), test_size=share, stratify=y, random_state=cfg.seed)
    return np.sort(train), np.sort(test), f"stratified random {share:.0%}"


def time_order(frame: pd.DataFrame, cfg: LeadsConfig) -> np.ndarray:
    """A sortable number per row: the time column, else the row's position in the file."""
    if not cfg.time_column:
        return np.arange(len(frame), dtype=float)
    if cfg.time_column not in frame.columns:
        raise ConfigError(
            f"time column {cfg.time_column!r} is not in the deals; "
            f"columns: {', '.join(frame.columns)}"
        )
    when = parse_dates(frame[cfg.time_column], cfg.date_format, "leads.date_format")
    if when.isna().all():
        raise ConfigError(
            f"{cfg.time_column} holds no dates; set leads.time_column to a date column"
        )
    # undated rows sort with the latest, so they are held out rather than trained on
    return np.asarray(when.fillna(when.max()).astype("int64"), dtype=float)


def fit(x: pd.DataFrame, y: np.ndarray, cfg: LeadsConfig, order: np.ndarray | None) -> LeadModel:
    """Fit on the earliest 80% of ``x`` (or a stratified 80%), calibrate on the rest."""
    if order is not None:  # time-ordered: early-stop and calibrate on the latest 20%
        pos = np.argsort(order, kind="stable")
        cut = int(round(len(pos) * 0.8))
        train, cal = pos[:cut], pos[cut:]
    else:
        from sklearn.model_selection import train_test_split

        train, cal = train_test_split(
            np.arange(len(y)), test_size=0.2, stratify=y, random_state=cfg.seed
        )
    if len(set(y[cal])) < 2 or len(set(y[train])) < 2:
        raise ConfigError("too few won or lost deals to train and calibrate; add closed deals")
    return LeadModel(seed=cfg.seed).fit(x.iloc[train], y[train], x.iloc[cal], y[cal])


@dataclass
class Dataset:
    """Closed deals ready for training, and the open ones."""

    frame: pd.DataFrame
    y: pd.Series
    schema: Schema
    notes: list[str]
    left_out: set[str] = field(default_factory=set)  # excluded, or found to leak the outcome

    @property
    def closed(self) -> pd.DataFrame:
        return self.frame[self.y.notna()].reset_index(drop=True)

    @property
    def open(self) -> pd.DataFrame:
        return self.frame[self.y.isna()].reset_index(drop=True)

    @property
    def labels(self) -> np.ndarray:
        return self.y.dropna().to_numpy(dtype=int)


def with_outcomes(
    ws: Any, frame: pd.DataFrame, y: pd.Series, cfg: LeadsConfig, notes: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """The deals with the outcomes imported since (``datawheel leads outcomes``): an open
    deal of the table that was won or lost takes that outcome, and a scored deal that is not
    in the table joins it with the features it was scored on (from the prediction log), so
    retraining learns from them without the source file being updated."""
    actual = {str(k): v for k, v in ws.predictions.actuals("leads").items()}
    if not actual or cfg.id_column not in frame.columns:
        return frame, y
    ids = frame[cfg.id_column].astype("string").str.strip()
    y = y.copy()
    settle = y.isna() & ids.isin(actual).fillna(False)
    y[settle] = [float(actual[i]) for i in ids[settle]]
    known = set(ids.dropna())
    extra = []
    for p in ws.predictions.predictions("leads", [e for e in actual if e not in known]):
        extra.append({**(p.inputs or {}), cfg.id_column: p.entity})  # the latest wins below
    added = 0
    if extra:
        rows = pd.DataFrame(extra).drop_duplicates(subset=[cfg.id_column], keep="last")
        rows = rows[[c for c in rows.columns if c in frame.columns]]
        outcome = pd.Series([float(actual[e]) for e in rows[cfg.id_column]], dtype="float64")
        frame = pd.concat([frame, rows], ignore_index=True)
        y = pd.concat([y.reset_index(drop=True), outcome], ignore_index=True)
        added = len(rows)
    if settle.any() or added:
        notes.append(
            f"imported outcomes: {int(settle.sum()):,} open deals of the table settled, "
            f"{added:,} scored deals not in it added with the features they were scored on"
        )
    return frame, y


def dataset(ws: Any, cfg: LeadsConfig) -> Dataset:
    frame, notes = read_deals(ws, cfg)
    y = labels(frame, cfg)
    frame, y = with_outcomes(ws, frame, y, cfg, notes)
    features = feature_columns(frame, cfg)
    missing_columns(frame, features)
    closed = frame[y.notna()]
    won = int(y.sum())
    if len(closed) < MIN_CLOSED or won < 10 or len(closed) - won < 10:
        raise ConfigError(
            f"{len(closed):,} closed deals ({won:,} won): at least {MIN_CLOSED} with 10 won and "
            "10 lost are needed; check leads.positive/negative or import more history"
        )
    left_out = set(cfg.exclude)
    for col, why in leaking_columns(frame, y, features).items():
        if cfg.features:  # the user's own list: kept, but said
            notes.append(f"{col} may give the outcome away: {why}")
            continue
        features.remove(col)
        left_out.add(col)
        notes.append(
            f"{col} is not used as a feature: it gives the outcome away ({why}); "
            "list it in leads.exclude to silence this, or in leads.features to use it anyway"
        )
    for col, auc in strong_columns(frame, y, features).items():
        notes.append(
            f"{col} alone separates won from lost (AUC {auc:.2f}): if it is only known once "
            "the outcome is (a call's duration, a final price), add it to leads.exclude, or "
            "the model will score new leads on a value they do not have yet"
        )
    schema = Schema.infer(closed, features)
    for col, why in schema.skipped.items():
        notes.append(f"{col} is not used as a feature: {why}")
    for col in cfg.action_columns:
        if col not in schema.categories:
            notes.append(
                f"action column {col} is not a categorical feature of the model; "
                "no next action is suggested for it"
            )
    return Dataset(frame, y, schema, notes, left_out)
