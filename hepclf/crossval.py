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

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from hepclf.errors import ConfigError
from hepclf.evaluation import (
    ClassifierReport,
    KSResult,
    RocCurve,
    evaluate_classifier,
    ks_test,
    roc_curve,
)
from hepclf.split import assign_folds

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.progress import Progress
    from hepclf.results import ModelResult
    from hepclf.training import PreparedData

FOLD_ENSEMBLE = "fold_ensemble"
"""The ``name`` a saved fold ensemble carries in its ``model.json``."""
RULE_EVENT_ID = "event_id % folds"
RULE_RANDOM = "random"
_META = "model.json"


class FoldEnsemble(ClassifierMixin, BaseEstimator):
    """``folds`` copies of ``estimator``, each trained on all folds but its own.

    Fitted attributes: ``estimators_`` (model ``k`` did not see fold ``k``), ``folds_``
    (the fold of each training event), ``fold_rule_`` (``"event_id % folds"`` when folds
    came from event ids, else ``"random"``), ``classes_``, ``n_features_in_``.
    ``predict_proba(X, event_id)`` applies the rule; without ids it averages the folds.
    """

    def __init__(self, estimator: Any = None, folds: int = 5, seed: int = 7) -> None:
        self.estimator = estimator
        self.folds = folds
        self.seed = seed

    # -- what the rest of hepclf reads from a classifier ----------------------------------
    @property
    def name(self) -> str:
        """The zoo type of the fold models (``xgb``, ...): exporters and requirements use it."""
        return str(getattr(self.estimator, "name", type(self.estimator).__name__))

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The fold models' hyperparameters (one set, shared by every fold)."""
        base = self.estimator
        if hasattr(base, "hyperparameters"):
            return dict(base.hyperparameters)
        return {k: v for k, v in base.get_params(deep=False).items() if k != "seed"}

    @property
    def device_(self) -> str:
        return str(getattr(self.estimators_[0], "device_", "CPU"))

    @property
    def history_(self) -> dict[str, list[float]]:
        """Learning curves of every fold model, keys prefixed ``fold<k>_``."""
        return {
            f"fold{k}_{key}": list(values)
            for k, model in enumerate(self.estimators_)
            for key, values in (getattr(model, "history_", None) or {}).items()
        }

    @property
    def feature_importances_(self) -> np.ndarray | None:
        """Mean of the fold models' importances (None when they have none)."""
        parts = [getattr(m, "feature_importances_", None) for m in self.estimators_]
        if any(p is None for p in parts):
            return None
        return np.mean(np.asarray(parts, dtype=np.float64), axis=0)

    # -- fitting ----------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        event_id: Any = None,
        *,
        fold: np.ndarray | None = None,
        on_fold: Callable[[int, float], None] | None = None,
    ) -> Self:
        """Train one model per fold on the other folds.

        Folds come from ``fold`` when given (the pipeline's split), else from ``event_id``
        (``event_id % folds``), else from a shuffle seeded with ``seed``. ``on_fold(k,
        seconds)`` is called after each fold model, for progress display.
        """
        if self.estimator is None:
            raise ConfigError("FoldEnsemble needs an estimator to copy for each fold")
        X = np.asarray(X)
        y = np.asarray(y)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if fold is None:
            fold = assign_folds(len(X), self.folds, self.seed, event_id)
            rule = RULE_RANDOM if event_id is None else RULE_EVENT_ID
        else:
            fold = np.asarray(fold, dtype=np.int64)
            rule = RULE_EVENT_ID if event_id is not None else RULE_RANDOM
        if len(fold) != len(X) or fold.min(initial=0) < 0 or fold.max(initial=0) >= self.folds:
            raise ValueError(f"fold must give each of {len(X)} events a fold below {self.folds}")
        if event_id is not None and rule == RULE_EVENT_ID:
            expected = np.asarray(event_id).astype(np.int64) % self.folds
            if not np.array_equal(expected, fold):
                raise ValueError("the folds given do not follow event_id % folds")
        self.estimators_: list[Any] = []
        for k in range(self.folds):
            start = time.perf_counter()
            train = fold != k
            model = clone(self.estimator)
            if w is None:
                model.fit(X[train], y[train])
            else:
                model.fit(X[train], y[train], sample_weight=w[train])
            self.estimators_.append(model)
            if on_fold is not None:
                on_fold(k, time.perf_counter() - start)
        first = self.estimators_[0]
        self.classes_ = np.asarray(first.classes_)
        self.n_features_in_ = int(first.n_features_in_)
        self.folds_ = fold
        self.fold_rule_ = rule
        return self

    # -- application ----------------------------------------------------------------------
    def predict_proba(self, X: Any, event_id: Any = None) -> np.ndarray:
        """Probabilities (n, K): by the model of the event's fold, or the fold average.

        With ``event_id`` and folds that followed ``event_id % folds`` in training, each
        event is scored by the one model that did not train on it. Otherwise (no ids, or
        random folds in training) every model scores and the probabilities are averaged.
        """
        check_is_fitted(self, "estimators_")
        X = np.asarray(X)
        if event_id is None or self.fold_rule_ != RULE_EVENT_ID:
            return np.mean([m.predict_proba(X) for m in self.estimators_], axis=0)
        fold = assign_folds(len(X), self.folds, self.seed, event_id)
        return self.predict_proba_folds(X, fold)

    def predict_proba_folds(self, X: Any, fold: np.ndarray) -> np.ndarray:
        """Probabilities with event ``i`` scored by model ``fold[i]``; fold -1: the average."""
        check_is_fitted(self, "estimators_")
        X = np.asarray(X)
        fold = np.asarray(fold)
        out = np.empty((len(X), len(self.classes_)), dtype=np.float64)
        for k, model in enumerate(self.estimators_):
            rows = np.flatnonzero(fold == k)
            if len(rows):
                out[rows] = model.predict_proba(X[rows])
        unknown = np.flatnonzero(fold < 0)
        if len(unknown):
            out[unknown] = np.mean([m.predict_proba(X[unknown]) for m in self.estimators_], axis=0)
        return out

    def predict(self, X: Any, event_id: Any = None) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X, event_id), axis=1)]

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        """``model.json`` (rule, folds) plus one saved model folder per fold."""
        check_is_fitted(self, "estimators_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for k, model in enumerate(self.estimators_):
            model.save(directory / f"fold{k}")
        meta = {
            "name": FOLD_ENSEMBLE,
            "model": self.name,
            "folds": self.folds,
            "seed": self.seed,
            "fold_rule": self.fold_rule_,
            "classes": self.classes_.tolist(),
            "n_features_in": self.n_features_in_,
        }
        (directory / _META).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path | str) -> FoldEnsemble:
        """Rebuild a saved ensemble; every fold model predicts exactly as when saved."""
        from hepclf.models import load_model

        directory = Path(directory)
        meta = json.loads((directory / _META).read_text())
        if meta.get("name") != FOLD_ENSEMBLE:
            raise ConfigError(f"{directory} holds a {meta.get('name')!r} model, no fold ensemble")
        estimators = [load_model(directory / f"fold{k}") for k in range(meta["folds"])]
        ensemble = cls(clone(estimators[0]), folds=meta["folds"], seed=meta["seed"])
        ensemble.estimators_ = estimators
        ensemble.fold_rule_ = meta["fold_rule"]
        ensemble.classes_ = np.asarray(meta["classes"])
        ensemble.n_features_in_ = meta["n_features_in"]
        return ensemble


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


@dataclass(frozen=True)
class CrossValReport:
    """The evaluation of a cross-validated model.

    ``report`` measures the out-of-fold scores of every event as the "test" sample and all
    in-fold scores as the "train" sample; its KS results are the per-fold ones combined
    (largest D, smallest p times the number of folds, Bonferroni), so that a model that is
    fine is flagged no more often than with one split, and an over-trained one in any fold
    still is.
    """

    report: ClassifierReport
    roc_folds: list[RocCurve]
    ks_folds: list[tuple[KSResult, KSResult]]

    @property
    def auc_folds(self) -> list[float]:
        """Out-of-fold AUC of each fold's events (TMVA's "Fold i ROC-Int")."""
        return [roc.auc for roc in self.roc_folds]

    @property
    def auc_folds_mean(self) -> float:
        return float(np.mean(self.auc_folds))

    @property
    def auc_folds_std(self) -> float:
        return float(np.std(self.auc_folds, ddof=1)) if len(self.auc_folds) > 1 else 0.0

    def fold_metrics(self) -> dict[str, float]:
        """Scalar metrics beside the report's: fold AUC mean and spread."""
        return {
            "auc_folds_mean": self.auc_folds_mean,
            "auc_folds_std": self.auc_folds_std,
            "folds": float(len(self.auc_folds)),
        }

    def per_fold(self) -> list[dict[str, float]]:
        """One dict per fold (for MLflow metrics with step = fold)."""
        return [
            {
                "auc_fold": auc,
                "ks_pvalue_signal_fold": s.pvalue,
                "ks_pvalue_background_fold": b.pvalue,
            }
            for auc, (s, b) in zip(self.auc_folds, self.ks_folds, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Extra keys for a model's ``metrics.json`` entry."""
        return {
            "auc_folds": self.auc_folds,
            "auc_folds_mean": self.auc_folds_mean,
            "auc_folds_std": self.auc_folds_std,
            "ks_pvalue_signal_folds": [s.pvalue for s, _ in self.ks_folds],
            "ks_pvalue_background_folds": [b.pvalue for _, b in self.ks_folds],
        }


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
