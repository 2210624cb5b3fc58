"""k-fold cross-validated training and application, as TMVA's CrossValidation does it.

Every event is used: fold model ``k`` trains on all folds but ``k`` (its early-stopping
events are carved from those folds by the model itself) and scores fold ``k``. The
out-of-fold scores of all events are what the classifier is judged on, and in-fold scores
(each model on its own training events) feed the per-fold overtraining check.

The fitted :class:`FoldEnsemble` applies the same rule later: an event with an event id is
scored by the model whose fold it is (``event_id % folds``), so scoring the training files
reproduces the out-of-fold scores exactly and gives unbiased friend-tree scores; an event
without id (or folds assigned at random in training) gets the average of the fold models.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.errors import ConfigError
from hepclf.evaluation import (
    KSResult,
    RocCurve,
    evaluate_classifier,
    ks_test,
    roc_curve,
)
from hepclf.evaluation.folds import CrossValReport
from hepclf.models.folds import RULE_EVENT_ID, FoldEnsemble

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.prepare import PreparedData
    from hepclf.progress import Progress
    from hepclf.results import ModelResult


@dataclass
class FoldScores:
    """Scores of the training events by a fitted fold ensemble.

    ``out_of_fold[i]`` is the signal score of event ``i`` from the model that did not train
    on it; ``in_fold[k]`` are model ``k``'s scores of its own training events (rows
    ``fold != k``, in row order).
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
        score = np.empty(len(self.fold), dtype=np.float64)
        k_all = self.n_folds
        for j in range(k_all):
            rows = np.flatnonzero(self.fold != j)
            pick = self.fold[rows] == (j - 1) % k_all
            score[rows[pick]] = self.in_fold[j][pick]
        return score


def fold_scores(
    ensemble: FoldEnsemble, X: np.ndarray, fold: np.ndarray | None = None
) -> FoldScores:
    """Out-of-fold and in-fold signal scores of the events ``ensemble`` was fitted on.

    ``fold`` defaults to the fitted ``folds_``; give it when ``X`` also holds events left
    out of the fit (e.g. negative weights dropped from training but evaluated).
    """
    fold = ensemble.folds_ if fold is None else np.asarray(fold)
    oof = ensemble.predict_proba_folds(X, fold)[:, 1]
    in_fold = [m.predict_proba(X[fold != k])[:, 1] for k, m in enumerate(ensemble.estimators_)]
    return FoldScores(fold, oof, in_fold)


def evaluate_folds(
    scores: FoldScores,
    y: np.ndarray,
    weight: np.ndarray | None,
    *,
    ks_threshold: float = 0.05,
    ks_bins: int | None = 40,
) -> CrossValReport:
    """Metrics on the out-of-fold scores, per-fold AUCs and the per-fold overtraining check.

    The in-fold sample weights are divided by ``folds - 1`` (each event is in the training
    folds of that many models), so both samples carry the events' total weight.
    """
    y = np.asarray(y)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    k_all = scores.n_folds
    rows_in = [np.flatnonzero(scores.fold != k) for k in range(k_all)]
    y_in = np.concatenate([y[r] for r in rows_in])
    w_in = np.concatenate([w[r] for r in rows_in]) / (k_all - 1)
    s_in = np.concatenate(scores.in_fold)
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


def plot_fold_roc(result: CrossValReport, path: Path, model_name: str) -> Path:
    """The ROC of the out-of-fold scores with the band spanned by the folds (PNG)."""
    from hepclf.evaluation.plots import plot_roc_folds

    roc = result.report.roc_test
    return plot_roc_folds(
        [(r.eff_s, r.eff_b) for r in result.roc_folds],
        (roc.eff_s, roc.eff_b),
        path,
        model_name,
        auc_out_of_fold=roc.auc,
        auc_folds=result.auc_folds,
    )


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
) -> ModelResult:
    """The pipeline's k-fold step: a fold ensemble of ``name``, scored and evaluated.

    Every event is normalised with the one normaliser (fitted on all events, which carry no
    labels into it), trained on by the models of the other folds with the pipeline's
    training weights, and evaluated out-of-fold with its physical weight. Events the
    weight policy leaves out of training (``negative_weights: drop``) are still scored.
    """
    from hepclf.models import build_model
    from hepclf.results import ModelResult
    from hepclf.weights import training_weights

    if config.multiclass:
        raise ConfigError("split.method 'kfold' supports two classes for now; use 'random'")
    table, fold = data.table, data.split.folds
    if fold is None:
        raise ValueError("train_folds needs a k-fold split (split.method: kfold)")
    X = data.normalizer.transform(table.X)
    keep, w = training_weights(
        table.label, table.weight, config.class_balance, config.negative_weights
    )
    ids = table.event_id[keep] if config.event_id else None
    base = build_model(name, params, seed=config.seed)
    ensemble = FoldEnsemble(base, folds=config.split.folds, seed=config.split.seed)

    def on_fold(k: int, seconds: float) -> None:
        if progress is not None:
            progress.note(f"  {name} fold {k + 1}/{config.split.folds}: {seconds:.1f} s")

    start = time.perf_counter()
    with warnings.catch_warnings():  # said once per run by the pipeline, not once per fold
        warnings.filterwarnings("ignore", message=".*negative weights.*")
        ensemble.fit(X[keep], table.label[keep], w, ids, fold=fold[keep], on_fold=on_fold)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = fold_scores(ensemble, X, fold)
    predict_seconds = time.perf_counter() - start
    folds = evaluate_folds(
        scores,
        table.label,
        table.weight,
        ks_threshold=config.evaluation.ks_threshold,
        ks_bins=config.evaluation.ks_bins,
    )
    return ModelResult(
        name,
        ensemble,
        folds.report,
        train_seconds,
        {"train": scores.in_fold_per_event(), "test": scores.out_of_fold},
        predict_seconds=predict_seconds,
        folds=folds,
    )


def fold_event_id(model: Any, config: PipelineConfig) -> str | None:
    """The event-id branch a bundle reads to score each event with the fold model that did
    not train on it; None unless ``model`` is a fold ensemble whose folds followed the ids."""
    if isinstance(model, FoldEnsemble) and model.fold_rule_ == RULE_EVENT_ID:
        return config.event_id
    return None
