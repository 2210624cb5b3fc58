"""The ``hepclf`` command: one subcommand per step of the workflow."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hepclf.errors import HepclfError

app = typer.Typer(
    name="hepclf",
    help="Separate signal from background events in ROOT files: ingest, train, evaluate, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Tables are wide: outside a terminal (logs, CI) do not wrap them at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder for signal.root and background.root.")],
    events: Annotated[int, typer.Option(min=1, help="Events per process.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 1,
) -> None:
    """Write synthetic signal and background ROOT files (TTree 'Events')."""
    from hepclf.demo_data import write_demo_data

    with console.status(f"writing {events:,} events per process to {out}"):
        paths = write_demo_data(out, events=events, seed=seed)
    for label, path in paths.items():
        console.print(f"{label}: {path}")


@app.command()
def ingest(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML.")],
    out: Annotated[Path | None, typer.Option(help="Write the feature table as Parquet.")] = None,
    cache: Annotated[bool, typer.Option(help="Reuse a table cached for unchanged inputs.")] = True,
) -> None:
    """Read the pipeline's samples into one feature table and print a summary."""
    from hepclf.config import load_pipeline
    from hepclf.ingest import ingest as run_ingest
    from hepclf.ingest.summary import print_summary

    config = load_pipeline(pipeline)
    table = run_ingest(config, use_cache=cache)
    print_summary(table, console)
    if out is not None:
        table.write_parquet(out)
        console.print(f"wrote {out}")


def _model_list(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


@app.command()
def train(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated subset of the zoo, e.g. dnn,bdt,xgb.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder for metrics.json, summary.md and plots/.")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."
        ),
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    register: Annotated[
        str | None, typer.Option(help="Register the best model under this name (alias champion).")
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse a cached feature table.")] = True,
) -> None:
    """Train the model zoo, evaluate it, draw the plots and track everything in MLflow."""
    from hepclf.config import load_pipeline
    from hepclf.pipeline import run_pipeline

    config = load_pipeline(pipeline)
    result = run_pipeline(
        config,
        models=_model_list(models),
        output=output,
        tracking_uri=tracking_uri,
        experiment=experiment,
        register=register,
        console=console,
        use_cache=cache,
    )
    where = f"; results in {output}" if output else ""
    console.print(
        f"MLflow run {result.run_id} in experiment {result.experiment!r} at "
        f"{result.tracking_uri}{where}"
    )


@app.command()
def compare(
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    runs: Annotated[int, typer.Option(min=1, help="How many recent pipeline runs.")] = 5,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Show the models of recent pipeline runs side by side, from MLflow."""
    from hepclf.tracking.compare import compare_runs

    console.print(compare_runs(tracking_uri, experiment, runs))


# Subcommands defined in their own modules (heavy imports stay inside the command bodies).
# --- registered commands: one line each, keep this block ---
from hepclf.deploy.commands import tracking_server as _ts; app.command("tracking-server")(_ts)  # noqa: E402, E702, I001  # fmt: skip
from hepclf.deploy.commands import export as _export; app.command("export")(_export)  # noqa: E402, E702, I001  # fmt: skip
from hepclf.scoring.commands import score as _score; app.command("score")(_score)  # noqa: E402, E702, I001  # fmt: skip
from hepclf.service.commands import serve as _serve; app.command("serve")(_serve)  # noqa: E402, E702, I001  # fmt: skip
# --- end of registered commands ---


def quiet_third_party() -> None:
    """Keep the terminal for hepclf's own output: libraries' advice and INFO logs go quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "absl", "tensorflow", "distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        ".*type hints to the `predict` method.*",
        ".*input example was not provided.*",
        ".*dataset source can be interpreted in multiple ways.*",
        ".*Inferred schema contains integer column.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one short line each (no source path), for a readable run log."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit status 2."""
    quiet_third_party()
    try:
        app()  # standalone: typer reports usage errors itself (exit 2) and exits
    except HepclfError as err:
        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
