"""``hepclf init``: draft a pipeline YAML from the user's own ROOT files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hepclf.cli.app import app, console
from hepclf.runtime.errors import ConfigError

FILES_HELP = (
    "FILE[:TREE], repeatable; quote a glob ('ntuples/ttbar_*.root') to make one sample of its "
    "files; the default tree is the one with most entries."
)


@app.command()
def init(
    signal: Annotated[list[str] | None, typer.Option(help=f"Signal files: {FILES_HELP}")] = None,
    background: Annotated[
        list[str] | None, typer.Option(help=f"Background files: {FILES_HELP}")
    ] = None,
    class_: Annotated[
        list[str] | None,
        typer.Option(
            "--class", help="Files of another class, NAME=FILE[:TREE] (multi-class), repeatable."
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The pipeline YAML to write.")
    ] = Path("pipeline.yaml"),
    force: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Draft a commented pipeline from your ROOT files: samples, features, split, models.

    It looks into the files with uproot: numeric branches become features, jagged ones their
    leading 4 objects; an event-number and a weight branch are proposed from their names.
    The draft trains as written: `hepclf train pipeline.yaml --output results`.
    """
    from hepclf.runtime.files import write_atomic
    from hepclf.workflows.init import DraftInput, draft_pipeline

    if output.exists() and not force:
        raise ConfigError(f"{output}: exists already; give another --output or add --force")
    inputs = [DraftInput.parse("signal", s) for s in signal or []]
    inputs += [DraftInput.parse("background", b) for b in background or []]
    for spec in class_ or []:
        name, sep, files = spec.partition("=")
        if not sep or not name or not files:
            raise ConfigError(
                f"--class {spec!r}: write it as NAME=FILE[:TREE], e.g. ttbb=ttbb.root"
            )
        inputs.append(DraftInput.parse(name, files))
    with console.status("looking into the files"):
        text = draft_pipeline(inputs, output)
    write_atomic(text.encode(), output)
    console.print(f"wrote {output}; train it with: hepclf train {output} --output results")
