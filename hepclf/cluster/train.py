"""Fit one model of the zoo on a partitioned table, score it on the workers, evaluate it here.

- ``xgb``: xgboost.dask on the partitions (:mod:`hepclf.cluster.xgb`);
- ``linear`` (Fisher): exact, from per-partition sums (:mod:`hepclf.cluster.fisher`);
- every other model (``dnn``, ``bdt``, ``rf``, ``svm``, logistic ``linear``): one task on
  one worker reads the training rows from the partitions and runs the model's own fit,
  with its own subsampling (``max_train_events``) and seeds, so it equals the in-process
  fit; the zoo's such fits are one plan of parallel tasks (:func:`fit_zoo_on_cluster`);
- ``categories:``: the categories' fits are parallel tasks of the in-process plan, each
  reading its category's rows, and every event is scored by its own category's model.

Scores for evaluation are computed partition by partition on the workers; the client gets
only the scores, and computes every metric from them, its labels and its weights, with the
in-process code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from hepclf.cluster.executor import DaskExecutor
from hepclf.cluster.prepare import PartitionedData
from hepclf.config import PipelineConfig
from hepclf.models import Classifier, build_model
from hepclf.models.folds import FoldEnsemble
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.progress import Progress
from hepclf.training.normalize import Normalizer
from hepclf.training.plan import FitPlan, FitTask, Fitted, execute_plan
from hepclf.training.results import ModelResult

if TYPE_CHECKING:
    from hepclf.training.crossval import FoldScores

SCORE_RETRIES = 2
T = TypeVar("T")


def _score_partition(
    task: tuple[str, np.ndarray, np.ndarray, Normalizer, np.ndarray | None, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: the model's scores of one partition's train and test rows (a category
    model scores each event with its own category's model: ``category`` per row)."""
    from hepclf.ingest.partitions import read_features
    from hepclf.training.categories import scores_by_category
    from hepclf.training.scores import model_scores

    path, train, test, normalizer, category, model = task
    X = normalizer.transform(read_features(path))
    if category is None:
        return model_scores(model, X[train]), model_scores(model, X[test])
    return (
        scores_by_category(model, X[train], category[train]),
        scores_by_category(model, X[test], category[test]),
    )


def whole_cluster_fit(name: str, params: dict[str, Any], config: PipelineConfig) -> bool:
    """Whether a model's fit uses every worker itself (xgboost.dask, Fisher from partition
    sums) rather than being one task of a plan."""
    if name == "xgb":
        return True
    return (
        name == "linear"
        and build_model(name, params, seed=config.seed).get_params()["method"] == "fisher"
    )


def fit_zoo_on_cluster(
    models: dict[str, dict[str, Any]],
    config: PipelineConfig,
    data: PartitionedData,
    executor: DaskExecutor,
    progress: Progress | None = None,
) -> dict[str, Fitted]:
    """The fits of the zoo that are one task each, as one plan of parallel tasks (each on
    a worker, reading its rows from the partitions), as the in-process ``fit_model`` plans
    them. xgb and Fisher are left out (they use the whole cluster), and so are k-fold and
    categories, whose fits are parallel tasks of their own plans."""
    if data.split.folds is not None or config.categories:
        return {}
    single = {n: p for n, p in models.items() if not whole_cluster_fit(n, p, config)}
    tasks = [
        FitTask(build_model(n, p, seed=config.seed), data.fit_rows, data.validation_rows, n)
        for n, p in single.items()
    ]
    if not tasks:
        return {}
    plan = FitPlan(data.source, tasks, label="hepclf-fit-zoo")  # type: ignore[arg-type]
    with (progress or Progress()).step(f"fitting {', '.join(single)} side by side ..."):
        fitted = execute_plan(plan, executor)  # type: ignore[arg-type]
    return dict(zip(single, fitted, strict=True))


def fit_on_cluster(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PartitionedData,
    executor: DaskExecutor,
) -> tuple[Classifier, float]:
    """A fitted model of type ``name`` and the seconds its fit took."""
    from hepclf.cluster.fisher import fit_fisher
    from hepclf.cluster.xgb import fit_xgb_on_dask
    from hepclf.training.fit import fit_model

    model = build_model(name, params, seed=config.seed)
    start = time.perf_counter()
    if name == "xgb":
        n_features = len(data.table.columns)
        fit_xgb_on_dask(
            model, executor.client, data.fit, data.validation, data.normalizer, n_features
        )  # type: ignore[arg-type]
    elif name == "linear" and model.get_params()["method"] == "fisher":
        fit_fisher(model, [*data.fit, *data.validation], data.normalizer, executor)  # type: ignore[arg-type]
        _mark_fitted(model, data)
    else:  # the in-process fit plan, its one task run on a worker reading the partitions
        return fit_model(name, params, config, data, executor)  # type: ignore[arg-type]
    return model, time.perf_counter() - start


def _mark_fitted(model: Classifier, data: PartitionedData) -> None:
    """The fitted attributes every model sets in ``Classifier.fit``."""
    model.classes_ = np.unique([p.label for p in data.fit])
    model.n_features_in_ = len(data.table.columns)
    model.history_ = {}
    model.device_ = "CPU"


def _on_partitions(
    executor: DaskExecutor,
    function: Callable[[Any], T],
    model: Any,
    tasks: list[tuple[Any, ...]],
    label: str,
) -> list[T]:
    """``function((*task, model))`` for every task (one a partition) on the workers; the
    model is sent to every worker once, not with each task."""
    [shared] = executor.client.scatter([model], broadcast=True, hash=False)
    return executor.map(
        function, [(*task, shared) for task in tasks], label=label, retries=SCORE_RETRIES
    )


def score_on_cluster(
    model: Any, data: PartitionedData, executor: DaskExecutor
) -> dict[str, np.ndarray]:
    """Scores of the train and test rows, computed partition by partition on the workers."""
    table = data.table
    train, test = data.rows_of("train"), data.rows_of("test")
    offsets = table.offsets
    tasks = [
        (
            p.path,
            tr,
            te,
            data.normalizer,
            None if table.category is None else table.category[offsets[i] : offsets[i + 1]],
        )
        for i, (p, tr, te) in enumerate(zip(table.partitions, train, test, strict=True))
        if len(tr) or len(te)
    ]
    scored = _on_partitions(executor, _score_partition, model, tasks, "hepclf-score")
    return {
        "train": np.concatenate([s[0] for s in scored]),
        "test": np.concatenate([s[1] for s in scored]),
    }


def train_on_cluster(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PartitionedData,
    executor: DaskExecutor,
    progress: Progress | None = None,
    fitted: Fitted | None = None,
) -> ModelResult:
    """Fit, score on the workers and evaluate one model: the cluster's ``train_model``.

    ``fitted``: the model already fitted (by :func:`fit_zoo_on_cluster`, side by side with
    the zoo's other one-task fits)."""
    from hepclf.training.categories import fit_categories
    from hepclf.training.fit import evaluate_scores

    if data.split.folds is not None:
        if config.categories:
            raise ConfigError(
                "k-fold with categories is not trained on a cluster yet: run `hepclf train` "
                "without --workers/--scheduler for this pipeline, or use split.method: random"
            )
        return train_folds_on_cluster(name, params, config, data, executor, progress)
    if fitted is not None:
        model, train_seconds = fitted.model, fitted.seconds
    elif config.categories:  # the categories' fits: parallel tasks of the in-process plan
        start = time.perf_counter()
        model = fit_categories(name, params, config, data, executor)  # type: ignore[arg-type]
        train_seconds = time.perf_counter() - start
    else:
        model, train_seconds = fit_on_cluster(name, params, config, data, executor)
    start = time.perf_counter()
    scores = score_on_cluster(model, data, executor)
    predict_seconds = time.perf_counter() - start
    report = evaluate_scores(config, data, scores)  # type: ignore[arg-type]
    return ModelResult(name, model, report, train_seconds, scores, predict_seconds=predict_seconds)


def _fold_scores_of_partition(
    task: tuple[str, np.ndarray, Normalizer, FoldEnsemble],
) -> FoldScores:
    """On a worker: out-of-fold and in-fold scores of one partition's events."""
    from hepclf.ingest.partitions import read_features
    from hepclf.training.crossval import fold_scores

    path, fold, normalizer, ensemble = task
    return fold_scores(ensemble, normalizer.transform(read_features(path)), fold)


def train_folds_on_cluster(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PartitionedData,
    executor: DaskExecutor,
    progress: Progress | None = None,
) -> ModelResult:
    """k-fold on a cluster: the fold models are parallel tasks of the in-process plan (each
    on one worker, reading its rows from the partitions), scored partition by partition."""
    from hepclf.training.crossval import FoldScores, fit_ensemble, fold_result

    table, fold = data.table, data.split.folds
    assert fold is not None
    start = time.perf_counter()
    rows = np.arange(len(table))
    ensemble = fit_ensemble(name, params, config, data, rows, progress, executor)  # type: ignore[arg-type]
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    offsets = table.offsets
    tasks = [
        (p.path, fold[offsets[i] : offsets[i + 1]], data.normalizer)
        for i, p in enumerate(table.partitions)
    ]
    parts = _on_partitions(
        executor, _fold_scores_of_partition, ensemble, tasks, "hepclf-score-folds"
    )
    scores = FoldScores(
        fold,
        np.concatenate([p.out_of_fold for p in parts]),
        [np.concatenate([p.in_fold[k] for p in parts]) for k in range(config.split.folds)],
    )
    predict_seconds = time.perf_counter() - start
    return fold_result(
        name, ensemble, config, scores, table.label, table.weight, train_seconds, predict_seconds
    )
