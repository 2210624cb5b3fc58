"""``hepclf result``: expected Z0 and limit of already-trained models (no retraining)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from hepclf.cli.app import (
    CacheOption,
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

if TYPE_CHECKING:
    from hepclf.physics.inference import ExpectedLimit


@app.command()
def result(
    source: Annotated[
        str,
        typer.Argument(
            help="A pipeline run of `hepclf train` (runs:/RUN_ID or RUN_ID: all its models), "
            "one model's run, or a model URI or folder.",
            show_default=False,
        ),
    ],
    config: Annotated[
        Path,
        typer.Option(
            "--config", help="Pipeline YAML with the 'result:' block.", show_default=False
        ),
    ],
    output: Annotated[
        Path, typer.Option(help="Folder for results/<model>/ (workspace, templates, plot).")
    ] = Path("result"),
    tracking_uri: TrackingUriOption = None,
    log: Annotated[
        bool, typer.Option(help="Record the result as a new MLflow run beside the source run.")
    ] = True,
    cache: CacheOption = True,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated models of the pipeline run (default: all)."),
    ] = None,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    table_dir: TableDirOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Expected discovery significance and limit on mu (pyhf) of trained models.

    Change the binning or the systematics in the pipeline's 'result:' block and rerun:
    the events are read and split again exactly as in training and scored with the logged
    models, so nothing is retrained. With --workers N or --scheduler, the events are read
    and scored on Dask workers; the fits run here.
    """
    from hepclf.cli.render import RichProgress
    from hepclf.config import load_pipeline
    from hepclf.tracking.store import use_store
    from hepclf.workflows.result import recompute_results

    cluster = cluster_settings(workers, scheduler, table_dir, worker_memory)
    pipeline = load_pipeline(config)
    use_store(tracking_uri, create=log)
    done = recompute_results(
        source,
        pipeline,
        output,
        log=log,
        use_cache=cache,
        progress=RichProgress(console, err_console),
        models=comma_list(models),
        cluster=cluster,
    )
    table = Table(
        title=f"Expected result ({done.seconds:.1f} s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    titles = ("model", "bins", "Z0", "mu95\nmedian", "mu95\n-2σ", "\n-1σ", "\n+1σ", "\n+2σ")
    for title in (*titles, "fit\ns"):  # two-line headers: fits 80 columns
        table.add_column(title, justify="left" if title == "model" else "right", no_wrap=True)
    for name, r in done.results.items():
        bins = sum(c.templates.n_bins for c in r.channels.values()) or r.templates.n_bins
        table.add_row(
            name, str(bins), *_figures(r.z0_expected, r.mu_up_expected), f"{r.seconds:.1f}"
        )
        if len(r.channels) > 1:  # each channel fitted alone, below the combined fit
            for channel, c in r.channels.items():
                figures = _figures(c.z0_expected, c.mu_up_expected)
                table.add_row(f" {channel}", str(c.templates.n_bins), *figures, "")
    console.print(table)
    where = f"MLflow run {done.run_id}" + (
        f" (from run {done.source_run_id})" if done.source_run_id else ""
    )
    console.print(
        f"{where if done.run_id else 'not logged'}; files in {output / 'results'}",
        highlight=False,
        soft_wrap=True,
    )


def _figures(z0: float, limit: ExpectedLimit | None) -> list[str]:
    """Z0 and the limit band as the table shows them ('-': no limit in the POI range)."""
    keys = ("median", "-2", "-1", "+1", "+2")
    band = ["-"] * len(keys) if limit is None else [f"{limit.to_dict()[k]:.3g}" for k in keys]
    return [f"{z0:.2f}", *band]
