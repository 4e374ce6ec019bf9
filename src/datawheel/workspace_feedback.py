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
from typing import TYPE_CHECKING, Any, NamedTuple

from datawheel.errors import ConfigError
from datawheel.ingest import Progress
from datawheel.workspace_part import WorkspacePart

if TYPE_CHECKING:
    from datawheel.feedback.visibility import Visibility
    from datawheel.users import User


class _Asked(NamedTuple):
    id: str
    user: str


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
        conversation: str | None = None,
        earlier: Sequence[str] | None = None,
    ) -> Any:
        """Answer a question with numbered citations; the interaction is logged first.

        Args:
            user: who asks (one vote per user per interaction).
            groups: the caller's groups; only documents shared with them are cited.
            k: sources to retrieve and show (default ``generation.sources``).
            record: log the interaction (evaluation runs pass False).
            conversation: a conversation id: a follow-up ("and for jackets?") is searched
                with the user's earlier turns of it, and the turn is stored under it.
            earlier: the earlier questions of a chat, oldest first, when the client keeps
                the history (the OpenAI-compatible endpoint).
        """
        from datawheel.apps.rag.answer import ask

        return ask(
            self._ws,
            question,
            user=user,
            groups=groups,
            k=k,
            record=record,
            conversation=conversation,
            earlier=earlier,
        )

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
        own_only: bool = False,
    ) -> Any:
        """Record a 👍/👎 on an answer; a user's latest vote replaces their earlier one.

        Args:
            vote: ``up`` or ``down``.
            helpful: chunk ids (``chunk:`` prefix allowed) of the sources that helped.
            failure: ``wrong_source`` (retrieval failed), ``wrong_answer`` or
                ``not_in_sources`` (it should have declined).
            correction: the right answer; once an editor approves it (``datawheel
                corrections approve``) it becomes a curated answer at the next improve.
            own_only: only on an answer ``user`` was shown, by its full id (the service).
        """
        return self._ws.interactions.vote(
            interaction_id,
            vote,
            user=user,
            comment=comment,
            correction=correction,
            helpful=helpful,
            failure=failure,
            own_only=own_only,
        )

    def visibility(self, reader: User | None) -> Visibility:
        """The visibility rule for ``reader`` (None: the workspace's owner sees everything)."""
        from datawheel.feedback.visibility import Visibility

        return Visibility(reader, self.store.doc_groups)

    def _audit(self, reader: User | None, action: str, items: Sequence[Any]) -> None:
        """Record an editor's or admin's read of other users' content."""
        from datawheel.feedback.audit import AuditLog

        if reader is not None:
            AuditLog(self.store.engine).record(
                reader.name, action, self.visibility(reader).others(items)
            )

    def recent_interactions(
        self, *, limit: int = 50, user: str | None = None, reader: User | None = None
    ) -> list[Any]:
        """The newest interactions first that ``reader`` may see; ``user`` limits them to
        one asker's. Reads of other users' interactions are recorded in the audit log."""
        rule = self.visibility(reader)
        if rule.sees_all or (reader is not None and reader.has_role("editor")):
            found = self._ws.interactions.recent(limit, user)
        else:  # a viewer: their own, whatever ``user`` says
            found = self._ws.interactions.recent(limit, reader.name if reader else user)
        items = rule.visible(found)
        self._audit(reader, "list_interactions", items)
        return items

    def interaction(self, interaction_id: str, *, reader: User | None = None) -> dict[str, Any]:
        """One interaction with its votes, if ``reader`` may see it (else "not found", so an
        id reveals nothing). Reads of another user's interaction are audited."""
        from datawheel.errors import NotFoundError

        try:
            item = self._ws.interactions.get(interaction_id)
        except NotFoundError:
            item = None
        if (
            item is None
            or (reader is not None and len(interaction_id.strip()) != 32)
            or (not self.visibility(reader).sees(item))
        ):
            raise NotFoundError(  # the same words whether it exists or not
                "no interaction with this id that you may read; use the full id (32 hex "
                "characters) that ask returned"
            )
        self._audit(reader, "read_interaction", [item])
        votes = self._ws.interactions.feedback([item.id])
        return {**item.to_dict(), "feedback": [v.__dict__ for v in votes]}

    def corrections(self, status: str | None = "pending", *, reader: User | None = None) -> Any:
        """The review queue (corrections and 👎 comments) that ``reader`` may see."""
        from datawheel.feedback.review import ReviewQueue

        items = self.visibility(reader).visible(ReviewQueue(self.store.engine).items(status))
        self._audit(reader, "list_corrections", [_Asked(i.interaction_id, i.asker) for i in items])
        return items

    def review(self, item_id: str, decision: str, *, by: User | None = None) -> Any:
        """Approve or reject a correction or comment; approved corrections become curated
        answers at the next improve. An editor may decide only on what they may read."""
        from datawheel.errors import AccessError, NotFoundError
        from datawheel.feedback.review import ReviewQueue

        queue = ReviewQueue(self.store.engine)
        item = queue.get(item_id)
        if by is not None:
            by.require("editor")
            if not self.visibility(by).sees(item):
                raise NotFoundError(f"no correction or comment {item_id!r} that you may read")
            if item.author == by.name and by.role != "admin":
                raise AccessError(
                    "an editor cannot approve their own correction; ask another editor or an admin"
                )
        return queue.decide(item, decision, by=by.name if by else "owner")

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """Who read other users' questions and answers, newest first (for admins)."""
        from datawheel.feedback.audit import AuditLog

        return AuditLog(self.store.engine).recent(limit)

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

    def report(
        self, *, weeks: int = 1, reader: User | None = None, auto_improve: bool = True
    ) -> Any:
        """Weekly satisfaction, volume, answer rate, p95 latency and content gaps.

        ``reader`` sees the questions behind the gaps only where the visibility rule lets
        them (viewers: aggregates only). When satisfaction is below
        ``improve.satisfaction_threshold`` and ``improve.auto_improve`` is on (and
        ``auto_improve``), improve runs and its report is attached.
        """
        from datawheel.feedback.report import weekly_report

        report = weekly_report(self._ws, weeks=weeks, rule=self.visibility(reader))
        self._audit(reader, "read_report", report.shown_items)
        if report.below_threshold and self.config.improve.auto_improve and auto_improve:
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
