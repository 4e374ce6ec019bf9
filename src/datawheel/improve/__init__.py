"""Improve: candidates from feedback, judged on held-out data, promoted, kept for rollback.

The learners (LightGBM, SciPy, sentence-transformers) load on first use: importing this
package, or its registry, stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datawheel.lazy import lazy_attributes

if TYPE_CHECKING:
    from datawheel.improve.run import ImproveReport, NotEnoughFeedback, load_current, run_improve

__all__ = ["ImproveReport", "NotEnoughFeedback", "load_current", "run_improve"]


__getattr__ = lazy_attributes(__name__, {name: "run" for name in __all__})
