"""Shared fixtures: generated demo data, the real ROOT files in ../shared/data, pipelines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    import httpx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A real ROOT file from ../shared/data, or skip the test where it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data is optional)")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small generated signal/background files, shared by the whole session."""
    from hepclf.ingest.demo_data import write_demo_data

    out = tmp_path_factory.mktemp("demo") / "data"
    write_demo_data(out, events=4000, seed=3)
    return out


def demo_pipeline_dict(data_dir: Path, **overrides: object) -> dict:
    """The demo pipeline pointed at ``data_dir``, with top-level keys overridden."""
    config = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    config["samples"][0]["files"] = [str(data_dir / "signal.root")]
    config["samples"][1]["files"] = [str(data_dir / "background.root")]
    config.update(overrides)
    return config


def write_pipeline(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ingest cache per test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HEPCLF_CACHE_DIR", str(folder))
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail early with the log if the process died."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with a temporary SQLite store and artifact folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", process)
        yield uri
    finally:
        stop_process_group(process)
        log.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it forked."""
    import signal

    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


TWO_CLASS_METRIC_KEYS = [
    "auc_test",
    "auc_train",
    "accuracy_test",
    "accuracy_train",
    "accuracy_best_test",
    "best_cut",
    *(f"eff_s_at_eff_b_{p}_{s}" for p in ("0.01", "0.1", "0.3") for s in ("test", "train")),
    *(f"bkg_rejection_at_eff_s_{p}_test{e}" for p in ("0.5", "0.7", "0.9") for e in ("", "_err")),
    "separation_test",
    "ks_statistic_signal",
    "ks_pvalue_signal",
    "ks_statistic_background",
    "ks_pvalue_background",
    "overtrained",
    "significance_best",
    "significance_best_cut",
    "asimov_best",
    "asimov_best_cut",
    "ams_best",
    "ams_best_cut",
]
"""The flat two-class metrics (``metrics.json`` keys), in their order; they must not change."""


# --- scoring and service (tests/test_scoring.py, tests/test_service.py) ---


@contextmanager
def tracking_uri(uri: str) -> Iterator[str]:
    """Point MLflow (and child processes, via the environment) at ``uri`` for a block."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


@dataclass
class Server:
    """A running ``hepclf serve`` process (see :func:`serve`)."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def client(self, timeout: float = 60.0) -> httpx.Client:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextmanager
def serve(base: Path, root: Path, tracking: str, *extra: str) -> Iterator[Server]:
    """``hepclf serve`` on a free port over data root ``root``, with a fresh token in
    ``base/token`` and its log in ``base/service.log``; stopped with its workers at the end."""
    import secrets

    token = secrets.token_urlsafe(32)
    (base / "token").write_text(token + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HEPCLF_TOKEN"}
    log_path = base / "service.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "hepclf", "serve", "--port", str(port)),
                *("--data-root", str(root), "--token-file", str(base / "token")),
                *("--tracking-uri", tracking, *extra),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/health", process)
            yield Server(url, token, root, process, log_path)
        finally:
            stop_process_group(process)


@dataclass(frozen=True)
class RegisteredModels:
    """Small xgb and linear models trained on ``data`` and registered in ``tracking_uri``."""

    tracking_uri: str
    data: Path
    xgb: str
    linear: str
    xgb_uri: str
    linear_uri: str


@pytest.fixture(scope="session")
def registered_models(
    mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> RegisteredModels:
    """Two fast models (30 shallow trees; Fisher) on 5,000 demo events per process, logged as
    pyfunc models with auc_test and registered with alias champion."""
    import mlflow
    import numpy as np

    from hepclf.config import parse_pipeline
    from hepclf.config.training import NormalizationConfig
    from hepclf.ingest.demo_data import write_demo_data
    from hepclf.ingest.run import read_samples
    from hepclf.models import build_model
    from hepclf.tracking.pyfunc import log_bundle
    from hepclf.tracking.registry import register_model
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    data = tmp_path_factory.mktemp("scoring") / "data"
    write_demo_data(data, events=5000, seed=11)
    config = parse_pipeline(demo_pipeline_dict(data, selection=None))
    table = read_samples(config)
    normalizer = Normalizer.fit(table.X, NormalizationConfig())
    X, y, w = normalizer.transform(table.X), table.label, np.abs(table.weight)
    params = {
        "xgb": {"n_estimators": 30, "max_depth": 3, "early_stopping_rounds": 5, "n_jobs": 1},
        "linear": {},
    }
    uris = {}
    with tracking_uri(mlflow_server), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        mlflow.set_experiment("hepclf-scoring-tests")
        for name, hp in params.items():
            model = build_model(name, hp, seed=1).fit(X, y, w)
            bundle = ModelBundle(name, list(config.features), normalizer, model, "scoring-test")
            with mlflow.start_run(run_name=name):
                mlflow.log_metric("auc_test", 0.75)
                uris[name] = log_bundle(bundle)
            register_model(uris[name], f"scoring-test-{name}")
    return RegisteredModels(
        mlflow_server, data, "scoring-test-xgb", "scoring-test-linear", uris["xgb"], uris["linear"]
    )


WIDEST_METRICS = {
    "auc_test": 0.7752,
    "auc_train": 0.7904,
    "eff_s_at_eff_b_0.01_test": 0.129,
    "eff_s_at_eff_b_0.01_train": 0.181,
    "eff_s_at_eff_b_0.1_test": 0.449,
    "eff_s_at_eff_b_0.1_train": 0.485,
    "ks_pvalue_signal": 2.9e-15,
    "ks_pvalue_background": 0.0036,
    "overtrained": 1.0,
    "train_seconds": 1234.4,
    "z0_expected": 2.345,
    "mu_up_expected": 0.1234,
}
"""One model's metrics at their widest (tiny KS p-values, physics columns, a long
training): the comparison table's worst case."""
