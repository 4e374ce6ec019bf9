"""The Workspace verbs of the flywheel: ask, vote, improve, A/B test, versions, reports.

A mixin of :class:`datawheel.workspace.Workspace`; each verb hands the work to
:mod:`datawheel.apps.rag`, :mod:`datawheel.feedback` or :mod:`datawheel.improve`.

Example:
    >>> ws = Workspace.open("kb")
    >>> answer = ws.ask("How long do refunds take?")
    >>> ws.feedback(answer.id, "down", correction="Five working days.")
    >>> ws.improve().promoted
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datawheel.errors import ConfigError
from datawheel.ingest import Progress
from datawheel.workspace_part import WorkspacePart

_KINDS = ("rag", "leads", "forecast")  # the apps with versions in the registry


def _kind(app: str) -> str:
    if app not in _KINDS:
        raise ConfigError(f"no app {app!r} with versions; choose one of: {', '.join(_KINDS)}")
    return app


class FeedbackMixin(WorkspacePart):
    """Answers, votes and what the flywheel learns from them (``datawheel ask``, ``feedback``,
    ``improve``, ``ab``, ``versions``, ``rollback``, ``report``)."""

    def ask(
        self,
        question: str,
        *,
        user: str = "anonymous",
        groups: Sequence[str] | None = None,
        k: int | None = None,
        record: bool = True,
    ) -> Any:
        """Answer a question with numbered citations; the interaction is logged first.

        Args:
            user: who asks (one vote per user per interaction).
            groups: the caller's groups; only documents shared with them are cited.
            k: sources to retrieve and show (default ``generation.sources``).
            record: log the interaction (evaluation runs pass False).
        """
        from datawheel.apps.rag.answer import ask

        return ask(self._ws, question, user=user, groups=groups, k=k, record=record)

    def feedback(
        self,
        interaction_id: str,
        vote: str,
        *,
        user: str = "anonymous",
        comment: str | None = None,
        correction: str | None = None,
        helpful: Sequence[str] = (),
        failure: str | None = None,
    ) -> Any:
        """Record a 👍/👎 on an answer; a user's latest vote replaces their earlier one.

        Args:
            vote: ``up`` or ``down``.
            helpful: chunk ids (``chunk:`` prefix allowed) of the sources that helped.
            failure: ``wrong_source`` (retrieval failed) or ``wrong_answer``.
            correction: the right answer; it becomes a curated answer at the next improve.
        """
        return self._ws.interactions.vote(
            interaction_id,
            vote,
            user=user,
            comment=comment,
            correction=correction,
            helpful=helpful,
            failure=failure,
        )

    def recent_interactions(self, *, limit: int = 50, user: str | None = None) -> list[Any]:
        """The newest interactions first; ``user`` limits them to one asker's."""
        return self._ws.interactions.recent(limit, user)

    def interaction(self, interaction_id: str, *, user: str | None = None) -> dict[str, Any]:
        """One interaction with its votes; with ``user``, only if that user asked it."""
        from datawheel.errors import NotFoundError

        item = self._ws.interactions.get(interaction_id)
        if user is not None and item.user != user:
            raise NotFoundError(f"no interaction {interaction_id!r} of yours")
        votes = self._ws.interactions.feedback([item.id])
        return {**item.to_dict(), "feedback": [v.__dict__ for v in votes]}

    def improve(self, *, progress: Progress | None = None, **overrides: Any) -> Any:
        """Build candidates from feedback, judge them on held-out feedback, promote a winner."""
        from datawheel.improve import run_improve

        run_id = self.store.start_run("improve", {k: str(v) for k, v in overrides.items()})
        try:
            report = run_improve(self._ws, progress=progress, **overrides)
        except BaseException:
            self.store.finish_run(run_id, "failed", {})
            raise
        report.warnings.extend(self._push_models())
        self.store.finish_run(
            run_id, "finished", {"promoted": report.promoted, "examples": report.examples}
        )
        return report

    def improve_app(self, app: str, *, force: bool = False) -> Any:
        """Retrain a predictive app (``leads`` or ``forecast``) when enough outcomes arrived
        or its live accuracy decayed (or ``force``); promote the challenger only when it
        beats the version in use on a time-ordered holdout (``datawheel.improve.tabular``).
        """
        from datawheel.improve.tabular import improve_app

        if app in ("leads", "forecast"):
            self._fetch_current(app)
        run_id = self.store.start_run("improve", {"app": app, "force": str(force)})
        try:
            report = improve_app(self._ws, app, force=force)
        except BaseException:
            self.store.finish_run(run_id, "failed", {})
            raise
        counts = {"app": app, "version": report.version, "promoted": report.promoted}
        self.store.finish_run(run_id, "finished", counts)
        self._push_models()
        return report

    def ab_status(self) -> Any:
        """The online A/B test: per-variant votes, P(challenger better), the rule's verdict."""
        from datawheel.improve import ab

        return ab.status(self._ws)

    def ab_decide(self, override: str | None = None, *, by: str = "scheduler") -> Any:
        """Apply the A/B rules now, or a manual ``promote`` / ``stop``; logged with the reason."""
        from datawheel.improve import ab

        return ab.decide(self._ws, override, by=by)

    def versions(self, app: str = "rag") -> list[dict[str, Any]]:
        """Every model version of ``app`` (rag, leads or forecast) with its metrics;
        ``current`` marks the one in use."""
        from datawheel.improve.registry import Registry

        return Registry(self.store, kind=_kind(app)).versions()

    def rollback(self, version: str | None = None, *, app: str = "rag") -> str | None:
        """Put a kept version back in use (default: the one before the current).

        Returns the version now in use; ``None`` means the baseline (no learned parts).
        For ``app="leads"`` or ``"forecast"`` the previous promoted version comes back.
        """
        from datawheel.improve import ab
        from datawheel.improve.registry import CURRENT, Registry

        if _kind(app) != "rag":
            return self._rollback_app(app, version)
        registry = Registry(self.store)
        target = registry.rollback_target(version)
        if ab.running(self._ws) is not None:
            ab.decide(self._ws, "stop", by="rollback")
        if target is None:
            registry.promote("")
            self.store.set_state(CURRENT, "")
        else:
            registry.promote(target)
        self._ws.reload_model()
        return target

    def _rollback_app(self, app: str, version: str | None) -> str:
        from datawheel.improve.registry import Registry

        registry = Registry(self.store, kind=app)
        target = registry.rollback_target(version)
        if target is None:
            raise ConfigError(
                f"nothing to roll back to: {registry.current()} is the first {app} version "
                f"in use; see them all with: datawheel versions --app {app}"
            )
        registry.promote(target)
        return target

    def report(self, *, weeks: int = 1) -> Any:
        """Weekly satisfaction, volume, answer rate, p95 latency and content gaps.

        When satisfaction is below ``improve.satisfaction_threshold`` and
        ``improve.auto_improve`` is on, improve runs and its report is attached.
        """
        from datawheel.feedback.report import weekly_report

        report = weekly_report(self._ws, weeks=weeks)
        if report.below_threshold and self.config.improve.auto_improve:
            from datawheel.improve import NotEnoughFeedback

            try:
                report.improve = self.improve().to_dict()
            except NotEnoughFeedback as exc:
                report.improve = {"error": str(exc)}
        return report

    def dashboard(self, *, days: int = 30, weeks: int = 8) -> dict[str, Any]:
        """The dashboard's numbers: satisfaction per week, daily questions, answer rate, p95
        latency and active users, evaluations per model version, data volume, open alerts,
        adoption, the A/B test and ROI (see ``datawheel.feedback.dashboard``)."""
        from datawheel.feedback.dashboard import build_dashboard

        return build_dashboard(self._ws, days=days, weeks=weeks)

    def export_feedback(self, path: str | Path, *, fmt: str = "openai") -> int:
        """Write 👍 and corrected answers as fine-tuning JSONL; returns the number written."""
        from datawheel.improve.export import export_pairs

        return export_pairs(self._ws, Path(path), fmt)

    def simulate(
        self,
        beir: str | Path,
        *,
        train_split: str = "train",
        test_split: str = "test",
        progress: Progress | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Replay a BEIR train split as users with feedback, improve, and measure the test
        split before and after. Use a scratch workspace: it adds interactions and versions."""
        from datawheel.evaluate.simulate import simulate

        return simulate(
            self._ws,
            Path(beir),
            train_split=train_split,
            test_split=test_split,
            progress=progress,
            **settings,
        )
