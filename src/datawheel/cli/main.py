"""``datawheel``: the command line. Each command is a few lines over ``Workspace``."""

from __future__ import annotations

import logging
import os

import typer

from datawheel.cli import (
    demo,
    evaluate,
    flywheel,
    forecast,
    ingest,
    inventory,
    leads,
    migrate,
    monitor,
    replay,
    review,
    roi,
    search,
    serve,
    storage,
    tables,
    workspace,
)

app = typer.Typer(
    rich_markup_mode=None,
    name="datawheel",
    help="Turn your documents into search and answers that get better with use.\n\n"
    "Example: datawheel init kb/ && datawheel ingest kb/ ~/docs && "
    "datawheel search 'refund policy' -w kb/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

workspace.register(app)
ingest.register(app)
search.register(app)
evaluate.register(app)
flywheel.register(app)
demo.register(app)
tables.register(app)
inventory.register(app)
monitor.register(app)
leads.register(app)
forecast.register(app)
replay.register(app)
serve.register(app)
storage.register(app)
roi.register(app)
review.register(app)
migrate.register(app)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"datawheel {version('datawheel')}")
        except PackageNotFoundError:  # a source tree that was never installed
            typer.echo("datawheel (not installed: pip install -e .)")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _show_model_preparation()


def _show_model_preparation() -> None:
    """The one-time model export/quantisation makes a first run slow: say so on stderr,
    through the progress bars' console so a live bar is not garbled."""
    from rich.logging import RichHandler

    from datawheel.cli.common import console

    prepare = logging.getLogger("datawheel.prepare")
    if prepare.handlers:
        return
    handler = RichHandler(console=console, show_time=False, show_level=False, show_path=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    prepare.addHandler(handler)
    prepare.setLevel(logging.INFO)
    prepare.propagate = False


if __name__ == "__main__":  # pragma: no cover
    app()
