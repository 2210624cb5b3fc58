"""k-fold cross-validated training and application, as TMVA's CrossValidation does it.

Every event is used: fold model ``k`` trains on all folds but ``k`` (its early-stopping
events are carved from those folds by the model itself) and scores fold ``k``. The
out-of-fold scores of all events are what the classifier is judged on, and in-fold scores
(each model on its own training events) feed the per-fold overtraining check.

The fitted :class:`FoldEnsemble` applies the same rule later: an event with an event id is
scored by the model whose fold it is (``event_id % folds``), so scoring the training files
reproduces the out-of-fold scores exactly and gives unbiased friend-tree scores; an event
without id (or folds assigned at random in training) gets the average of the fold models.
With more than two classes the same holds for the (n, K) probabilities, evaluated with
:mod:`hepclf.evaluation.multiclass` (macro one-vs-rest AUC out-of-fold and per fold).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.evaluation import (
    KSResult,
    RocCurve,
    evaluate_classifier,
    ks_test,
    roc_curve,
)
from hepclf.evaluation.folds import CrossValReport
from hepclf.evaluation.multiclass import MulticlassReport, evaluate_multiclass
from hepclf.ingest.events.categories import CategoryModel
from hepclf.models import build_model
from hepclf.models.folds import RULE_EVENT_ID, FoldEnsemble
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.training.categories import CategoryReport
from hepclf.training.executor import Executor
from hepclf.training.plan import FitPlan, FitTask, execute_plan
from hepclf.training.prepare import PreparedData, weighted_rows
from hepclf.training.results import ModelResult

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.runtime.progress import Progress


@dataclass
class FoldScores:
    """Scores of the training events by a fitted fold ensemble.

    ``out_of_fold[i]`` is the signal score of event ``i`` from the model that did not train
    on it; ``in_fold[k]`` are model ``k``'s scores of its own training events (rows
    ``fold != k``, in row order). With more than two classes each score is the row of K
    class probabilities.
    """

    fold: np.ndarray
    out_of_fold: np.ndarray
    in_fold: list[np.ndarray]

    @property
    def n_folds(self) -> int:
        return len(self.in_fold)

    def in_fold_per_event(self) -> np.ndarray:
        """One in-fold score per event: that of the next fold's model (which trained on it).

        Aligned with ``out_of_fold``, for plots that compare train and test scores event by
        event; the overtraining test itself uses every fold (``evaluate_folds``).
        """
        score = np.empty((len(self.fold), *self.out_of_fold.shape[1:]), self.out_of_fold.dtype)
        k_all = self.n_folds
        for j in range(k_all):
            rows = np.flatnonzero(self.fold != j)
            pick = self.fold[rows] == (j - 1) % k_all
            score[rows[pick]] = self.in_fold[j][pick]
        return score


def fold_scores(
    ensemble: FoldEnsemble, X: np.ndarray | Rows, fold: np.ndarray | None = None
) -> FoldScores:
    """Out-of-fold and in-fold signal scores of the events ``ensemble`` was fitted on
    (two classes), or their (n, K) class probabilities (more classes).

    ``X``: normalised features, or rows of the table (scored block by block, as float32,
    without a normalised copy). ``fold`` defaults to the fitted ``folds_`` (not saved with
    the model: give it for a loaded ensemble), and must be given when ``X`` also holds
    events left out of the fit (e.g. negative weights dropped from training but evaluated).
    """
    fold = ensemble.folds_ if fold is None else np.asarray(fold)
    if isinstance(X, Rows):
        from hepclf.training.scores import model_scores

        models = ensemble.estimators_
        parts = [np.flatnonzero(fold == k) for k in range(len(models))]
        scored = [model_scores(m, X.take(rows)) for m, rows in zip(models, parts, strict=True)]
        oof = np.empty((len(fold), *scored[0].shape[1:]), dtype=np.float32)
        for rows, scores in zip(parts, scored, strict=True):
            oof[rows] = scores
        in_fold = [model_scores(m, X.take(np.flatnonzero(fold != k))) for k, m in enumerate(models)]
        return FoldScores(fold, oof, in_fold)
    column = 1 if len(ensemble.classes_) == 2 else slice(None)
    oof = ensemble.predict_proba_folds(X, fold)[:, column]
    in_fold = [m.predict_proba(X[fold != k])[:, column] for k, m in enumerate(ensemble.estimators_)]
    return FoldScores(fold, oof, in_fold)


def evaluate_folds(
    scores: FoldScores,
    y: np.ndarray,
    weight: np.ndarray | None,
    *,
    ks_threshold: float = 0.05,
    ks_bins: int | None = 40,
    classes: Sequence[str] = (),
    signal_classes: Sequence[str] = (),
) -> CrossValReport:
    """Metrics on the out-of-fold scores, per-fold AUCs and the per-fold overtraining check.

    The in-fold sample weights are divided by ``folds - 1`` (each event is in the training
    folds of that many models), so both samples carry the events' total weight. (n, K)
    probabilities are evaluated as multi-class (``classes`` names the columns; labels are
    class indices), with ``auc_folds`` the per-fold macro AUCs.
    """
    y = np.asarray(y)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    k_all = scores.n_folds
    rows_in = [np.flatnonzero(scores.fold != k) for k in range(k_all)]
    y_in = np.concatenate([y[r] for r in rows_in])
    w_in = np.concatenate([w[r] for r in rows_in]) / (k_all - 1)
    s_in = np.concatenate(scores.in_fold)
    if scores.out_of_fold.ndim == 2:
        names = list(classes) or [str(c) for c in range(scores.out_of_fold.shape[1])]

        def measure(test: tuple, train: tuple) -> MulticlassReport:
            return evaluate_multiclass(
                *test, *train, names, signal_classes, ks_threshold=ks_threshold, ks_bins=ks_bins
            )

        outs = [scores.fold == k for k in range(k_all)]
        fold_reports = [
            measure(
                (y[outs[k]], scores.out_of_fold[outs[k]], w[outs[k]]),
                (y[rows_in[k]], scores.in_fold[k], w[rows_in[k]]),
            )
            for k in range(k_all)
        ]
        overall = measure((y, scores.out_of_fold, w), (y_in, s_in, w_in))
        ks = {  # per-fold tests combined, as for two classes
            node: {c: _combined([r.ks[node][c] for r in fold_reports]) for c in names}
            for node in names
        }
        return CrossValReport(
            replace(overall, ks=ks), [r.signal_roc_test for r in fold_reports], [], fold_reports
        )
    report = evaluate_classifier(
        y, scores.out_of_fold, w, y_in, s_in, w_in, ks_threshold=ks_threshold, ks_bins=ks_bins
    )
    rocs: list[RocCurve] = []
    ks: list[tuple[KSResult, KSResult]] = []
    for k in range(k_all):
        out = scores.fold == k
        rocs.append(roc_curve(y[out], scores.out_of_fold[out], w[out]))
        inside = rows_in[k]
        pair = []
        for cls in (1, 0):
            a = y[inside] == cls
            b = y[out] == cls
            s_in, s_out = scores.in_fold[k][a], scores.out_of_fold[out][b]
            pair.append(ks_test(s_in, s_out, w[inside][a], w[out][b], ks_bins))
        ks.append((pair[0], pair[1]))
    report = replace(
        report,
        ks_signal=_combined([s for s, _ in ks]),
        ks_background=_combined([b for _, b in ks]),
    )
    return CrossValReport(report, rocs, ks)


def _combined(results: list[KSResult]) -> KSResult:
    """Per-fold KS tests as one: the largest distance, Bonferroni-corrected smallest p."""
    return KSResult(
        statistic=max(r.statistic for r in results),
        pvalue=min(1.0, len(results) * min(r.pvalue for r in results)),
    )


def train_folds(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> ModelResult:
    """The pipeline's k-fold step: a fold ensemble of ``name``, scored and evaluated.

    Every event is normalised with the one normaliser (fitted on all events, which carry no
    labels into it), trained on by the models of the other folds with the pipeline's
    training weights, and evaluated out-of-fold with its physical weight. Events the
    weight policy leaves out of training (``negative_weights: drop``) are still scored.
    With ``categories:`` each category gets its own fold ensemble (:func:`_category_folds`).
    """
    table, fold = data.table, data.split.folds
    if fold is None:
        raise ValueError("train_folds needs a k-fold split (split.method: kfold)")
    X = Rows(table.X, None, table.label, table.weight, data.normalizer.transform)
    if config.categories:
        return _category_folds(name, params, config, data, X, progress, executor)
    start = time.perf_counter()
    ensemble = fit_ensemble(name, params, config, data, np.arange(len(table)), progress, executor)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = fold_scores(ensemble, X, fold)
    predict_seconds = time.perf_counter() - start
    return fold_result(
        name, ensemble, config, scores, table.label, table.weight, train_seconds, predict_seconds
    )


def fit_ensemble(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    rows: np.ndarray,
    progress: Progress | None,
    executor: Executor | None,
    label: str = "",
) -> FoldEnsemble:
    """A fold ensemble of ``name`` fitted on ``rows``, with the training weights of those
    rows and the split's folds: one plan of a fit per fold, run by ``executor``."""
    table, fold = data.table, data.split.folds
    assert fold is not None
    kept = weighted_rows(table, rows, config)
    ids = table.event_id[kept.rows] if config.event_id else None
    base = build_model(name, params, seed=config.seed)
    ensemble = FoldEnsemble(base, folds=config.split.folds, seed=config.split.seed)
    kept_fold, rule = ensemble.fold_assignment(len(kept), ids, fold[kept.rows])
    n = config.split.folds
    tasks = [
        FitTask(
            base,
            kept.subset(kept_fold != k),
            name=f"{name}{label} fold {k + 1}/{n}",
        )
        for k in range(n)
    ]
    fitted = execute_plan(FitPlan(data.source, tasks, label=f"{name}{label} folds"), executor)
    if progress is not None:
        for task, result in zip(tasks, fitted, strict=True):
            progress.note(f"  {task.name}: {result.seconds:.1f} s")
    return ensemble.set_fold_models([f.model for f in fitted], kept_fold, rule)


def fold_result(
    name: str,
    model: Any,
    config: PipelineConfig,
    scores: FoldScores,
    y: np.ndarray,
    weight: np.ndarray,
    train_seconds: float,
    predict_seconds: float,
) -> ModelResult:
    """A fold ensemble's result (in process or on a cluster): judged on its out-of-fold
    scores, its in-fold scores standing for the training scores of the plots."""
    folds = evaluate_fold_scores(config, scores, y, out_of_fold_yields(config, weight))
    return ModelResult(
        name,
        model,
        folds.report,
        train_seconds,
        {"train": scores.in_fold_per_event(), "test": scores.out_of_fold},
        predict_seconds=predict_seconds,
        folds=folds,
    )


def evaluate_fold_scores(
    config: PipelineConfig, scores: FoldScores, y: np.ndarray, weight: np.ndarray
) -> CrossValReport:
    """:func:`evaluate_folds` with the pipeline's evaluation settings."""
    return evaluate_folds(
        scores,
        y,
        weight,
        ks_threshold=config.evaluation.ks_threshold,
        ks_bins=config.evaluation.ks_bins,
        classes=config.class_names,
        signal_classes=config.signal_classes,
    )


def _category_folds(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    X: Rows,
    progress: Progress | None,
    executor: Executor | None,
) -> ModelResult:
    """k-fold with categories: one fold ensemble per category, trained on its events.

    Every event is scored by its own category's fold model that did not train on it; the
    combined out-of-fold scores give ``report`` (and the per-fold figures), each category's
    events its own report, as without folds.
    """
    table, fold = data.table, data.split.folds
    assert fold is not None and table.category is not None
    categories = config.categories or []
    members = [np.flatnonzero(table.category == i) for i in range(len(categories))]
    n_classes = len(config.class_names)
    for category, rows in zip(categories, members, strict=True):
        present = np.unique(table.label[rows])
        if len(present) < n_classes:
            missing = [c for k, c in enumerate(config.class_names) if k not in present]
            raise ConfigError(
                f"category {category.name!r} ({category.selection!r}) has no events of "
                f"class(es) {missing}; merge it with another category or loosen its selection"
            )
    start = time.perf_counter()
    ensembles = [
        fit_ensemble(name, params, config, data, rows, progress, executor, f" [{category.name}]")
        for category, rows in zip(categories, members, strict=True)
    ]
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    parts = [
        fold_scores(e, X.take(rows), fold[rows]) for e, rows in zip(ensembles, members, strict=True)
    ]
    scores = _combined_scores(parts, members, fold)
    predict_seconds = time.perf_counter() - start
    model = CategoryModel(name, list(categories), ensembles)
    result = fold_result(
        name, model, config, scores, table.label, table.weight, train_seconds, predict_seconds
    )
    per_category = {}
    for category, rows, part in zip(categories, members, parts, strict=True):
        try:
            per_category[category.name] = evaluate_fold_scores(
                config, part, table.label[rows], out_of_fold_yields(config, table.weight[rows])
            ).report
        except ValueError as err:
            raise ConfigError(
                f"category {category.name!r} ({category.selection!r}) cannot be evaluated "
                f"out-of-fold on its {len(rows)} events: {err}"
            ) from None
    return replace(result, report=CategoryReport(result.report, per_category))


def _combined_scores(
    parts: list[FoldScores], members: list[np.ndarray], fold: np.ndarray
) -> FoldScores:
    """The fold scores of all events from those of each category (``members``: its rows)."""
    if sum(len(rows) for rows in members) != len(fold):
        raise ValueError("every event must be in exactly one category")
    shape = (len(fold), *parts[0].out_of_fold.shape[1:])
    dtype = parts[0].out_of_fold.dtype
    oof = np.empty(shape, dtype=dtype)
    in_fold = [np.empty(shape, dtype=dtype) for _ in range(parts[0].n_folds)]
    for part, rows in zip(parts, members, strict=True):
        oof[rows] = part.out_of_fold
        for k, scores in enumerate(part.in_fold):
            in_fold[k][rows[part.fold != k]] = scores
    return FoldScores(fold, oof, [s[fold != k] for k, s in enumerate(in_fold)])


def fold_event_id(model: Any, config: PipelineConfig) -> str | None:
    """The event-id branch a bundle reads to score each event with the fold model that did
    not train on it; None unless ``model`` is a fold ensemble whose folds followed the ids
    (or a category model made of such ensembles)."""
    members = model.models if isinstance(model, CategoryModel) else [model]
    if all(isinstance(m, FoldEnsemble) and m.fold_rule_ == RULE_EVENT_ID for m in members):
        return config.event_id
    return None


def out_of_fold_yields(config: PipelineConfig, weight: np.ndarray) -> np.ndarray:
    """Out-of-fold events stand for themselves: weight x luminosity (as the physics result)."""
    return weight * (config.result.luminosity if config.result else 1.0)
