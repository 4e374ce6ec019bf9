"""Improve: candidates from feedback, judged on held-out data, promoted, kept for rollback."""

from datawheel.improve.run import ImproveReport, NotEnoughFeedback, load_current, run_improve

__all__ = ["ImproveReport", "NotEnoughFeedback", "load_current", "run_improve"]
