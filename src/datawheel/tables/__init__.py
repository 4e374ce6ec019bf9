"""Tables: load a table source, clean it with declared steps and rules, quarantine the rest.

source (file or database) → read → dedupe → drop_missing → fill → standardise
→ outliers → types → rules → clean.parquet + quarantine.parquet (per run)
"""

from datawheel.tables.pipeline import CleanReport, RuleReport, StepReport, run_clean
from datawheel.tables.quarantine import list_quarantined, readmit
from datawheel.tables.spec import (
    CleanSpec,
    Dedupe,
    DropMissing,
    Outliers,
    Rule,
    Standardise,
    TableSource,
)

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
