"""The Workspace verbs for tables: sources, cleaning, quarantine, inventory and monitoring.

A mixin of :class:`datawheel.workspace.Workspace`; the work is done in
:mod:`datawheel.tables` and :mod:`datawheel.monitor`.

Example:
    >>> ws = Workspace.open("kb")
    >>> ws.add_source("crm", "sales_pipeline.csv")
    >>> print(ws.clean("crm").render())
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from datawheel.config import CONFIG_FILE, add_source_entry
from datawheel.errors import ConfigError
from datawheel.workspace_part import WorkspacePart


class TablesMixin(WorkspacePart):
    """Table sources: register, clean, quarantine, readmit, inventory, monitor."""

    # -- tables ---------------------------------------------------------------------------

    def table_source(self, name: str) -> Any:
        """The ``sources:`` entry called ``name``, with a relative path made absolute."""
        source = self.config.sources.get(name)
        if source is None:
            known = ", ".join(sorted(self.config.sources)) or "none yet"
            raise ConfigError(
                f"no table source {name!r} in {self.path / CONFIG_FILE} (known: {known}); "
                "add it under sources: (see the commented example there)"
            )
        if source.path and not Path(source.path).expanduser().is_absolute():
            source = source.model_copy(update={"path": str(self.path / source.path)})
        return source

    def add_source(
        self, name: str, location: str, *, table: str | None = None, query: str | None = None
    ) -> Any:
        """Register a table source in ``datawheel.yaml`` (comments kept) and return it.

        Args:
            location: a file (CSV, TSV, Parquet, JSON lines, Excel) or a SQLAlchemy URL.
            table / query: with a URL, the table to read or a SELECT to run.
        """
        if name in self.config.sources:
            raise ConfigError(
                f"a source called {name!r} already exists; pick another name "
                "or edit it in datawheel.yaml"
            )
        entry: dict[str, Any] = {}
        if re.match(r"^[a-z0-9+]+://[^/@:]+:[^/@]+@", location):
            raise ConfigError(
                "this URL holds a password, which must not be written into datawheel.yaml; "
                "export it instead (export CRM_DB='...') and pass env:CRM_DB"
            )
        if "://" in location or location.startswith("env:"):
            if not (table or query):
                raise ConfigError("a database source needs --table NAME or --query 'SELECT ...'")
            entry["url"] = location
            entry.update({k: v for k, v in (("table", table), ("query", query)) if v})
        else:
            path = Path(location).expanduser().resolve()
            if not path.exists():
                raise ConfigError(f"{path} does not exist; check the path")
            entry["path"] = str(path)
        config = add_source_entry(self.path / CONFIG_FILE, name, entry)
        self.config = config
        return self.table_source(name)

    def preview_source(self, name: str, rows: int = 5) -> Any:
        """A table source's columns and first ``rows`` rows (a :class:`Preview`), with a hint
        when its header looks like a title line."""
        from datawheel.tables.read import preview

        return preview(self.table_source(name), rows)

    def clean(
        self,
        name: str,
        *,
        memory_limit: str = "2GB",
        engine: str = "duckdb",
        spark_master: str | None = None,
    ) -> Any:
        """Clean a table source with its declared steps and rules.

        Rows failing any rule go to the quarantine with every reason; the clean table and
        the quarantine are written as Parquet under ``tables/<name>/run-<n>/``.

        Args:
            engine: ``duckdb`` (this machine) or ``spark`` (extra ``[spark]``): the same
                steps with the same results, on a Spark cluster or ``local[N]``.
            spark_master: with engine spark, the master URL (default ``local[2]``, or the
                running Spark session's), e.g. ``spark://host:7077`` or ``yarn``.

        Example::

            ws.clean("crm", engine="spark", spark_master="local[2]").render()
        """
        from datawheel.tables import TableSource, run_clean
        from datawheel.tables.spark_session import check_engine

        check_engine(engine)  # before a run is recorded
        configured = self.table_source(name)
        spec = configured.clean
        # the run folder keeps a plain source (readmit reads it back as one), not the config's
        source = TableSource.model_validate(configured.model_dump(exclude={"clean"}))
        run_id = self.store.start_run("clean", {"source": name, "engine": engine})
        try:
            if engine == "spark":
                from datawheel.tables.spark import run_clean_spark

                report = run_clean_spark(source, spec, self.path / "tables", master=spark_master)
            else:
                report = run_clean(source, spec, self.path / "tables", memory_limit=memory_limit)
        except BaseException:
            self.store.finish_run(run_id, "failed", {})
            raise
        self.store.finish_run(
            run_id,
            "finished",
            {
                "rows_in": report.rows_in,
                "rows_clean": report.rows_clean,
                "rows_quarantined": report.rows_quarantined,
                "run": report.run,
            },
        )
        self._register_table_version(report, "clean")
        return self._reapply_fixes(name, report)

    def _reapply_fixes(self, name: str, report: Any) -> Any:
        """Rows readmitted after earlier runs, quarantined again as they were: readmit the
        same fixes, so a re-run of clean keeps the decisions made on the quarantine."""
        import tempfile

        from datawheel.tables import readmit
        from datawheel.tables.quarantine import reapply_fixes

        with tempfile.TemporaryDirectory(prefix="datawheel-fixes-") as tmp:
            fixes = Path(tmp) / "fixes.parquet"
            count = reapply_fixes(self.path / "tables", name, fixes)
            if not count:
                return report
            again = readmit(name, fixes, self.path / "tables")
        self._register_table_version(again, "readmit")
        return report.model_copy(
            update={
                "run": again.run,
                "run_dir": again.run_dir,
                "rows_clean": again.rows_clean,
                "rows_quarantined": again.rows_quarantined,
                "reapplied": count,
            }
        )

    def _register_table_version(self, report: Any, kind: str) -> None:
        def rel(path: Path) -> str:
            return str(path.relative_to(self.path)) if path.is_relative_to(self.path) else str(path)

        self.store.record_table_version(
            {
                "source": report.source,
                "run": report.run,
                "kind": kind,
                "clean_path": rel(report.clean_path),
                "quarantine_path": rel(report.quarantine_path),
                "rows_in": report.rows_in,
                "rows_clean": report.rows_clean,
                "rows_quarantined": report.rows_quarantined,
                "columns": report.columns,
            }
        )

    def app_table(self, name: str, *, raw: bool = False) -> tuple[Any, str]:
        """The table an app reads for source ``name``, and a line saying which.

        The clean table of the source's latest clean or readmit run, so every fix made there
        reaches training; the raw file only when ``raw`` is asked for, or before the first
        clean run (the line then says how to validate it first).
        """
        from datawheel.tables import TableSource

        source = self.table_source(name)
        raw_name = source.path or "the database table"
        if raw:
            return source, f"read {name} raw, as asked: {raw_name}"
        versions = self.store.table_versions(name)
        if versions:
            latest = versions[-1]
            path = Path(latest["clean_path"])
            path = path if path.is_absolute() else self.path / path
            if path.is_file():
                return TableSource(name=name, path=str(path), format="parquet"), (
                    f"read the clean table of {name} from {latest['kind']} run "
                    f"{latest['run']} ({latest['rows_clean']:,} rows; "
                    f"{latest['rows_quarantined']:,} in quarantine)"
                )
        return source, (
            f"read {name} raw from {raw_name}: it has no clean run yet (datawheel clean "
            f"{name} validates it and keeps bad rows in quarantine; apps then read the clean "
            "table)"
        )

    def table_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every clean and readmit run of the table sources, with where its Parquet lives."""
        return self.store.table_versions(name)

    def quarantined(
        self, name: str, *, rule: str | None = None, limit: int | None = 50
    ) -> list[dict[str, Any]]:
        """Rows of a source held in quarantine, with every reason they failed."""
        from datawheel.tables import list_quarantined

        self.table_source(name)
        return list_quarantined(self.path / "tables", name, rule=rule, limit=limit)

    def quarantine_summary(self, name: str) -> list[dict[str, Any]]:
        """The quarantine of a source's newest run, by failed check, most rows first."""
        from datawheel.tables.quarantine import summarise_quarantine

        self.table_source(name)
        return summarise_quarantine(self.path / "tables", name)

    def export_quarantine(self, name: str, target: str | Path, *, rule: str | None = None) -> int:
        """Write a source's quarantined rows to a CSV to fix and readmit; returns the count."""
        from datawheel.tables.quarantine import export_quarantine

        self.table_source(name)
        return export_quarantine(self.path / "tables", name, Path(target), rule)

    def readmit(self, name: str, fixed_rows: str | Path) -> Any:
        """Re-validate fixed quarantined rows; those that pass join the clean table."""
        from datawheel.tables import readmit

        self.table_source(name)
        report = readmit(name, Path(fixed_rows), self.path / "tables")
        self._register_table_version(report, "readmit")
        return report

    def inventory(self, *, engine: str = "duckdb", spark_master: str | None = None) -> Any:
        """Profile and classify every table source and the knowledge base.

        Args:
            engine: ``duckdb`` (this machine) or ``spark`` (extra ``[spark]``): the same
                profile figures; on Spark only CSV, TSV and Parquet sources are read.
            spark_master: with engine spark, the master URL (default ``local[2]``, or the
                running Spark session's), e.g. ``spark://host:7077`` or ``yarn``.

        Example::

            ws.inventory(engine="spark", spark_master="local[2]").summary()
        """
        from datawheel.tables.inventory import build_inventory
        from datawheel.tables.spark_session import check_engine

        check_engine(engine)
        return build_inventory(
            self._ws, self.config.inventory, engine=engine, spark_master=spark_master
        )

    def monitor(self, source: str | None = None, *, rebaseline: bool = False) -> Any:
        """Daily checks of the table sources and the documents; findings stored, alerts sent.

        With ``rebaseline`` the data as it is now becomes the reference that drift and null
        rates are compared against from the next run on. Returns a MonitorReport; its
        ``exit_code`` is 0 (ok), 1 (warnings) or 2 (alerts).
        """
        from datawheel.monitor import run_monitor

        return run_monitor(self._ws, self.config.monitor, source=source, rebaseline=rebaseline)

    def monitor_findings(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        """The findings of each source's latest monitor check, alerts first; with
        ``open_only``, only its warnings and alerts."""
        from datawheel.monitor.history import History

        levels = ("warning", "alert") if open_only else None
        return History(self.store.engine).latest_findings(levels)
