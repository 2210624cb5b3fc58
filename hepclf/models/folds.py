"""The fold ensemble of k-fold cross-validation and the fold rule it applies.

Fold model ``k`` trains on every fold but ``k``. An event with an event id is later scored
by the model of its fold (``event_id % folds``), so scoring the training files reproduces
the out-of-fold scores exactly; an event without id gets the average of the fold models.
The training loop and the evaluation live in :mod:`hepclf.training.crossval`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from hepclf.runtime.errors import ConfigError


def assign_folds(
    n_events: int, folds: int, seed: int, event_id: np.ndarray | None = None
) -> np.ndarray:
    """The fold (0..folds-1) of each event: ``event_id % folds``, else a seeded shuffle.

    The event-id rule lets a later job find, for any event, the fold model that did not
    train on it. Without ids the folds are a seeded random permutation cut in equal parts
    (sizes differ by at most one), so the assignment is reproducible but not recoverable
    from the event alone.
    """
    if folds < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {folds}")
    if event_id is not None:
        ids = np.asarray(event_id).astype(np.int64, copy=False)
        if len(ids) != n_events:
            raise ValueError(f"{n_events} events but {len(ids)} event ids")
        return (ids % folds).astype(np.int64)
    order = np.random.default_rng(seed).permutation(n_events)
    fold = np.empty(n_events, dtype=np.int64)
    fold[order] = np.arange(n_events) % folds
    return fold


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
    def importance_type(self) -> str:
        """The importance the parts' ``feature_importances_`` hold (averaged here)."""
        return str(getattr(self.estimators_[0], "importance_type", "")) + " (mean)"

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
        fold, rule = self.fold_assignment(len(X), event_id, fold)
        models = []
        for k in range(self.folds):
            start = time.perf_counter()
            train = fold != k
            model = clone(self.estimator)
            if w is None:
                model.fit(X[train], y[train])
            else:
                model.fit(X[train], y[train], sample_weight=w[train])
            models.append(model)
            if on_fold is not None:
                on_fold(k, time.perf_counter() - start)
        return self.set_fold_models(models, fold, rule)

    def fold_assignment(
        self, n_events: int, event_id: Any = None, fold: np.ndarray | None = None
    ) -> tuple[np.ndarray, str]:
        """The fold of each of ``n_events`` training events and the rule they follow.

        Folds come from ``fold`` when given (the pipeline's split), else from ``event_id``
        (``event_id % folds``), else from a shuffle seeded with ``seed``. A plan that fits
        the fold models elsewhere asks here first, then hands them to :meth:`set_fold_models`.
        """
        if fold is None:
            fold = assign_folds(n_events, self.folds, self.seed, event_id)
            rule = RULE_RANDOM if event_id is None else RULE_EVENT_ID
        else:
            fold = np.asarray(fold, dtype=np.int64)
            rule = RULE_EVENT_ID if event_id is not None else RULE_RANDOM
        if len(fold) != n_events or fold.min(initial=0) < 0 or fold.max(initial=0) >= self.folds:
            raise ValueError(f"fold must give each of {n_events} events a fold below {self.folds}")
        if event_id is not None and rule == RULE_EVENT_ID:
            expected = np.asarray(event_id).astype(np.int64) % self.folds
            if not np.array_equal(expected, fold):
                raise ValueError("the folds given do not follow event_id % folds")
        return fold, rule

    def set_fold_models(self, models: list[Any], fold: np.ndarray, rule: str) -> Self:
        """Take fitted fold models (model ``k`` trained on every fold but ``k``) as this
        ensemble's; every fold model must know every class."""
        first = models[0]
        for k, model in enumerate(models):
            if not np.array_equal(model.classes_, first.classes_):
                raise ValueError(
                    f"fold {k}'s training events hold the classes {model.classes_.tolist()}, "
                    f"fold 0's {first.classes_.tolist()}: every fold needs every class (use "
                    "fewer folds or more events of the rare class)"
                )
        self.estimators_: list[Any] = list(models)
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
        if len(fold) != len(X) or fold.max(initial=-1) >= len(self.estimators_):
            raise ValueError(
                f"fold must give each of {len(X)} events a fold below {len(self.estimators_)} "
                "(or -1 for the fold average)"
            )
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
    def load(cls, directory: Path | str, load_member: Callable[[Path], Any]) -> FoldEnsemble:
        """Rebuild a saved ensemble; every fold model predicts exactly as when saved.

        ``load_member`` loads one fold's model folder (``hepclf.models.load_model``).
        """
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text())
        if meta.get("name") != FOLD_ENSEMBLE:
            raise ConfigError(f"{directory} holds a {meta.get('name')!r} model, no fold ensemble")
        estimators = [load_member(directory / f"fold{k}") for k in range(meta["folds"])]
        ensemble = cls(clone(estimators[0]), folds=meta["folds"], seed=meta["seed"])
        ensemble.estimators_ = estimators
        ensemble.fold_rule_ = meta["fold_rule"]
        ensemble.classes_ = np.asarray(meta["classes"])
        ensemble.n_features_in_ = meta["n_features_in"]
        return ensemble
