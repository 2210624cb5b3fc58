"""The measure tuning maximises: the AUC of held-out tuning folds of the training events.

Folds are stratified by class (a rare class is in every fold); each fold's model is one
fit plan run by an executor, so that the pruner can stop a trial after any fold. The events
are rows of a fit source: the in-memory array, or on a cluster the partitions, read where
the trial runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from hepclf.evaluation import roc_auc
from hepclf.evaluation.multiclass import one_vs_rest_rocs
from hepclf.models import build_model
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.training.executor import Executor
from hepclf.training.plan import FitPlan, FitRows, FitSource, FitTask, RowsSource, execute_plan
from hepclf.training.scores import model_scores

Events = np.ndarray | Rows
"""The events tuning may see: model inputs, or rows of the table normalised as they are read
(``training_events``), so that no normalised copy of them is made."""


def tuning_folds(
    y: np.ndarray, folds: int, seed: int, classes: Sequence[str] | None = None
) -> np.ndarray:
    """The tuning fold of every event: seeded and stratified by class, so every fold holds
    every class (a random assignment can leave a rare class out of a fold's training)."""
    labels = np.unique(y) if classes is None else range(len(classes))
    counts = np.bincount(y, minlength=len(labels))
    for label in labels:
        name, count = int(label) if classes is None else classes[label], int(counts[label])
        if count < folds:
            fix = (
                f"lower tune.folds to {count}"
                if count >= 2
                else f"add events of class {name!r} (tuning needs two per class)"
            )
            raise ConfigError(
                f"tuning: class {name!r} has {count} training event(s), fewer than tune.folds "
                f"({folds}), so a tuning fold would lack it; {fix}"
            )
    fold = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        fold[held_out] = k
    return fold


@dataclass(frozen=True)
class TuningEvents:
    """What a trial reads: ``rows`` of a fit source (the training events, normalised as the
    final fit sees them), their labels, training and evaluation weights and tuning folds.

    In process the source is the in-memory array; on a cluster it is the partitions, read
    by the worker that runs the trial (:mod:`hepclf.cluster.tune`)."""

    source: FitSource
    rows: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    eval_weight: np.ndarray | None
    fold: np.ndarray

    @classmethod
    def of(
        cls,
        X: Events,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        eval_weight: np.ndarray | None,
        fold: np.ndarray,
    ) -> TuningEvents:
        """Events held in this process (model inputs, or rows of the table)."""
        source = RowsSource(as_rows(X, y))
        return cls(source, np.arange(len(y)), y, sample_weight, eval_weight, fold)


def as_rows(X: Events, y: np.ndarray) -> Rows:
    """The events as rows (an array of model inputs is taken as it is)."""
    return X if isinstance(X, Rows) else Rows.of(X, y)


def cross_validated_auc(
    name: str,
    params: dict[str, Any],
    X: Events,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    eval_weight: np.ndarray | None,
    fold: np.ndarray,
    seed: int,
    report: Callable[[int, float], None] | None = None,
    executor: Executor | None = None,
) -> list[float]:
    """AUC of each held-out fold for one parameter set; ``report(k, mean)`` after each fold."""
    events = TuningEvents.of(X, y, sample_weight, eval_weight, fold)
    return fold_aucs(name, params, events, seed, report, executor)


def fold_aucs(
    name: str,
    params: dict[str, Any],
    events: TuningEvents,
    seed: int,
    report: Callable[[int, float], None] | None = None,
    executor: Executor | None = None,
) -> list[float]:
    """AUC of each held-out tuning fold of ``events``; ``report(k, mean)`` after each fold.

    The folds are fitted one plan at a time, so that the pruner can stop a hopeless trial
    after any fold. Fits and scores read the folds' rows block by block where the source
    offers rows (in process); the held-out fold is scored as the pipeline scores its test
    events (float32).
    """
    estimator = build_model(name, params, seed=seed)
    fold, sample_weight, eval_weight = events.fold, events.sample_weight, events.eval_weight
    rows_of = getattr(events.source, "rows", None)
    aucs: list[float] = []
    for k in range(int(fold.max()) + 1):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        w = None if sample_weight is None else sample_weight[train]
        fit = FitRows(events.rows[train], w)
        task = FitTask(estimator, fit, name=f"{name} tuning fold {k + 1}")
        plan = FitPlan(events.source, [task], label=f"tuning {name}")
        [fitted] = execute_plan(plan, executor)
        held_out = FitRows(events.rows[test])
        inputs = rows_of(held_out) if rows_of else events.source.arrays(held_out)[0]
        scores = model_scores(fitted.model, inputs)
        aucs.append(
            _auc(events.y[test], scores, None if eval_weight is None else eval_weight[test])
        )
        if report is not None:
            report(k, float(np.mean(aucs)))
    return aucs


def _auc(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None) -> float:
    """The pipeline's ``auc_test`` measure on ``model_scores``: the signal AUC for two
    classes, the macro one-vs-rest AUC for more."""
    if scores.ndim == 1:
        return roc_auc(y, scores, weight)
    rocs = one_vs_rest_rocs(y, scores, weight, scores.shape[1])
    return float(np.mean([roc.auc for roc in rocs]))
