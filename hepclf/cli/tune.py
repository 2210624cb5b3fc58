"""``hepclf tune``: the budgeted hyperparameter search alone (``hepclf train`` tunes first
when the pipeline has a ``tune:`` block)."""

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
def tune(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML (its 'tune:' block, if any).")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models to tune (default: tune.models).")
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option(min=1, help="Time budget per model in seconds.")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Total trials per study (a resumed one counts on).")
    ] = None,
    output: Annotated[
        Path, typer.Option(help="YAML file for the best parameters (a models: block to paste).")
    ] = Path("tuned_params.yaml"),
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
    cache: CacheOption = True,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    table_dir: TableDirOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Search each model's parameters by cross-validated AUC on the training events only.

    The study is stored in hepclf_tuning.db beside the tracking store: run the command again
    (or with more --trials) to continue it. Each trial is a nested MLflow run. With
    --workers N or --scheduler, trials run side by side on Dask workers (each must reach
    the study's storage: tune.storage on a shared folder or a database server).
    """
    from hepclf.cli.render import RichProgress
    from hepclf.config import load_pipeline
    from hepclf.config.training import TuneConfig
    from hepclf.workflows.tune import run_tuning

    cluster = cluster_settings(workers, scheduler, table_dir, worker_memory)
    config = load_pipeline(pipeline)
    settings = (config.tune or TuneConfig()).model_dump()
    if timeout_s is not None:
        settings["timeout_s"] = timeout_s
    if trials is not None:
        settings["trials"] = trials
    chosen = comma_list(models)
    if chosen:
        settings["models"] = chosen
    config = config.model_copy(update={"tune": TuneConfig(**settings)})
    results = run_tuning(
        config,
        models=chosen,
        tracking_uri=tracking_uri,
        experiment=experiment,
        output=output,
        use_cache=cache,
        progress=RichProgress(console, err_console),
        cluster=cluster,
    )
    improved = [name for name, r in results.items() if r.improved]  # each told above
    written = f"best parameters of {', '.join(improved)}" if improved else "no tuned parameters"
    console.print(f"{written} written to {output}", highlight=False)
