"""``hepclf demo-data`` and ``hepclf ingest``: input files and the feature table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hepclf.cli.app import (
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
from hepclf.runtime.errors import HepclfError


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder for signal.root and background.root.")],
    events: Annotated[int, typer.Option(min=1, help="Events per process.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 1,
    processes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated processes for a multi-class demo, one <process>.root each "
            "(from ttH, ttbb, ttcc, ttlf), instead of signal.root and background.root."
        ),
    ] = None,
    categories: Annotated[
        bool,
        typer.Option(
            help="Write categories.root instead (trees TreeS and TreeB, var1..var4 and eta), "
            "the toy of pipelines/categories.yaml."
        ),
    ] = False,
    jes: Annotated[
        float | None,
        typer.Option(help="With --processes: also <process>_jesUp/Down.root, jet pt x (1 ± JES)."),
    ] = None,
    data: Annotated[
        bool, typer.Option("--data", help="With --processes: also data.root (pseudo-data).")
    ] = False,
) -> None:
    """Write synthetic signal and background ROOT files (TTree 'Events')."""
    from hepclf.ingest.demo_data import write_demo_data

    chosen = comma_list(processes)
    with console.status(f"writing {events:,} events per process to {out}"):
        paths = write_demo_data(
            out,
            events=events,
            seed=seed,
            processes=chosen,
            jes=jes,
            data=data,
            categories=categories,
        )
    for label, path in paths.items():
        console.print(f"{label}: {path}")


@app.command()
def ingest(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML.")],
    out: Annotated[Path | None, typer.Option(help="Write the feature table as Parquet.")] = None,
    cache: Annotated[bool, typer.Option(help="Reuse a table cached for unchanged inputs.")] = True,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    table_dir: TableDirOption = None,
    worker_memory: WorkerMemoryOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Read the pipeline's samples into one feature table and print a summary.

    With --workers N or --scheduler, workers read the files and write the table as Parquet
    partitions (one per file) into --table-dir; this process never holds the events.
    """
    from hepclf.cli.render import RichProgress, rows_table
    from hepclf.config import load_pipeline
    from hepclf.ingest import ingest as run_ingest
    from hepclf.ingest.summary import feature_rows, origin_line, sample_rows

    cluster = cluster_settings(workers, scheduler, table_dir, worker_memory)
    config = load_pipeline(pipeline)
    progress = RichProgress(console, err_console)
    if cluster.distributed:
        if out is not None:
            raise HepclfError(
                "--out writes one Parquet file from this process; on a cluster the table is "
                "written as partitions into --table-dir instead"
            )
        from hepclf.cluster.client import cluster_session
        from hepclf.cluster.ingest import class_feature_stats, ingest_on_cluster

        with cluster_session(cluster, tracking_uri) as session:
            table = ingest_on_cluster(
                config, session.executor, session.table_dir, use_cache=cache, progress=progress
            )
            stats = class_feature_stats(table, session.executor)
        console.print(rows_table(sample_rows(table)))  # type: ignore[arg-type]
        console.print(rows_table(feature_rows(table, stats)))  # type: ignore[arg-type]
        console.print(origin_line(table))  # type: ignore[arg-type]
        console.print(f"{len(table.partitions)} partitions in {table.folder}", highlight=False)
        return
    table = run_ingest(config, use_cache=cache, progress=progress)
    console.print(rows_table(sample_rows(table)))
    console.print(rows_table(feature_rows(table)))
    console.print(origin_line(table))
    if out is not None:
        table.write_parquet(out)
        console.print(f"wrote {out}")
