"""``datawheel migrate``: move a workspace's store to PostgreSQL (or back)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table

from datawheel.cli.common import Command, JsonOpt, handled, out, print_json, progress_bar


def register(app: typer.Typer) -> None:
    app.command("migrate", cls=Command)(migrate)


def migrate(
    source: Annotated[
        str,
        typer.Option("--from", help="A workspace folder (its own store) or a database URL."),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to", help="A database URL, or a workspace folder (made if it does not exist)."
        ),
    ],
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Copy into a target that already holds data; rows it has keep its version.",
        ),
    ] = False,
    index: Annotated[
        bool,
        typer.Option(
            "--index/--no-index",
            help="Then build the vector index on the target from the copied embeddings.",
        ),
    ] = True,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per committed batch.")
    ] = 5000,
    json_: JsonOpt = False,
) -> None:
    """Copy every table (documents, chunks, embeddings, feedback, runs, users, ...) from
    one store to another, verify row counts and a checksum of the embeddings, and build
    the vector index there. Resumable: re-run the same command after a crash. An
    interrupted or finished copy is never written twice.

    Example: datawheel migrate --from kb/ --to postgresql://datawheel@db.internal/datawheel

    Then point the workspace at it: export DATAWHEEL_DATABASE_URL=postgresql://...
    """
    with handled():
        from datawheel.store import migrate as m  # numpy, SQLAlchemy: only when it runs

        source_url = m.resolve(source)
        target_url = m.resolve(target, create=True)
        with progress_bar(not json_) as progress:
            report = m.copy_store(
                source_url, target_url, merge=merge, batch_size=batch_size, progress=progress
            )
        folder = target if "://" not in target else source if "://" not in source else None
        indexed = m.build_indexes(folder, target_url) if index and folder else None
    data = report.to_dict()
    data["indexed_chunks"] = indexed
    if json_:
        print_json(data)
        return
    table = Table(
        "table",
        Column("source", justify="right"),
        Column("target", justify="right"),
        Column("copied", justify="right"),
        Column("skipped", justify="right"),
        title=f"{report.source} -> {report.target}" + (" (resumed)" if report.resumed else ""),
    )
    for name, row in report.tables.items():
        table.add_row(
            name, *(f"{n:,}" for n in (row.source, row.target, row.inserted, row.skipped))
        )
    out.print(table)
    for model, check in report.vectors.items():
        out.print(f"embeddings {model}: {check['count']:,} vectors, checksum {check['sum']:.4f}")
    if indexed is not None:
        out.print(f"vector index built: {indexed:,} chunks")
    out.print(f"verified: row counts and vector checksums match ({report.seconds:.1f}s)")
