"""``hepclf train`` and ``hepclf compare``: the tracked pipeline and its runs in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hepclf.cli.app import (
    CacheOption,
    ExperimentOption,
    SchedulerOption,
    TableDirOption,
    TrackingUriOption,
    WorkerMemoryOption,
    WorkersOption,
    app,
    cluster_settings,
    comma_list,
    console,
    err_console,
)


@app.command()
def train(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated subset of the zoo, e.g. dnn,bdt,xgb.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder for metrics.json, summary.md and plots/.")
    ] = None,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
    register: Annotated[
        str | None, typer.Option(help="Register the best model under this name (alias champion).")
    ] = None,
    cache: CacheOption = True,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    table_dir: TableDirOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Train the model zoo, evaluate it, draw the plots and track everything in MLflow.

    Ctrl-C or SIGTERM stops the run: it is marked KILLED in MLflow and nothing is published.
    With --workers N or --scheduler, ingest, fits and scoring run on Dask workers.
    """
    from hepclf.cli.render import RichProgress, comparison_table
    from hepclf.config import load_pipeline
    from hepclf.training.report import run_comparison
    from hepclf.workflows.train import run_pipeline

    cluster = cluster_settings(workers, scheduler, table_dir, worker_memory)
    config = load_pipeline(pipeline)
    result = run_pipeline(
        config,
        models=comma_list(models),
        output=output,
        tracking_uri=tracking_uri,
        experiment=experiment,
        register=register,
        use_cache=cache,
        progress=RichProgress(console, err_console),
        cluster=cluster,
    )
    console.print(comparison_table(run_comparison(result), console.width))
    lines = [  # one short line each: a URI or path is never broken
        f"MLflow run {result.run_id}",
        f"  experiment {result.experiment!r} at {result.tracking_uri}",
        *([f"  results in {output}"] if output else []),
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


@app.command()
def compare(
    experiment: ExperimentOption = None,
    runs: Annotated[int, typer.Option(min=1, help="How many recent pipeline runs.")] = 5,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Show the models of recent pipeline runs side by side, with each run's status."""
    from hepclf.cli.render import run_tables
    from hepclf.tracking.compare import recent_runs
    from hepclf.tracking.store import describe_store

    found = recent_runs(tracking_uri, experiment, runs)
    console.print(
        f"Experiment {found.experiment!r} in the store at {describe_store(found.tracking_uri)}",
        highlight=False,
        soft_wrap=True,
    )
    for heading, table in run_tables(found, console.width):
        console.print()
        console.print(heading, highlight=False)
        console.print(table)
