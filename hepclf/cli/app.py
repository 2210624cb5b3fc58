"""The Typer application every ``hepclf`` subcommand registers on, and the shared consoles.

Each topic module of this package (``data``, ``train``, ``score``, ``serve``, ``deploy``,
...) defines its commands with ``@app.command()`` and keeps heavy imports inside the command
bodies, so ``hepclf --help`` stays fast. A new command: a new module here, imported once in
``hepclf/cli/__init__.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

HELP_WIDTH = 100
"""Help and tables are laid out for this many columns when not in a terminal (logs, CI,
pipes) and ``COLUMNS`` is not set, instead of Rich's 80."""


def output_width(stream: object = sys.stdout) -> int | None:
    """The width to lay out for: ``$COLUMNS`` when set (also when piped), the terminal's
    own (None: Rich asks it) or :data:`HELP_WIDTH` for a pipe or a file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else HELP_WIDTH


if output_width() is not None:  # read by typer's help layout
    os.environ.setdefault("TERMINAL_WIDTH", str(output_width()))

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

if TYPE_CHECKING:
    from hepclf.cluster.client import ClusterSettings

app = typer.Typer(
    name="hepclf",
    help="Separate signal from background events in ROOT files: ingest, train, evaluate, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain layout: option names are never cut and help wraps to any width (Rich's
    # five-column panels leave ~15 columns for the help at 80)
    rich_markup_mode=None,
    context_settings={"max_content_width": HELP_WIDTH},
)
console = Console(width=output_width(sys.stdout))
err_console = Console(stderr=True, width=output_width(sys.stderr))

TRACKING_URI_HELP = (
    "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)."
)
MODEL_HELP = (
    "A trained model: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/MODEL, an "
    "MLflow model URI or a model folder."
)

TrackingUriOption = Annotated[str | None, typer.Option(help=TRACKING_URI_HELP)]
ExperimentOption = Annotated[str | None, typer.Option(help="MLflow experiment name.")]
CacheOption = Annotated[bool, typer.Option(help="Reuse a cached feature table.")]
WorkersOption = Annotated[
    int,
    typer.Option(min=1, help="Processes of a local Dask cluster (1: work in this process)."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="Use a running Dask scheduler (tcp://HOST:PORT) instead."),
]
TableDirOption = Annotated[
    Path | None,
    typer.Option(
        help="With --workers/--scheduler: folder, shared by all workers, for the feature "
        "table's partitions (default: hepclf-tables beside the tracking store)."
    ),
]
WorkerMemoryOption = Annotated[
    str | None,
    typer.Option(help="Memory limit of each local worker, e.g. '4GB' (default: RAM / workers)."),
]


def cluster_settings(
    workers: int, scheduler: str | None, table_dir: Path | None, memory: str | None = None
) -> ClusterSettings:
    """The ``--workers``/``--scheduler`` choice of a command (checked: not both)."""
    from hepclf.cluster.client import ClusterSettings

    return ClusterSettings(workers, scheduler, table_dir, memory)


def comma_list(value: str | None) -> list[str] | None:
    """The names of a comma-separated option (``"bdt, xgb"``), or None when it is not given."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None
