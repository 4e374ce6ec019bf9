"""What the lead-scoring tests share: the CRM export's location and config, a CSV writer."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from datawheel.apps.leads import LeadsConfig

CRM = Path(__file__).resolve().parents[3] / "shared/datasets/crm_sales_opportunities"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def crm_config() -> LeadsConfig:
    """The CRM pipeline: won/lost closed deals, accounts/products/teams joined."""
    return LeadsConfig(
        source="crm",
        id_column="opportunity_id",
        target="deal_stage",
        positive=["Won"],
        negative=["Lost"],
        open=["Engaging", "Prospecting"],
        time_column="engage_date",
        exclude=["close_date", "close_value"],
        joins=[
            {"path": str(CRM / "accounts.csv"), "on": "account"},
            {"path": str(CRM / "products.csv"), "on": "product"},
            {"path": str(CRM / "sales_teams.csv"), "on": "sales_agent"},
        ],
        action_columns=["sales_agent", "product"],
    )
