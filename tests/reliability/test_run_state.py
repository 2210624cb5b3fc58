"""Honest run state: interrupted trainings, concurrent first use of a store, read-only commands.

Real ``hepclf`` processes against real SQLite stores; the outcome is read back from MLflow
and the file system.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import mlflow
import pytest

from hepclf.runtime.interrupts import deferred
from hepclf.tracking.compare import recent_runs
from hepclf.tracking.logging import end_status
from hepclf.tracking.store import use_store
from tests.conftest import demo_pipeline_dict, write_pipeline

HEPCLF = [sys.executable, "-m", "hepclf"]


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "HEPCLF_CACHE_DIR": str(work / "cache")}


def _pipeline_runs(uri: str) -> list:
    client = mlflow.MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, "tags.`hepclf.kind` = 'pipeline'") if ids else []


def _running_runs(db: Path) -> int:
    """Runs marked RUNNING, read without MLflow (which would migrate a store being created)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet, or locked
        return 0


@pytest.mark.slow
def test_sigterm_during_training_marks_the_run_killed(demo_dir: Path, tmp_path: Path) -> None:
    """SIGTERM (what batch systems send) ends the run KILLED: no staging, nothing published."""
    config = demo_pipeline_dict(demo_dir, models={"bdt": {"n_trees": 20000}})
    pipeline = write_pipeline(tmp_path / "p.yaml", config)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = subprocess.Popen(
        [*HEPCLF, "train", str(pipeline), "--output", "out", "--register", "never"],
        cwd=tmp_path,
        env={**_env(tmp_path), "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if _running_runs(tmp_path / "mlflow.db"):
                break
            time.sleep(0.5)
        assert process.poll() is None, "training ended before it could be interrupted"
        time.sleep(2.0)  # into plots and training
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr[-2000:]
    assert "SIGTERM" in stderr and "Traceback" not in stderr
    runs = _pipeline_runs(uri)
    assert [r.info.status for r in runs] == ["KILLED"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    children = client.search_runs(
        [runs[0].info.experiment_id], f"tags.mlflow.parentRunId = '{runs[0].info.run_id}'"
    )
    assert all(c.info.status == "KILLED" for c in children)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".hepclf-staging-*"))
    assert client.search_registered_models() == []


@pytest.mark.slow
def test_concurrent_first_use_of_a_fresh_store(demo_dir: Path, tmp_path: Path) -> None:
    """Three trainings started at once on a store that does not exist yet all succeed."""
    pipeline = write_pipeline(
        tmp_path / "p.yaml", demo_pipeline_dict(demo_dir, models={"linear": {}})
    )
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    processes = [
        subprocess.Popen(
            [*HEPCLF, "train", str(pipeline), "--tracking-uri", uri, "--output", f"out{i}"],
            cwd=tmp_path,
            env=_env(tmp_path / f"w{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errors = []
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        if process.returncode != 0:
            errors.append(stderr[-2000:])
    assert not errors, errors
    runs = _pipeline_runs(uri)
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    for i in range(3):
        assert (tmp_path / f"out{i}" / "metrics.json").is_file()


@pytest.mark.parametrize(
    "command",
    [
        ["score", "data.root", "--model", "models:/clf@champion"],
        ["export", "--model", "models:/clf@champion", "--out", "clf.onnx"],
        ["serve", "--insecure-local"],
        ["compare"],
    ],
)
def test_read_only_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run(
        [*HEPCLF, *command],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_compare_names_a_champion_only_for_finished_runs(tmp_path: Path) -> None:
    """A failed run and one still marked RUNNING (e.g. killed with SIGKILL) name no champion."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("states", artifact_location=str(tmp_path / "art"))
    for status in ("FINISHED", "FAILED", "RUNNING"):
        parent = client.create_run(
            experiment,
            tags={"hepclf.kind": "pipeline", "hepclf.best_model": "linear"},
            run_name=status.lower(),
        )
        child = client.create_run(
            experiment,
            tags={"mlflow.parentRunId": parent.info.run_id, "hepclf.model": "linear"},
        )
        client.log_metric(child.info.run_id, "auc_test", 0.8)
        if status != "RUNNING":
            client.set_terminated(child.info.run_id, status)
            client.set_terminated(parent.info.run_id, status)
    found = recent_runs(uri, "states", 5)
    assert {r.status: r.best for r in found.runs} == {
        "FINISHED": "linear",
        "FAILED": None,
        "RUNNING": None,
    }
    done = subprocess.run(
        [*HEPCLF, "compare", "--experiment", "states", "--tracking-uri", uri],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "FINISHED, best: linear" in out and "FAILED" in out and "RUNNING" in out
    assert out.count("linear *") == 1 and out.count("(not finished: no champion)") == 2
    assert str(tmp_path / "mlflow.db") in out  # says which store it read
    assert max(len(line) for line in out.splitlines()[1:]) <= 100  # all but the store's path


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, "FINISHED"), (ValueError, "FAILED"), (KeyboardInterrupt, "KILLED")],
)
def test_end_status(error: type[BaseException] | None, status: str) -> None:
    assert end_status(error) == status


def test_interrupts_wait_until_a_step_that_must_finish_is_done() -> None:
    """SIGTERM during registration and publishing is delivered after it, not in the middle."""
    fired: list[float] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: fired.append(time.monotonic()))
    try:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            assert fired == []
            finished = time.monotonic()
        for _ in range(100):
            if fired:
                break
            time.sleep(0.01)
        assert fired and fired[0] >= finished
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_model_missing_from_the_store_names_the_store(demo_dir: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    previous = mlflow.get_tracking_uri()
    try:
        use_store(uri, create=True)  # an existing store, without the model
    finally:
        mlflow.set_tracking_uri(previous)
    done = subprocess.run(
        [*HEPCLF, "score", str(demo_dir / "signal.root"), "-m", "models:/nope@champion"],
        cwd=tmp_path,
        env={**_env(tmp_path), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert f"the registry at {uri} has no alias 'champion'" in done.stderr.replace("\n", "")
    assert not list(tmp_path.glob("*_scores.root"))
