"""The ``hepclf`` command: one subcommand per step of the workflow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hepclf.errors import HepclfError

app = typer.Typer(
    name="hepclf",
    help="Separate signal from background events in ROOT files: ingest, train, evaluate, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Folder for signal.root and background.root.")],
    events: Annotated[int, typer.Option(min=1, help="Events per process.")] = 50_000,
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


def main() -> None:
    """Entry point: user errors become one paragraph on stderr and exit status 2."""
    try:
        app(standalone_mode=False)
    except HepclfError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]; outputs already written are complete")
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise
