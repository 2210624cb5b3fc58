"""``hepclf tracking-server`` and ``hepclf export``: thin CLI layers over
``hepclf.tracking.server`` and ``hepclf.scoring.onnx_export``.

Heavy imports (MLflow, onnx, the converters, TensorFlow) stay inside the command bodies so
``hepclf --help`` stays fast.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hepclf.cli.app import MODEL_HELP, TrackingUriOption, app, console
from hepclf.tracking.server import (
    DEFAULT_ARTIFACTS,
    DEFAULT_DB,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerSettings,
    artifacts_uri,
    preflight,
    run_server,
    server_argv,
    sqlite_uri,
)


@app.command("tracking-server")
def tracking_server(
    backend_store_uri: Annotated[
        str | None,
        typer.Option(
            help="Database for runs and the model registry, e.g. a PostgreSQL URL "
            "postgresql://USER:PW@HOST/mlflow. Default: SQLite at --db."
        ),
    ] = None,
    db: Annotated[
        Path, typer.Option(help="SQLite file used when no --backend-store-uri is given.")
    ] = DEFAULT_DB,
    artifacts_destination: Annotated[
        str,
        typer.Option(
            help="Where the server stores artifacts (models, plots): a folder or e.g. s3://bucket."
        ),
    ] = str(DEFAULT_ARTIFACTS),
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 to accept other machines.")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 2,
    app_name: Annotated[
        str | None,
        typer.Option(help="'basic-auth' for MLflow's user/password app (see mlflow/README.md)."),
    ] = None,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            help="Host headers to accept (comma-separated), needed when clients reach the "
            "server by a name other than localhost or a private IP, e.g. 'mlflow,mlflow:5000'."
        ),
    ] = None,
    print_command: Annotated[
        bool, typer.Option("--print-command", help="Print the mlflow command and exit.")
    ] = False,
) -> None:
    """Start an MLflow tracking server for hepclf runs (SQLite by default, artifacts proxied)."""
    settings = ServerSettings(
        backend_store_uri=backend_store_uri or sqlite_uri(db),
        artifacts_destination=artifacts_uri(artifacts_destination),
        host=host,
        port=port,
        workers=workers,
        app_name=app_name,
        allowed_hosts=allowed_hosts,
    )
    if print_command:
        typer.echo(shlex.join(server_argv(settings)))
        return
    preflight(settings)
    client_host = "localhost" if host in ("0.0.0.0", "::") else host
    console.print(
        f"MLflow tracking server on http://{host}:{port} "
        f"(runs: {settings.backend_store_uri.split('@')[-1]}, artifacts: "
        f"{settings.artifacts_destination}); clients: MLFLOW_TRACKING_URI=http://{client_host}:{port}"
    )
    code = run_server(settings)
    if code:
        raise typer.Exit(code)


class ExportFormat(StrEnum):
    """Formats ``hepclf export`` writes."""

    onnx = "onnx"


@app.command()
def export(
    model: Annotated[str, typer.Option(help=MODEL_HELP)],
    out: Annotated[Path, typer.Option(help="File to write, e.g. model.onnx.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="Output format.")
    ] = ExportFormat.onnx,
    check: Annotated[
        bool,
        typer.Option(
            help="Score sample events with ONNX Runtime and the Python model and refuse to "
            "write a file whose scores differ by more than 1e-4 (2e-2 for a dnn trained "
            "with mixed_precision, exported in float32)."
        ),
    ] = True,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Export a trained model for use outside Python (ONNX: raw features in, score out).

    A category model is written as one file per category, <out stem>_<category>.onnx,
    each with its category's selection in the metadata."""
    from hepclf.scoring.onnx_export.export import export_onnx, export_onnx_categories
    from hepclf.tracking.registry import load_bundle
    from hepclf.tracking.store import use_store_for

    use_store_for([model], tracking_uri)
    with console.status(f"loading {model}"):
        bundle = load_bundle(model)
    with console.status(
        f"converting {bundle.classifier.name} model {bundle.name!r} to {fmt.value}"
    ):
        if bundle.routing_columns:
            results = export_onnx_categories(bundle, out, check=check)
        else:
            results = {"": export_onnx(bundle, out, check=check)}
    for category, result in results.items():
        _print_export(result, bundle, category)


def _print_export(result: Any, bundle: Any, category: str) -> None:
    where = f", category {category!r} (selection in the metadata)" if category else ""
    output = (
        f"'probabilities' float32 [N, {len(bundle.classes)}] (classes in the metadata)"
        if bundle.multiclass
        else "'score' float32 [N]"
    )
    checked = (
        f"; ONNX Runtime agrees with the model on {result.checked_events} events "
        f"(max |Δscore| {result.max_abs_diff:.1g}, tolerance {result.tolerance:g})"
        if result.max_abs_diff is not None
        else "; not checked (--no-check)"
    )
    console.print(
        f"wrote {result.path}: {result.model_type} model {bundle.name!r}{where}, input "
        f"'features' float32 [N, {result.n_features}] (raw columns, names in the file's "
        f"metadata), output {output}{checked}",
        highlight=False,
    )
