"""``leads:`` in ``datawheel.yaml``: which table holds the deals and how to read it.

Example::

    leads:
      source: crm                       # a table source under sources:
      id_column: opportunity_id
      target: deal_stage
      positive: [Won]
      negative: [Lost]
      open: [Engaging, Prospecting]     # scored, never trained on
      time_column: engage_date          # time-ordered holdout and backtests
      exclude: [close_date, close_value]  # known only after the deal closed
      joins:
        - {path: data/accounts.csv, on: account}
      action_columns: [sales_agent, product]
      improve: {min_new_outcomes: 200, max_auc_drop: 0.03}   # when datawheel improve retrains
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class JoinConfig(_Section):
    """Another table joined onto each deal (a left join: deals without a match keep NULLs)."""

    source: str | None = Field(None, description="A table source under sources:.")
    path: str | None = Field(
        None, description="Or a file (relative: to the current folder, else the workspace)."
    )
    on: str = Field(..., description="The column both tables share (e.g. account).")

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads the bare key "on" as the boolean True
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _one_origin(self) -> JoinConfig:
        if bool(self.source) == bool(self.path):
            raise ValueError("a join needs exactly one of source (a sources: name) or path")
        return self


class LeadsImproveConfig(_Section):
    """When ``datawheel improve --app leads`` retrains, and what a challenger must win by."""

    min_new_outcomes: int = Field(
        200,
        ge=1,
        description="Retrain once this many won/lost outcomes were imported since the latest "
        "lead model was trained.",
    )
    max_auc_drop: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Retrain when the live AUC of the model in use (on its settled scores) "
        "falls more than this below the AUC measured on its holdout at training.",
    )
    min_settled: int = Field(
        100,
        ge=10,
        description="Settled scores (won and lost) needed before the live AUC is judged.",
    )
    margin: float = Field(
        0.005,
        ge=0,
        le=1,
        description="A challenger replaces the model in use only when its AUC on the same "
        "time-ordered holdout is at least this much higher.",
    )


class LeadsConfig(_Section):
    source: str | None = Field(
        None, description="The table source (under sources:) holding the deals, won, lost and open."
    )
    id_column: str = Field("id", description="The column that identifies a deal.")
    target: str = Field("outcome", description="The column saying how a deal ended.")
    positive: list[str] = Field(
        default_factory=lambda: ["won", "yes", "true", "1", "1.0"],
        description="Target values meaning won (any case).",
    )
    negative: list[str] = Field(
        default_factory=lambda: ["lost", "no", "false", "0", "0.0"],
        description="Target values meaning lost (any case).",
    )
    open: list[str] = Field(
        default_factory=list,
        description="Target values of deals still open (scored, not trained on); an empty "
        "target is open too.",
    )
    close_column: str = Field(
        "close_date",
        description="The date each won or lost deal closed (simulate-outcomes leads replays "
        "history by it).",
    )
    time_column: str | None = Field(
        None,
        description="Date column ordering the deals: the holdout and backtests use the "
        "latest ones, so no future data is used in training.",
    )
    date_format: str | None = Field(
        None,
        description="strptime format of the date columns, e.g. '%d/%m/%Y'; null: ISO, or the "
        "one format that reads the whole column.",
    )
    features: list[str] = Field(
        default_factory=list,
        description="Feature columns; default: every column except the id, target, time and "
        "excluded ones (joined columns included).",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns never used as features, e.g. those known only after the close.",
    )
    joins: list[JoinConfig] = Field(
        default_factory=list, description="Tables joined onto each deal for more features."
    )
    action_columns: list[str] = Field(
        default_factory=list,
        description="Columns a seller can change (channel, product, agent); each lead gets "
        "the option with the highest predicted close probability.",
    )
    min_group_size: int = Field(
        30, ge=1, description="Fewer closed deals than this with an option: flagged as thin data."
    )
    holdout: Literal["auto", "time", "stratified"] = Field(
        "auto",
        description="How the holdout is drawn: time (the latest deals), stratified (random, "
        "same win rate), auto (time when time_column is set).",
    )
    holdout_share: float = Field(0.2, gt=0, lt=0.5, description="Share of closed deals held out.")
    backtest_folds: int = Field(4, ge=1, le=20, description="Time-ordered backtest folds.")
    seed: int = Field(42, description="Random seed (splits, bootstrap, boosting).")
    improve: LeadsImproveConfig = Field(
        default_factory=lambda: LeadsImproveConfig(),
        description="When datawheel improve --app leads retrains, and the promotion margin.",
    )
