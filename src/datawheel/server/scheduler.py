"""Jobs inside ``datawheel serve``: monitor, weekly report, improve and A/B decisions.

Schedules are cron expressions in ``schedules:``; every run is recorded in the store as a
run of kind ``job:<name>`` with its outcome, so it shows in ``/api/jobs`` and the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from datawheel.errors import DatawheelError

if TYPE_CHECKING:
    from datawheel.server.service import Service

log = logging.getLogger(__name__)


def _monitor(svc: Service) -> dict[str, Any]:
    with svc.reading() as ws:
        report = ws.monitor()
    return {"exit_code": report.exit_code}


def _report(svc: Service) -> dict[str, Any]:
    with svc.reading() as ws:
        report = ws.report()
    data = report.to_dict()
    return {k: data[k] for k in ("satisfaction", "questions") if k in data}


def _improve(svc: Service) -> dict[str, Any]:
    with svc.writing() as ws:
        report = ws.improve()
    return {"promoted": report.promoted, "challenger": report.challenger}


def _ab(svc: Service) -> dict[str, Any]:
    with svc.writing() as ws:
        if ws.ab_status().decision != "continue":
            return {"decision": "no test running"}
        result = ws.ab_decide()
    return {"decision": result.decision, "reason": result.reason}


JOBS: dict[str, Callable[[Service], dict[str, Any]]] = {
    "monitor": _monitor,
    "report": _report,
    "improve": _improve,
    "ab": _ab,
}


def plan(schedules: Any) -> list[dict[str, Any]]:
    """The configured jobs and their next run times, worked out from ``schedules:`` alone.

    With several workers only one runs the jobs; the others answer ``/api/jobs`` from this,
    so every worker shows the same plan.
    """
    now = datetime.now(ZoneInfo(schedules.timezone))
    planned = []
    for name in JOBS:
        expression = getattr(schedules, name)
        if not expression.strip():
            continue
        trigger = CronTrigger.from_crontab(expression, timezone=schedules.timezone)
        next_run = trigger.get_next_fire_time(None, now)
        planned.append(
            {
                "job": name,
                "schedule": expression,
                "next_run": next_run.isoformat() if next_run else None,
            }
        )
    return sorted(planned, key=_soonest)


def _soonest(job: dict[str, Any]) -> tuple[str, str]:
    return (job["next_run"] or "~", job["job"])  # ISO times in one zone sort as text


class Scheduler:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        cfg = svc.ws.config.schedules
        self._scheduler = BackgroundScheduler(timezone=cfg.timezone)
        for name in JOBS:
            expression = getattr(cfg, name)
            if expression.strip():
                self._scheduler.add_job(
                    self.run,
                    CronTrigger.from_crontab(expression, timezone=cfg.timezone),
                    args=[name],
                    id=name,
                    max_instances=1,
                    coalesce=True,
                )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)

    def planned(self) -> list[dict[str, Any]]:
        jobs = [
            {
                "job": job.id,
                "schedule": getattr(self.svc.ws.config.schedules, job.id),
                "next_run": job.next_run_time.isoformat() if job.next_run_time else None,
            }
            for job in self._scheduler.get_jobs()
        ]
        return sorted(jobs, key=_soonest)

    def run(self, name: str) -> dict[str, Any]:
        """Run one job now and record it; a failure is recorded, never raised."""
        store = self.svc.ws.store
        run_id = store.start_run(f"job:{name}", {})
        try:
            counts = JOBS[name](self.svc)
        except Exception as exc:  # a job's failure must not stop the scheduler
            if isinstance(exc, DatawheelError):
                log.warning("job %s: %s", name, exc)
            else:
                log.exception("job %s failed", name)
            store.finish_run(run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            return {"status": "failed", "error": str(exc)}
        store.finish_run(run_id, "finished", counts)
        return {"status": "finished", **counts}
