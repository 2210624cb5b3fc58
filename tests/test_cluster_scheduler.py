"""`hepclf ingest` and `hepclf train --scheduler` on a real ``dask scheduler`` with two
``dask worker`` processes on 127.0.0.1, as a batch farm's cluster is reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.conftest import free_port, stop_process_group
from tests.test_cluster import write_files

DASK = str(Path(sys.executable).with_name("dask"))
HEPCLF = [sys.executable, "-m", "hepclf"]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``dask scheduler`` and two single-threaded ``dask worker`` processes."""
    from dask.distributed import Client

    root = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    commands = [
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
        *(
            [
                DASK,
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(root / f"w{i}"),
            ]
            for i in range(2)
        ),
    ]
    processes = []
    try:
        for i, command in enumerate(commands):
            log = (root / f"process{i}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
            if i == 0:
                time.sleep(2.0)
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            stop_process_group(process)


def test_train_through_a_running_scheduler(scheduler: str, tmp_path: Path) -> None:
    from dask.distributed import Client, get_task_stream

    pipeline = write_files(tmp_path / "data", n_dirs=2, events=1500)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--scheduler", scheduler, "--table-dir", str(tmp_path / "tables")]
    with Client(scheduler) as observer, get_task_stream(client=observer) as stream:
        ingest = subprocess.run(
            [*HEPCLF, "ingest", str(pipeline), *common],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert ingest.returncode == 0, ingest.stderr
        assert "4 partitions in" in ingest.stdout
        trained = subprocess.run(
            [
                *HEPCLF,
                "train",
                str(pipeline),
                "--models",
                "linear",
                "--tracking-uri",
                store,
                "--output",
                str(tmp_path / "out"),
                *common,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert trained.returncode == 0, trained.stderr
        workers = set(observer.scheduler_info()["workers"])
    assert len(workers) == 2 and {t["worker"] for t in stream.data} == workers
    names = {t["key"].split("-", 2)[1] for t in stream.data if t["key"].startswith("hepclf-")}
    assert {"ingest", "fisher", "score"} <= names  # read, fitted and scored on the workers
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0.7 < metrics["linear"]["auc_test"] < 0.9
    [run] = mlflow.MlflowClient(store).search_runs(
        [mlflow.MlflowClient(store).get_experiment_by_name("hepclf-demo").experiment_id],
        filter_string="tags.hepclf.kind = 'pipeline'",
    )
    assert run.info.status == "FINISHED"


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    pipeline = write_files(tmp_path / "data", n_dirs=1, events=500)
    address = f"tcp://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*HEPCLF, "ingest", str(pipeline), "--scheduler", address],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HEPCLF_CONNECT_TIMEOUT_S": "2"},
    )
    assert done.returncode == 2
    assert address in done.stderr and "Traceback" not in done.stderr
