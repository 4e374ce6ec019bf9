"""Tables: load a table source, clean it with declared steps and rules, quarantine the rest.

source (file or database) → read → na_values → dedupe → drop_missing → fill → standardise
→ outliers → types → rules → clean.parquet + quarantine.parquet (per run)

The specs are plain pydantic models; the pipeline (DuckDB, pyarrow) loads on first use, so
importing this package (``datawheel.config`` does, for :class:`TableSource`) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.lazy import lazy_attributes
from datawheel.tables.spec import (
    CleanSpec,
    Dedupe,
    DropMissing,
    Outliers,
    Rule,
    Standardise,
    TableSource,
)

if TYPE_CHECKING:
    from datawheel.tables.pipeline import CleanReport, RuleReport, StepReport, run_clean
    from datawheel.tables.quarantine import list_quarantined, readmit

__all__ = [
    "CleanReport",
    "CleanSpec",
    "Dedupe",
    "DropMissing",
    "Outliers",
    "Rule",
    "RuleReport",
    "Standardise",
    "StepReport",
    "TableSource",
    "list_quarantined",
    "readmit",
    "run_clean",
]

_LAZY = {
    "CleanReport": "pipeline",
    "RuleReport": "pipeline",
    "StepReport": "pipeline",
    "run_clean": "pipeline",
    "list_quarantined": "quarantine",
    "readmit": "quarantine",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
