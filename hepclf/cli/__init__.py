"""The ``hepclf`` command: one subcommand per step of the workflow, thin over the library.

All Typer code lives in this package (one module per topic); library functions return
data and only :mod:`hepclf.cli.render` turns them into Rich output.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from typing import Annotated

import typer
from rich.markup import escape

# Command modules, one per topic: importing one registers its commands on `app`.
from hepclf.cli import data, deploy, init, result, score, serve, train, tune  # noqa: F401
from hepclf.cli.app import app, err_console
from hepclf.runtime.errors import HepclfError

__all__ = ["app", "main"]


def _whole_short_help() -> None:
    """List each command with the first paragraph of its docstring, wrapped, not cut to the
    width left beside the command names."""
    for command in app.registered_commands:
        if command.short_help is None and command.callback is not None:
            doc = (command.callback.__doc__ or "").strip()
            command.short_help = " ".join(doc.split("\n\n")[0].split())


_whole_short_help()

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
    if _terminated:  # one clean-up, not one per signal
        return
    _terminated = True
    raise KeyboardInterrupt


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """Deliver again an interrupt that Python swallowed.

    Ctrl-C or SIGTERM arriving while a weakref callback or ``__del__`` runs (matplotlib's
    run while a plot is drawn) raises there, where Python only reports the exception as
    "ignored": the run would go on. The signal is sent once more, from a timer thread, so
    that it arrives after the callback (Python handles it in the main thread).
    """
    global _terminated
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        number = signal.SIGTERM if _terminated else signal.SIGINT
        _terminated = False
        again = threading.Timer(0.1, os.kill, (os.getpid(), number))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit status 2.

    Typer reports usage errors itself (exit 2); Ctrl-C ends with click's "Aborted!" (exit 1),
    SIGTERM with exit 143, both after clean-up.
    """
    quiet_third_party()
    signal.signal(signal.SIGTERM, _sigterm)
    sys.unraisablehook = _unraisable
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
