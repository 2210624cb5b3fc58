"""Deployment: the tracking server as a real process, and the Docker files checked against
the code they name (no Docker engine on the build machines, so the images are not built).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import typer
import yaml

from hepclf.cli import app
from tests.conftest import REPO, demo_pipeline_dict, write_pipeline

HEPCLF = str(Path(sys.executable).with_name("hepclf"))
DOCKER = REPO / "docker"
ADMIN_PASSWORD = "admin-Passw0rd-for-tests"


# --- helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``hepclf tracking-server`` in its own process group, so stopping it stops its workers."""

    def __init__(self, root: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = root / "artifacts"
        self.log_path = root / "server.log"
        root.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        argv = [
            HEPCLF, "tracking-server", "--port", str(self.port), "--workers", "1",
            "--db", str(root / "mlflow" / "mlflow.db"),
            "--artifacts-destination", str(self.artifacts), *extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, cwd=root, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip

    def wait(self, timeout: float = 150.0) -> str:
        """The server's URL once /health answers; fail with the log if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"tracking server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"no /health within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to hepclf, which stops the whole MLflow server (uvicorn workers included)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                assert self.process.wait(timeout=30) == 0, "hepclf tracking-server exit status"
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                raise
            finally:
                self._log.close()
            with pytest.raises(httpx.ConnectError):  # no worker left listening
                httpx.get(f"{self.url}/health", timeout=2.0)
        self._log.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """A plain and a basic-auth server, started together (their start-ups overlap)."""
    root = tmp_path_factory.mktemp("tracking")
    auth_env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(REPO / "mlflow" / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }
    started = {
        "plain": Server(root / "plain"),
        "auth": Server(root / "auth", "--app-name", "basic-auth", env=auth_env),
    }
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


def cli_options(command: str) -> set[str]:
    """Every option name (``--x``, ``--no-x``) of a ``hepclf`` subcommand."""
    group = typer.main.get_command(app)
    assert command in group.commands, f"hepclf has no '{command}' command"
    return {o for p in group.commands[command].params for o in (*p.opts, *p.secondary_opts)}


def options_in(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def option_value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def mount_target(volume: str) -> str:
    """The container path of a compose volume entry (``source:target[:mode]``)."""
    parts = volume.rsplit(":", 2) if volume.endswith((":ro", ":rw")) else volume.rsplit(":", 1)
    return parts[1]


# --- hepclf tracking-server ------------------------------------------------------------


def test_tracking_server_command_line(tmp_path: Path) -> None:
    """Defaults: SQLite under mlflow/, proxied artifacts, loopback, port 5000."""
    done = subprocess.run(
        [HEPCLF, "tracking-server", "--print-command"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert argv[1:4] == ["-m", "mlflow", "server"]
    here = tmp_path.resolve()
    assert option_value(argv, "--backend-store-uri") == f"sqlite:///{here}/mlflow/mlflow.db"
    assert option_value(argv, "--artifacts-destination") == str(here / "mlflow" / "mlartifacts")
    assert option_value(argv, "--host") == "127.0.0.1"
    assert option_value(argv, "--port") == "5000"
    assert "--serve-artifacts" in argv
    assert "--app-name" not in argv

    # every option handed to mlflow exists in this MLflow's `mlflow server`
    import mlflow.cli

    mlflow_options = {o for p in mlflow.cli.server.params for o in (*p.opts, *p.secondary_opts)}
    assert set(options_in(argv[3:])) <= mlflow_options

    pg = "postgresql://mlflow:pw@db.example.org:5432/mlflow"
    done = subprocess.run(
        [HEPCLF, "tracking-server", "--print-command", "--backend-store-uri", pg,
         "--artifacts-destination", "s3://bucket/mlflow", "--host", "0.0.0.0", "--port", "5050",
         "--app-name", "basic-auth", "--allowed-hosts", "mlflow.example.org"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    argv = shlex.split(done.stdout)
    assert option_value(argv, "--backend-store-uri") == pg
    assert option_value(argv, "--artifacts-destination") == "s3://bucket/mlflow"
    assert option_value(argv, "--app-name") == "basic-auth"
    assert option_value(argv, "--allowed-hosts") == "mlflow.example.org"
    assert set(options_in(argv[3:])) <= mlflow_options


def test_tracking_server_explains_what_basic_auth_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    done = subprocess.run(
        [HEPCLF, "tracking-server", "--app-name", "basic-auth", "--db", str(tmp_path / "m.db")],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "MLFLOW_FLASK_SERVER_SECRET_KEY" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_pipeline_against_tracking_server(
    servers: dict[str, Server], demo_dir: Path, tmp_path: Path
) -> None:
    """`hepclf train` logs to the server; runs, metrics and models read back from it."""
    import mlflow

    server = servers["plain"]
    url = server.wait()
    models = {"linear": {}, "xgb": {"n_estimators": 150, "early_stopping_rounds": 10}}
    pipeline = write_pipeline(tmp_path / "p.yaml", demo_pipeline_dict(demo_dir, models=models))
    done = subprocess.run(
        [HEPCLF, "train", str(pipeline), "--models", "linear,xgb", "--tracking-uri", url,
         "--experiment", "deploy-test", "--register", "deploy-clf", "--output", "out"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "HEPCLF_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    client = mlflow.MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("deploy-test")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1 and set(children) == {"linear", "xgb"}
    for child in children.values():
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert 0.6 < child.data.metrics["auc_test"] <= 1.0

    # the artifacts went through the server into its artifact folder, not the client's
    stored = {p.name for p in server.artifacts.rglob("*") if p.is_file()}
    assert "hepclf_bundle.json" in stored and "MLmodel" in stored
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()

    version = client.get_model_version_by_alias("deploy-clf", "champion")
    assert version.run_id in {r.info.run_id for r in children.values()}
    from hepclf.tracking.registry import load_bundle
    from tests.conftest import tracking_uri

    with tracking_uri(url):
        bundle = load_bundle("models:/deploy-clf@champion")
    assert bundle.name in {"linear", "xgb"} and len(bundle.columns) == 19


@pytest.mark.slow
def test_basic_auth_server(servers: dict[str, Server], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials: 401; the admin creates a user, who can log and read runs."""
    import mlflow
    from mlflow.server import get_app_client

    url = servers["auth"].wait()
    anonymous = httpx.get(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=30)
    assert anonymous.status_code == 401

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    get_app_client("basic-auth", tracking_uri=url).create_user("alice", "alice-Passw0rd-xyz")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-Passw0rd-xyz")
    client = mlflow.MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment("alice-experiment")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "auc_test", 0.875)
    assert client.get_run(run.info.run_id).data.metrics["auc_test"] == 0.875
    assert (servers["auth"].root / "mlflow" / "basic_auth.db").is_file()  # as basic_auth.ini says

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_run(run.info.run_id)


# --- docker/ ---------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"use the exec (JSON) form: {arguments}"
    return value


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKER / "Dockerfile")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def only(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def test_dockerfile_base_user_and_sources(dockerfile: list[tuple[str, str]]) -> None:
    (base,) = only(dockerfile, "FROM")
    assert base == "python:3.11-slim"
    user = only(dockerfile, "USER")[-1]
    assert user not in ("root", "0")
    assert any("useradd" in run and user in run for run in only(dockerfile, "RUN"))

    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    for args in only(dockerfile, "COPY"):
        *sources, _dest = args.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} is not in the repository"
            assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignored}, (
                f"{source} is excluded from the build context by Dockerfile.dockerignore"
            )

    pyproject = (REPO / "pyproject.toml").read_text()
    installs = [run for run in only(dockerfile, "RUN") if "pip install" in run]
    extras = re.findall(r'"\.\[([\w,]+)\]"', " ".join(installs))
    assert extras, "the image installs the package from the repository"
    for extra in extras[0].split(","):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), f"no extra '{extra}'"


def test_dockerfile_entrypoint_serves_on_exposed_port_with_healthcheck(
    dockerfile: list[tuple[str, str]],
) -> None:
    entrypoint = exec_form(only(dockerfile, "ENTRYPOINT")[-1])
    cmd = exec_form(only(dockerfile, "CMD")[-1])
    assert entrypoint[:2] == ["hepclf", "serve"]
    assert 'hepclf = "hepclf.cli:main"' in (REPO / "pyproject.toml").read_text()
    assert set(options_in(cmd)) <= cli_options("serve")
    assert option_value(cmd, "--host") == "0.0.0.0"
    (exposed,) = only(dockerfile, "EXPOSE")
    assert option_value(cmd, "--port") == exposed

    data_root = option_value(cmd, "--data-root")
    assert any(data_root in run and "chown" in run for run in only(dockerfile, "RUN"))

    (health,) = only(dockerfile, "HEALTHCHECK")
    url = urlparse(re.search(r"http://[^'\"]+", health).group(0))
    assert str(url.port) == exposed
    assert_served_without_token(url.path)


def assert_served_without_token(path: str) -> None:
    """The service really answers ``path`` with 200, and without the bearer token."""
    from fastapi.testclient import TestClient

    from hepclf.scoring.service.app import create_app
    from hepclf.scoring.service.settings import ServiceSettings

    with TestClient(create_app(ServiceSettings(token="t" * 32))) as client:
        assert client.get(path).status_code == 200


def test_compose_wires_postgres_mlflow_and_service(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "hepclf"}
    postgres, mlflow_svc, service = services["postgres"], services["mlflow"], services["hepclf"]
    for svc in (mlflow_svc, service):
        build = svc["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"

    # the MLflow server: hepclf tracking-server with options that exist, on PostgreSQL
    assert mlflow_svc["entrypoint"] == ["hepclf", "tracking-server"]
    command = [str(c) for c in mlflow_svc["command"]]
    assert set(options_in(command)) <= cli_options("tracking-server")
    backend = urlparse(option_value(command, "--backend-store-uri"))
    env = postgres["environment"]
    assert backend.scheme.startswith("postgresql") and backend.hostname == "postgres"
    assert backend.username == env["POSTGRES_USER"] and backend.path == f"/{env['POSTGRES_DB']}"
    assert backend.port == 5432
    artifacts = option_value(command, "--artifacts-destination")
    assert artifacts in {mount_target(v) for v in mlflow_svc["volumes"]}
    mlflow_port = option_value(command, "--port")
    assert option_value(command, "--host") == "0.0.0.0"
    assert any(p.endswith(f":{mlflow_port}") for p in mlflow_svc["ports"])
    assert f":{mlflow_port}/health" in " ".join(mlflow_svc["healthcheck"]["test"])
    assert mlflow_svc["depends_on"]["postgres"]["condition"] == "service_healthy"

    # the service: reaches the server by its compose name, which the server accepts
    tracking = urlparse(service["environment"]["MLFLOW_TRACKING_URI"])
    assert tracking.hostname == "mlflow" and str(tracking.port) == mlflow_port
    allowed = option_value(command, "--allowed-hosts").split(",")
    assert tracking.netloc in allowed and tracking.hostname in allowed
    assert "HEPCLF_TOKEN" in service["environment"]
    serve = [str(c) for c in service["command"]]
    assert set(options_in(serve)) <= cli_options("serve")
    assert any(p.endswith(f":{option_value(serve, '--port')}") for p in service["ports"])
    data_root = option_value(serve, "--data-root")
    assert data_root in {mount_target(v) for v in service["volumes"]}
    assert service["depends_on"]["mlflow"]["condition"] == "service_healthy"

    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert {n for n in named if not n.startswith(("$", ".", "/"))} <= set(compose["volumes"])


def test_compose_secrets_are_documented(compose: dict) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "HEPCLF_TOKEN"}
    example = (DOCKER / "env.example").read_text()
    for name in required:
        assert re.search(rf"^{name}=", example, re.M), f"{name} missing from env.example"
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_compose_mlflow_command_is_accepted_by_hepclf(compose: dict, tmp_path: Path) -> None:
    """The server command line of compose.yaml, as hepclf would run it in the container."""
    command = [
        str(c).replace("${POSTGRES_PASSWORD}", "pw")
        for c in compose["services"]["mlflow"]["command"]
    ]
    done = subprocess.run(
        [HEPCLF, "tracking-server", *command, "--print-command"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert option_value(argv, "--backend-store-uri").startswith("postgresql://mlflow:pw@postgres")
    assert "--serve-artifacts" in argv
