"""Ingest and training on a real Dask cluster: a LocalCluster of two worker processes, and
(in tests/test_cluster_scheduler.py) a real ``dask scheduler`` with two ``dask worker``s.

The cluster run must equal the in-process run: the same table rows, split and normaliser,
``linear`` (Fisher from per-partition sums) to rounding, fits on a worker exactly, xgb
(xgboost.dask) within its run-to-run spread. Faults: a killed worker during ingest is
retried; during xgb the fit fails cleanly (no hang), the MLflow run ends FAILED.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from tests.conftest import demo_pipeline_dict, write_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def write_files(base: Path, n_dirs: int = 3, events: int = 1500) -> Path:
    """Several signal and background files (one pair per folder) and a pipeline over them."""
    from hepclf.ingest.demo_data import write_demo_data

    for i in range(n_dirs):
        write_demo_data(base / f"d{i}", events=events, seed=20 + i)
    config = demo_pipeline_dict(base / "d0", event_id=None, models={"linear": {}, "xgb": {}})
    config["samples"][0]["files"] = [str(base / "d*/signal.root")]
    config["samples"][1]["files"] = [str(base / "d*/background.root")]
    return write_pipeline(base / "pipeline.yaml", config)


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_files(tmp_path_factory.mktemp("cluster-data"))


@pytest.fixture(scope="module")
def client():
    from hepclf.cluster.client import dask_client

    with dask_client(2, None) as connected:
        yield connected


def test_ingest_on_workers_equals_in_process_and_is_reused(
    pipeline_file: Path, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dask.distributed import get_task_stream

    import hepclf.cluster.ingest as cluster_ingest
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.config import load_pipeline
    from hepclf.ingest.run import read_samples

    monkeypatch.setattr(cluster_ingest, "ENTRIES_PER_TASK", 1000)  # entry ranges of a file
    config = load_pipeline(pipeline_file)
    expected = read_samples(config)
    with get_task_stream(client=client) as stream:
        table = cluster_ingest.ingest_on_cluster(config, DaskExecutor(client), tmp_path)
    assert {t["worker"] for t in stream.data} == set(client.scheduler_info()["workers"])
    assert len(table.partitions) == 12  # 6 files of 1,500 entries in ranges of 1,000
    assert not hasattr(table, "X")  # the client holds no features
    for name in ("label", "weight", "sample", "event_id"):
        np.testing.assert_array_equal(getattr(table, name), getattr(expected, name))
    np.testing.assert_array_equal(table.features(np.arange(len(table))), expected.X)
    for ours, theirs in zip(table.info["samples"], expected.info["samples"], strict=True):
        assert ours == pytest.approx(theirs)
    assert table.info["cached"] is False
    again = cluster_ingest.ingest_on_cluster(config, DaskExecutor(client), tmp_path)
    assert again.info["cached"] is True and again.folder == table.folder


def test_sum_weights_of_all_events_gathered_from_the_tasks(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    """sum_weights: all_events: every task sums its entries' weights before the selection,
    the client adds them in the in-process order and the loaded weights equal in-process."""
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.config import load_pipeline
    from hepclf.ingest.run import read_samples

    raw = yaml.safe_load(pipeline_file.read_text())
    raw["samples"][0]["sum_weights"] = "all_events"
    config = load_pipeline(write_pipeline(tmp_path / "all.yaml", raw))
    table = ingest_on_cluster(config, DaskExecutor(client), tmp_path / "tables")
    expected = read_samples(config)
    np.testing.assert_array_equal(table.weight, expected.weight)
    [ours, theirs] = (t.info["samples"][0] for t in (table, expected))
    assert ours["generated_sum_weights"] == theirs["generated_sum_weights"]
    assert ours["entries"] > ours["selected"]  # the sum is over every entry, not the selected
    assert ours["sum_weights"] == pytest.approx(theirs["sum_weights"], rel=1e-12)
    reread = ingest_on_cluster(config, DaskExecutor(client), tmp_path / "tables")
    assert reread.info["cached"] and np.array_equal(reread.weight, expected.weight)


def test_failing_files_are_named_and_nothing_is_left(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.config import load_pipeline
    from hepclf.runtime.errors import InputDataError

    data = tmp_path / "data"
    data.mkdir()
    good = next(pipeline_file.parent.glob("d0/signal.root"))
    (data / "a_signal.root").write_bytes(good.read_bytes())
    (data / "b_signal.root").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    raw = demo_pipeline_dict(pipeline_file.parent / "d0", event_id=None)
    raw["samples"][0]["files"] = [str(data / "*_signal.root")]
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", raw))
    tables = tmp_path / "tables"
    with pytest.raises(InputDataError, match=r"b_signal\.root") as caught:
        ingest_on_cluster(config, DaskExecutor(client), tables)
    assert "a_signal.root" not in str(caught.value)
    assert list(tables.iterdir()) == []  # no partition, no partial folder


def test_prepare_and_fits_equal_in_process(pipeline_file: Path, client, tmp_path: Path) -> None:
    from dask.distributed import get_task_stream

    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.cluster.prepare import prepare_on_cluster
    from hepclf.cluster.train import fit_zoo_on_cluster, train_on_cluster
    from hepclf.config import load_pipeline
    from hepclf.ingest.run import read_samples
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare

    config = load_pipeline(pipeline_file)
    data = prepare(config, read_samples(config))
    executor = DaskExecutor(client)
    parted = prepare_on_cluster(config, ingest_on_cluster(config, executor, tmp_path), executor)
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(parted.split, part), getattr(data.split, part))
    np.testing.assert_allclose(parted.normalizer.center, data.normalizer.center, rtol=1e-12)
    np.testing.assert_allclose(parted.normalizer.scale, data.normalizer.scale, rtol=1e-12)
    ours = train_on_cluster("linear", {}, config, parted, executor)
    theirs = train_model("linear", {}, config, data)
    for part in ("train", "test"):  # Fisher from partition sums: equal up to rounding
        # float32 scores: a unit in the last place
        np.testing.assert_allclose(ours.scores[part], theirs.scores[part], rtol=1e-6)
    assert ours.report.auc_test == pytest.approx(theirs.report.auc_test, abs=1e-12)
    # the zoo's one-task fits side by side on the two workers, each equal to its
    # in-process fit (the same stratified, seeded subsample of max_train_events)
    zoo = {
        "svm": {"max_train_events": 1000},
        "bdt": {"n_trees": 20, "max_train_events": 2000},
        "rf": {"n_estimators": 20, "max_train_events": 2000, "n_jobs": 1},
    }
    with get_task_stream(client=client) as stream:
        fitted = fit_zoo_on_cluster(zoo, config, parted, executor)
    fits = [t for t in stream.data if str(t["key"]).startswith("hepclf-fit-zoo")]
    assert len(fits) == 3 and len({t["worker"] for t in fits}) == 2
    for name, params in zoo.items():
        ours = train_on_cluster(name, params, config, parted, executor, fitted=fitted[name])
        theirs = train_model(name, params, config, data)
        for part in ("train", "test"):
            np.testing.assert_allclose(ours.scores[part], theirs.scores[part], rtol=1e-6)
        assert ours.report.auc_test == pytest.approx(theirs.report.auc_test, abs=1e-9)
    # xgb: xgboost.dask, then the in-process refit rule on fit + validation events
    fast = {"learning_rate": 0.3, "n_estimators": 300, "early_stopping_rounds": 20}
    ours = train_on_cluster("xgb", fast, config, parted, executor)
    theirs = train_model("xgb", fast, config, data)
    assert ours.report.auc_test == pytest.approx(theirs.report.auc_test, abs=0.01)
    [rounds] = ours.classifier.history_["refit_rounds"]
    assert ours.classifier.booster_.num_boosted_rounds() == rounds > 3
    n_fit, n_validation = len(parted.fit_rows), len(parted.validation_rows)
    boosted = len(ours.classifier.history_["val_auc"])  # the first fit's rounds, uncut
    assert rounds <= round(boosted * (n_fit + n_validation) / n_fit)
    assert "refit_rounds" in theirs.classifier.history_  # the same rule in process


def test_kfold_fold_models_run_as_parallel_tasks(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    from dask.distributed import get_task_stream

    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.cluster.prepare import prepare_on_cluster
    from hepclf.cluster.train import train_on_cluster
    from hepclf.config import load_pipeline
    from hepclf.ingest.run import read_samples
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare

    config = load_pipeline(pipeline_file)
    config = config.model_copy(
        update={"split": config.split.model_copy(update={"method": "kfold", "folds": 3})}
    )
    executor = DaskExecutor(client)
    parted = prepare_on_cluster(config, ingest_on_cluster(config, executor, tmp_path), executor)
    with get_task_stream(client=client) as stream:
        ours = train_on_cluster("linear", {"method": "logistic"}, config, parted, executor)
    fits = [t for t in stream.data if str(t["key"]).startswith("linear-folds")]
    assert len(fits) == 3 and len({t["worker"] for t in fits}) == 2
    theirs = train_model(
        "linear", {"method": "logistic"}, config, prepare(config, read_samples(config))
    )
    np.testing.assert_allclose(ours.scores["test"], theirs.scores["test"], rtol=1e-6)
    assert ours.folds.auc_folds == pytest.approx(theirs.folds.auc_folds, abs=1e-9)


def test_category_models_fit_side_by_side_and_equal_in_process(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    """categories: on a cluster one fit task per category, each on a worker; every event
    scored by its own category's model, as in process."""
    from dask.distributed import get_task_stream

    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.cluster.prepare import prepare_on_cluster
    from hepclf.cluster.train import train_on_cluster
    from hepclf.config import load_pipeline
    from hepclf.ingest.events.categories import CategoryModel
    from hepclf.ingest.run import read_samples
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare

    raw = demo_pipeline_dict(pipeline_file.parent / "d0", event_id=None)
    raw["samples"][0]["files"] = [str(pipeline_file.parent / "d*/signal.root")]
    raw["samples"][1]["files"] = [str(pipeline_file.parent / "d*/background.root")]
    raw["categories"] = [
        {"name": "central", "selection": "abs(lep_eta) <= 1.0"},
        {"name": "forward", "selection": "abs(lep_eta) > 1.0"},
    ]
    config = load_pipeline(write_pipeline(tmp_path / "categories.yaml", raw))
    executor = DaskExecutor(client)
    parted = prepare_on_cluster(config, ingest_on_cluster(config, executor, tmp_path), executor)
    params = {"method": "logistic"}
    with get_task_stream(client=client) as stream:
        ours = train_on_cluster("linear", params, config, parted, executor)
    fits = [t for t in stream.data if str(t["key"]).startswith("linear-categories")]
    assert len(fits) == 2 and len({t["worker"] for t in fits}) == 2
    theirs = train_model("linear", params, config, prepare(config, read_samples(config)))
    assert isinstance(ours.classifier, CategoryModel)
    for part in ("train", "test"):
        np.testing.assert_allclose(ours.scores[part], theirs.scores[part], rtol=1e-5)
    for name, report in theirs.report.per_category.items():
        assert ours.report.per_category[name].auc_test == pytest.approx(report.auc_test, abs=1e-6)


def test_train_and_result_on_workers_equal_in_process(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    """`hepclf train --workers` then `hepclf result --workers`: the same scores, AUC and
    physics result as in process; the client reads no more than a plot sample of features."""
    from dask.distributed import get_task_stream

    import hepclf.ingest.partitions as partitions
    from hepclf.cluster.client import ClusterSettings
    from hepclf.config import load_pipeline
    from hepclf.workflows.result import recompute_results
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import tracking_uri

    config = load_pipeline(pipeline_file)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    local = run_pipeline(config, models=["linear"], tracking_uri=store, use_cache=False)
    read_here = []
    original = partitions.read_features

    def counted(path: str, rows: np.ndarray | None = None) -> np.ndarray:
        X = original(path, rows)
        read_here.append(len(X))
        return X

    cluster = ClusterSettings(scheduler=client.scheduler.address, table_dir=tmp_path / "tables")
    partitions.read_features = counted  # the client's reads only (workers are processes)
    try:
        remote = run_pipeline(
            config,
            models=["linear"],
            tracking_uri=store,
            output=tmp_path / "out",
            cluster=cluster,
            register="cluster-demo",
        )
        # the input plots' sample (capped) and a 5-event input example; never the whole table
        assert sum(read_here) <= len(local.results["linear"].scores["train"]) + 5
        read_here.clear()
        with tracking_uri(store), get_task_stream(client=client) as stream:
            again = recompute_results(remote.run_id, config, tmp_path / "r", cluster=cluster)
        assert read_here == []
    finally:
        partitions.read_features = original
    ours, theirs = remote.results["linear"], local.results["linear"]
    np.testing.assert_allclose(ours.scores["test"], theirs.scores["test"], rtol=1e-9)
    assert ours.report.auc_test == pytest.approx(theirs.report.auc_test, abs=1e-12)
    assert ours.physics.z0_expected == pytest.approx(theirs.physics.z0_expected, rel=1e-9)
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert mlflow.MlflowClient(store).get_run(remote.run_id).info.status == "FINISHED"
    version = mlflow.MlflowClient(store).get_model_version_by_alias("cluster-demo", "champion")
    assert int(version.version) == 1
    # hepclf result on the workers: the test events scored there, the training's result
    scored = [t for t in stream.data if str(t["key"]).startswith("hepclf-score-result")]
    assert len({t["worker"] for t in scored}) == 2
    [(name, result)] = again.results.items()
    assert name == "linear" and again.source_run_id == remote.run_id
    assert result.z0_expected == pytest.approx(theirs.physics.z0_expected, rel=1e-9)
    assert result.mu_up_expected.median == pytest.approx(
        theirs.physics.mu_up_expected.median, rel=1e-9
    )
    assert (tmp_path / "r" / "results" / "linear").is_dir()


def test_killed_worker_during_ingest_is_retried(pipeline_file: Path, tmp_path: Path) -> None:
    import hepclf.cluster.ingest as cluster_ingest
    from hepclf.cluster.client import dask_client
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.config import load_pipeline
    from hepclf.ingest.run import read_samples
    from hepclf.runtime.progress import Progress

    config = load_pipeline(pipeline_file)
    killed = []

    class KillOnce(Progress):
        """Kills one worker process when the first ingest task is done."""

        bars = True

        def bar(self, description: str, total: int):  # type: ignore[override]
            from contextlib import contextmanager

            @contextmanager
            def advance_bar():
                def advance(n: int) -> None:
                    if not killed:
                        pid = next(iter(pids.values()))
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)

                yield advance

            return advance_bar()

    original = cluster_ingest.ENTRIES_PER_TASK
    cluster_ingest.ENTRIES_PER_TASK = 250  # many short tasks: some run while one dies
    try:
        with dask_client(2, None) as client:
            pids = client.run(os.getpid)
            table = cluster_ingest.ingest_on_cluster(
                config, DaskExecutor(client), tmp_path, progress=KillOnce()
            )
    finally:
        cluster_ingest.ENTRIES_PER_TASK = original
    assert killed
    np.testing.assert_array_equal(table.event_id, read_samples(config).event_id)


def test_killed_worker_during_xgb_fails_cleanly(
    pipeline_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hepclf.cluster.xgb as cluster_xgb
    from hepclf.cluster.client import ClusterSettings
    from hepclf.config import load_pipeline
    from hepclf.runtime.errors import HepclfError
    from hepclf.runtime.progress import Progress
    from hepclf.workflows.train import run_pipeline

    monkeypatch.setattr(cluster_xgb, "LOST_WORKER_GRACE_S", 2.0)
    config = load_pipeline(pipeline_file)
    long = {"n_estimators": 100_000, "early_stopping_rounds": 100_000, "learning_rate": 1e-4}
    config = config.model_copy(update={"models": {"xgb": long}})
    original = cluster_xgb._watched

    killed_at = []

    def kill_a_worker_then_watch(client, train):
        pids = client.run(os.getpid)

        def kill() -> None:
            time.sleep(3.0)  # xgboost.dask is boosting by then
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            killed_at.append(time.monotonic())

        threading.Thread(target=kill, daemon=True).start()
        return original(client, train)

    monkeypatch.setattr(cluster_xgb, "_watched", kill_a_worker_then_watch)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(HepclfError, match="left during training"):
        run_pipeline(
            config,
            tracking_uri=store,
            output=tmp_path / "out",
            cluster=ClusterSettings(workers=2, table_dir=tmp_path / "tables"),
            progress=Progress(),
        )
    assert time.monotonic() - killed_at[0] < 60  # the grace period, not a hang
    [run] = mlflow.MlflowClient(store).search_runs(
        [mlflow.MlflowClient(store).get_experiment_by_name(config.experiment).experiment_id]
    )
    assert run.info.status == "FAILED"
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_names_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import hepclf.cluster.client as cluster_client
    from hepclf.runtime.errors import HepclfError
    from tests.conftest import free_port

    monkeypatch.setattr(cluster_client, "CONNECT_TIMEOUT_S", 2)
    address = f"tcp://127.0.0.1:{free_port()}"
    with (
        pytest.raises(HepclfError, match=re.escape(address)),
        cluster_client.dask_client(1, address),
    ):
        pass


def test_tune_runs_trials_side_by_side_on_the_workers(
    pipeline_file: Path, client, tmp_path: Path
) -> None:
    """`hepclf tune --workers`: each trial a task, two at a time on two workers, the study
    in storage both reach; the first trial (the current setting) has the in-process value."""
    from dask.distributed import get_task_stream

    from hepclf.cluster.client import ClusterSettings
    from hepclf.config import load_pipeline
    from hepclf.config.training import TuneConfig
    from hepclf.ingest.run import read_samples
    from hepclf.training.prepare import prepare
    from hepclf.training.tuning import training_events, tune_models
    from hepclf.workflows.tune import run_tuning

    config = load_pipeline(pipeline_file)
    tune = TuneConfig(trials=4, folds=2, pruning=False, storage=str(tmp_path / "study.db"))
    config = config.model_copy(update={"models": {"linear": {"method": "logistic"}}, "tune": tune})
    data = prepare(config, read_samples(config))
    one = config.model_copy(
        update={"tune": tune.model_copy(update={"trials": 1, "storage": str(tmp_path / "h.db")})}
    )
    [here] = tune_models(one, *training_events(data.table, data.split, data.normalizer)).values()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shared = ClusterSettings(scheduler=client.scheduler.address, table_dir=tmp_path / "tables")
    with get_task_stream(client=client) as stream:
        ours = run_tuning(
            config, tracking_uri=store, output=tmp_path / "tuned.yaml", cluster=shared
        )["linear"]
    trials = [t for t in stream.data if str(t["key"]).startswith("hepclf-tune-linear")]
    assert len(trials) == 4 and {t["worker"] for t in trials} == set(
        client.scheduler_info()["workers"]
    )
    spans = sorted(
        (s["start"], s["stop"]) for t in trials for s in t["startstops"] if s["action"] == "compute"
    )
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))  # side by side
    assert ours.n_trials == 4 and ours.n_complete == 4
    assert ours.trial_values[0] == pytest.approx(here.trial_values[0], abs=1e-9)
    assert ours.best_value == pytest.approx(max(ours.trial_values))
    assert (tmp_path / "tuned.yaml").is_file()
    tracking = mlflow.MlflowClient(store)
    experiment = tracking.get_experiment_by_name(config.experiment).experiment_id
    nested = tracking.search_runs([experiment], "tags.hepclf.kind = 'tuning-trial'")
    assert len(nested) == 4
    assert {r.data.metrics["cv_auc"] for r in nested} >= set(ours.trial_values)


@pytest.mark.parametrize("command", ["tune", "result"])
def test_tune_and_result_take_the_cluster_flags(
    command: str, pipeline_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hepclf tune|result --scheduler` go to the cluster (an unreachable one is named);
    --workers with --scheduler is refused."""
    from typer.testing import CliRunner

    from hepclf.cli import app
    from hepclf.runtime.errors import ConfigError, HepclfError
    from tests.conftest import free_port, tracking_uri

    monkeypatch.setenv("HEPCLF_CONNECT_TIMEOUT_S", "1")
    address = f"tcp://127.0.0.1:{free_port()}"
    args = [command, "runs:/0", "--no-log", "--config"] if command == "result" else [command]
    (tmp_path / "mlflow.db").touch()  # result --no-log reads a store it does not create
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args += [str(pipeline_file), "--table-dir", str(tmp_path), "--tracking-uri", store]
    with tracking_uri(store):  # restored after: result points MLflow at the store
        done = CliRunner().invoke(app, [*args, "--scheduler", address])
        assert isinstance(done.exception, HepclfError) and address in str(done.exception)
        done = CliRunner().invoke(app, [*args, "--scheduler", address, "--workers", "2"])
        assert isinstance(done.exception, ConfigError) and "not both" in str(done.exception)
