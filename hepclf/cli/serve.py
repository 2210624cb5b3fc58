"""``hepclf serve``: the scoring service under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hepclf.cli.app import TrackingUriOption, app

LOCALHOST = "127.0.0.1"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = LOCALHOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    data_root: Annotated[
        list[Path] | None,
        typer.Option(help="Folder jobs may read and write under (repeatable)."),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the bearer token (else $HEPCLF_TOKEN).")
    ] = None,
    insecure_local: Annotated[
        bool, typer.Option(help="Allow serving without a token; forces --host 127.0.0.1.")
    ] = False,
    tracking_uri: TrackingUriOption = None,
    max_events: Annotated[int, typer.Option(min=1, help="Most events per request.")] = 10_000,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body.")] = 10.0,
    job_time_limit: Annotated[
        float, typer.Option(min=1, help="Seconds a batch job may run before it is stopped.")
    ] = 3600.0,
) -> None:
    """Serve registered models over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    from hepclf.scoring.service.app import create_app
    from hepclf.scoring.service.settings import ServiceSettings, load_token
    from hepclf.tracking.store import use_store

    console = Console(stderr=True)
    token = load_token(token_file, insecure_local)
    if insecure_local and host != LOCALHOST:
        console.print(f"--insecure-local: listening on {LOCALHOST}, not {host}")
        host = LOCALHOST
    uri = use_store(tracking_uri, create=False)
    settings = ServiceSettings(
        token=token,
        data_roots=tuple(data_root or ()),
        max_body_bytes=int(max_body_mb * 2**20),
        max_events=max_events,
        job_time_limit_s=job_time_limit,
    )
    app = create_app(settings)
    auth = "bearer token required" if token else "NO authentication (--insecure-local)"
    console.print(
        f"hepclf service on http://{host}:{port} ({auth}); tracking {uri}; docs at /docs",
        highlight=False,
    )
    # SIGTERM: stop accepting, stop jobs at their next chunk, exit within seconds
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
