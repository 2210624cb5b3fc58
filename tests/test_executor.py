"""The fit plan and its executor: every fit of a run goes through one executor's ``map``,
tasks are small and picklable (rows by index, never the table), and an executor that runs
the tasks elsewhere (here: through a pickle round trip, as a worker would) gives the same
models as the default in-process one."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hepclf.config import parse_pipeline
from hepclf.ingest import ingest
from hepclf.training.executor import Executor, InProcessExecutor
from hepclf.training.fit import train_model
from hepclf.training.plan import FitTask
from hepclf.training.prepare import prepare
from tests.conftest import demo_pipeline_dict

LINEAR = {"linear": {"method": "logistic"}}


class PicklingExecutor:
    """Runs each task after a pickle round trip of the function and the task, as a worker
    process would receive them, and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any], int]] = []

    def map(
        self,
        function: Callable[[Any], Any],
        tasks: Sequence[Any],
        *,
        label: str = "",
        retries: int = 0,
    ) -> list[Any]:
        self.calls.append((label, list(tasks), len(pickle.dumps(function))))
        shipped = pickle.loads(pickle.dumps(function))
        return [pickle.loads(pickle.dumps(shipped(pickle.loads(pickle.dumps(t))))) for t in tasks]


def _config(demo_dir: Path, tmp_path: Path, **overrides: object) -> Any:
    raw = demo_pipeline_dict(demo_dir, models=LINEAR, **overrides)
    raw.pop("result", None)
    return parse_pipeline(raw, base_dir=tmp_path)


def test_in_process_executor_keeps_task_order_and_raises() -> None:
    executor: Executor = InProcessExecutor()
    assert executor.map(lambda x: x * x, [3, 1, 2], label="squares", retries=2) == [9, 1, 4]

    def fail(x: int) -> int:
        raise ValueError(f"task {x}")

    with pytest.raises(ValueError, match="task 0"):
        executor.map(fail, [0, 1])


def test_kfold_categories_fit_one_task_per_category_and_fold(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    categories = [
        {"name": "many", "selection": "nJet >= 4"},
        {"name": "few", "selection": "nJet < 4"},
    ]
    config = _config(
        demo_dir, tmp_path, split={"method": "kfold", "folds": 3, "seed": 5}, categories=categories
    )
    data = prepare(config, ingest(config))
    executor = PicklingExecutor()
    shipped = train_model("linear", {"method": "logistic"}, config, data, executor=executor)
    default = train_model("linear", {"method": "logistic"}, config, data)

    tasks = [task for _, tasks, _ in executor.calls for task in tasks]
    assert [label for label, _, _ in executor.calls] == [
        "linear [many] folds",
        "linear [few] folds",
    ]
    assert len(tasks) == 2 * 3 and all(isinstance(t, FitTask) for t in tasks)
    fold = data.split.folds
    for c, calls in enumerate(executor.calls):
        for k, task in enumerate(calls[1]):
            rows = task.fit.rows
            assert np.all(data.table.category[rows] == c) and np.all(fold[rows] != k)
    # a task names its rows; it does not carry the table
    table_bytes = data.table.X.nbytes
    assert max(len(pickle.dumps(t)) for t in tasks) < table_bytes / 4
    # the same models, whether the tasks travelled or not
    assert np.array_equal(shipped.scores["test"], default.scores["test"])
    assert shipped.report.auc_test == default.report.auc_test


def test_split_model_and_its_validation_rows_go_through_the_executor(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    config = _config(demo_dir, tmp_path)
    data = prepare(config, ingest(config))
    executor = PicklingExecutor()
    shipped = train_model("linear", {"method": "logistic"}, config, data, executor=executor)
    [(label, [task], _)] = executor.calls
    assert label == "linear"
    assert np.array_equal(task.fit.rows, data.fit_rows.rows)
    assert np.array_equal(task.validation.rows, data.validation_rows.rows)
    default = train_model("linear", {"method": "logistic"}, config, data)
    assert np.array_equal(shipped.scores["test"], default.scores["test"])


def test_tuning_trials_fit_through_the_executor(tmp_path: Path) -> None:
    from hepclf.training.tuning import tune_model

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    X = (rng.normal(size=(600, 3)) + 0.8 * y[:, None]).astype(np.float32)
    executor = PicklingExecutor()
    result = tune_model(
        "linear", X, y, folds=2, trials=3, timeout_s=None, storage=tmp_path / "t.db", seed=1,
        pruning=False, executor=executor,
    )  # fmt: skip
    assert result.n_trials == 3
    # one plan per trial and fold (so the pruner may stop a trial after any fold)
    assert len(executor.calls) == 3 * 2
    assert {label for label, _, _ in executor.calls} == {"tuning linear"}
