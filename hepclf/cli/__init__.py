"""The ``hepclf`` command: one subcommand per step of the workflow, thin over the library.

All Typer code lives in this package (one module per topic); library functions return
data and only :mod:`hepclf.cli.render` turns them into Rich output.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from typing import Annotated

import typer
from rich.markup import escape

# Command modules, one per topic: importing one registers its commands on `app`.
from hepclf.cli import data, deploy, init, result, score, serve, train, tune  # noqa: F401
from hepclf.cli.app import app, err_console
from hepclf.errors import HepclfError

__all__ = ["app", "main"]

_terminated = False


def quiet_third_party() -> None:
    """Keep the terminal for hepclf's own output: libraries' advice and INFO logs go quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow resets its loggers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        ".*type hints to the `predict` method.*",
        ".*input example was not provided.*",
        ".*dataset source can be interpreted in multiple ways.*",
        ".*Inferred schema contains integer column.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    warnings.showwarning = _show_warning


NOISY_LOGGERS = ("mlflow", "alembic", "absl", "tensorflow", "distributed")


@app.callback()
def _options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show the libraries' own output too: MLflow and TensorFlow logs (e.g. CUDA "
            "probing), with HEPCLF_VERBOSE=1 for the child processes.",
        ),
    ] = False,
) -> None:
    """Separate signal from background events in ROOT files: ingest, train, evaluate, score."""
    if verbose:
        os.environ.update(HEPCLF_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="0", MLFLOW_LOGGING_LEVEL="INFO")
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one short line each (no source path), for a readable run log."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)


def _sigterm(signum: int, frame: object) -> None:
    """SIGTERM (batch systems, ``kill``) stops like Ctrl-C: runs end KILLED, staging removed."""
    global _terminated
    _terminated = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean-up, not one per signal
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit status 2.

    Typer reports usage errors itself (exit 2); Ctrl-C ends with click's "Aborted!" (exit 1),
    SIGTERM with exit 143, both after clean-up.
    """
    quiet_third_party()
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app()  # standalone: typer reports usage errors itself (exit 2) and exits
    except HepclfError as err:
        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except SystemExit:
        if _terminated:
            err_console.print("stopped by SIGTERM: nothing was published", highlight=False)
            sys.exit(143)
        raise
