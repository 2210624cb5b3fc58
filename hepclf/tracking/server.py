"""The ``mlflow server`` command line behind ``hepclf tracking-server``.

One place decides how a hepclf tracking server is started (SQLite by default, proxied
artifacts, loopback unless told otherwise), so the README, the Docker Compose file and
the tests all start the same server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hepclf.runtime.errors import HepclfError

DEFAULT_DB = Path("mlflow") / "mlflow.db"
DEFAULT_ARTIFACTS = Path("mlflow") / "mlartifacts"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
APP_NAMES = ("basic-auth",)
JOBS_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


@dataclass(frozen=True)
class ServerSettings:
    """Where the server keeps runs and artifacts, and where it listens."""

    backend_store_uri: str
    artifacts_destination: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 2
    app_name: str | None = None
    allowed_hosts: str | None = None


def sqlite_uri(path: Path) -> str:
    """``sqlite:///`` URI of an absolute path, so the server does not depend on its cwd."""
    return f"sqlite:///{path.expanduser().resolve()}"


def artifacts_uri(value: str) -> str:
    """A URI as given (s3://, file://, ...), or a local folder made absolute."""
    return value if "://" in value else str(Path(value).expanduser().resolve())


def check_backend(uri: str) -> None:
    """Fail early, with the fix, when a PostgreSQL URI's driver is not installed."""
    dialect, _, driver = uri.split(":", 1)[0].lower().partition("+")
    if dialect not in ("postgresql", "postgres"):
        return
    module = driver or "psycopg2"
    if importlib.util.find_spec(module) is None:
        package = "psycopg2-binary" if module == "psycopg2" else module
        raise HepclfError(
            f"backend store {dialect}://... needs the Python driver {module!r}, which is not "
            f"installed; install it with `pip install {package}` (hepclf's 'server' extra "
            "has psycopg2-binary)"
        )


def check_auth_app(settings: ServerSettings) -> None:
    """Say up front what MLflow's basic-auth app needs, instead of a traceback at start-up."""
    if settings.app_name != "basic-auth":
        return
    if importlib.util.find_spec("flask_wtf") is None:
        raise HepclfError(
            "--app-name basic-auth needs MLflow's auth extra (Flask-WTF), which is not "
            "installed; install it with `pip install Flask-WTF` (hepclf's 'server' extra has it)"
        )
    if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        raise HepclfError(
            "--app-name basic-auth needs a secret key for its CSRF protection: set "
            "MLFLOW_FLASK_SERVER_SECRET_KEY to a long random string (the same for every "
            "server process), e.g. `export MLFLOW_FLASK_SERVER_SECRET_KEY=$(openssl rand -hex "
            "32)`; see mlflow/README.md"
        )


def prepare_local_store(settings: ServerSettings) -> None:
    """Create the SQLite folder and the local artifact folder the server will write to."""
    if settings.backend_store_uri.startswith("sqlite:///"):
        Path(settings.backend_store_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    if "://" not in settings.artifacts_destination:
        Path(settings.artifacts_destination).mkdir(parents=True, exist_ok=True)


def server_argv(settings: ServerSettings) -> list[str]:
    """The ``mlflow server`` command (run with this interpreter) for ``settings``."""
    if settings.app_name is not None and settings.app_name not in APP_NAMES:
        raise HepclfError(
            f"--app-name {settings.app_name!r} is not an MLflow server app; use one of "
            f"{', '.join(APP_NAMES)} or leave it out"
        )
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination", settings.artifacts_destination,
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
    ]  # fmt: skip
    if settings.app_name:
        argv += ["--app-name", settings.app_name]
    if settings.allowed_hosts:
        argv += ["--allowed-hosts", settings.allowed_hosts]
    return argv


def preflight(settings: ServerSettings) -> None:
    """Check what the server needs and create its local folders, before anything starts."""
    check_backend(settings.backend_store_uri)
    check_auth_app(settings)
    prepare_local_store(settings)


def run_server(settings: ServerSettings) -> int:
    """Run the MLflow server until it exits or this process is told to stop; its exit code.

    ``mlflow server`` starts uvicorn (and job workers) as child processes and leaves them
    running when it is terminated alone, so the server runs in a process group of its own:
    Ctrl-C, SIGTERM (``kill``, ``docker stop``) and this process's exit reach all of it.

    MLflow's server-side job execution (GenAI evaluation and prompt-optimisation jobs) is
    off unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION says otherwise: hepclf does not use it,
    and it starts eight more Python processes, which double the start-up time.
    """
    env = {**os.environ, JOBS_ENV: os.environ.get(JOBS_ENV, "false")}
    process = subprocess.Popen(server_argv(settings), env=env, start_new_session=True)
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_group(process.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(process)
    return 0 if stopping and code in (0, -signal.SIGINT, -signal.SIGTERM) else code


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _stop_group(process: subprocess.Popen) -> None:
    """Terminate what is left of the server's process group (the workers of a dead server)."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    _signal_group(process.pid, signal.SIGKILL)
