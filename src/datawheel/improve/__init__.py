"""Improve: candidates from feedback, judged on held-out data, promoted, kept for rollback.

The learners (LightGBM, SciPy, sentence-transformers) load on first use: importing this
package, or its registry, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datawheel.improve.run import ImproveReport, NotEnoughFeedback, load_current, run_improve

__all__ = ["ImproveReport", "NotEnoughFeedback", "load_current", "run_improve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from datawheel.improve import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
