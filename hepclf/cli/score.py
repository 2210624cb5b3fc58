"""``hepclf score``: write per-event classifier scores for ROOT files, as friend trees."""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hepclf.cli.app import (
    MODEL_HELP,
    SchedulerOption,
    TrackingUriOption,
    WorkersOption,
    app,
    comma_list,
)
from hepclf.runtime.errors import HepclfError
from hepclf.scoring import DEFAULT_STEP_SIZE, FORMATS

OutputFormat = StrEnum("OutputFormat", {fmt: fmt for fmt in FORMATS})


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (batch systems, ``kill``) into an exit that removes temporary files."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@app.command()
def score(
    inputs: Annotated[list[str], typer.Argument(help="ROOT files or globs (quote the globs).")],
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help=MODEL_HELP + " Repeat for several models. Scores go to branch "
            "score_<model type>, or score_LABEL with LABEL=MODEL.",
        ),
    ],
    tree: Annotated[str, typer.Option(help="Tree to score, also the output tree's name.")] = (
        "Events"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: each input's own folder).")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output file format.")
    ] = OutputFormat.root,  # type: ignore[attr-defined]
    step_size: Annotated[
        str, typer.Option(help="Chunk size: entries (100000) or memory ('25 MB').")
    ] = DEFAULT_STEP_SIZE,
    keep_branches: Annotated[
        str | None, typer.Option(help="Comma-separated input branches to copy to the output.")
    ] = None,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    selection: Annotated[
        str | None,
        typer.Option(
            help="Score and write only events passing this cut; adds the branch 'entry' (the "
            "input entry number); the output is then not a friend tree of the input."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace what is at the output names: complete outputs, and files hepclf did "
            "not write (refused without it)."
        ),
    ] = False,
    nan_score: Annotated[
        bool,
        typer.Option(
            help="Write a NaN score for events with NaN or infinite features (counted) instead "
            "of failing the file."
        ),
    ] = False,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Score events with trained models: one output file per input, one entry per event."""
    from hepclf.cli.render import RichProgress
    from hepclf.scoring.file_job import ScoreSettings, parse_step_size
    from hepclf.scoring.runner import expand_inputs, score_files
    from hepclf.scoring.scorers import load_scoring_models
    from hepclf.tracking.store import use_store_for

    if workers > 1 and scheduler is not None:
        raise HepclfError("give either --workers N (a local cluster) or --scheduler, not both")
    _stop_on_sigterm()
    use_store_for(model, tracking_uri)
    settings = ScoreSettings(
        tree=tree,
        out_dir=out,
        fmt=output_format.value,
        step_size=parse_step_size(step_size),
        keep_branches=tuple(comma_list(keep_branches) or ()),
        selection=selection,
        overwrite=overwrite,
        on_nonfinite="nan" if nan_score else "error",
    )
    files = expand_inputs(inputs)
    console, stdout = Console(stderr=True), Console()
    with console.status("loading models"):
        models = load_scoring_models(model)
    for m in models:
        version = f" (version {m.version})" if m.version else ""
        console.print(f"{', '.join(m.columns)}: {m.spec.source}{version}", highlight=False)
    summary = score_files(
        files,
        models,
        settings,
        workers=workers,
        scheduler=scheduler,
        progress=RichProgress(stdout, console),
    )
    categories = any(m.bundle.routing_columns for m in models)
    routed = ", or events in no category or several" if categories else ""
    for result in summary.results:
        if result.status != "failed":
            line = f"{result.status}: {result.output} ({result.written:,} entries)"
            if result.nan_scores:
                line += f"; {result.nan_scores:,} NaN scores (non-finite features{routed})"
            if result.note and (workers > 1 or scheduler is not None):  # else warned already
                line += f"; {result.note}"
            stdout.print(line, highlight=False, soft_wrap=True)
    stdout.print(
        f"{len(summary.results)} files: {summary.count('scored')} scored, "
        f"{summary.count('skipped')} skipped (already complete), {len(summary.failed)} failed; "
        f"{summary.events:,} events in {summary.seconds:.1f} s "
        f"({summary.events_per_second:,.0f} events/s)",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        listing = "\n".join(f"  - {r.error}" for r in summary.failed)
        raise HepclfError(
            f"{len(summary.failed)} of {len(summary.results)} files failed (the other outputs "
            f"are complete):\n{listing}"
        )
