"""Gradient-boosted trees with xgboost (hist), stopped early on the validation set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xgboost
from pydantic import BaseModel, ConfigDict, Field

from hepclf.models.base import Classifier
from hepclf.models.rows import BLOCK_EVENTS, Rows, held_out, refit_rounds


class XGBParams(BaseModel):
    """Defaults: depth-4 trees and a slow learning rate, the round count set by early stopping.

    From the study in docs/defaults-study.md, on two HIGGS-like generators (2·10^4 and
    2·10^5 events) and the TMVA example, none of them the demo: depth 4, learning rate
    0.05, at least 10 units of weight per leaf (weights have mean 1) and pruning only to
    0.0005 of the best validation AUC beat the former depth-2 setting (chosen on the demo)
    by up to 0.005 AUC, by more with more events, and beat HistGradientBoosting and
    xgboost's own defaults on every sample. Early stopping sets the number of rounds, so
    the setting scales with the sample. Train scores separate more than test ones on 10^4
    events (KS flag): compare out-of-fold with ``split: {method: kfold}``.
    """

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(3000, ge=1, description="maximum boosting rounds")
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_depth: int = Field(4, ge=1, le=30)
    min_child_weight: float = Field(10.0, ge=0, description="minimum hessian (weight) per leaf")
    subsample: float = Field(0.8, gt=0, le=1, description="event fraction per round")
    colsample_bytree: float = Field(0.8, gt=0, le=1, description="feature fraction per tree")
    reg_lambda: float = Field(2.0, ge=0, description="L2 penalty on leaf values")
    reg_alpha: float = Field(0.0, ge=0, description="L1 penalty on leaf values")
    gamma: float = Field(0.0, ge=0, description="minimum loss reduction to split")
    max_bin: int = Field(256, ge=2, description="histogram bins per feature")
    early_stopping_rounds: int = Field(100, ge=1)
    eval_metric: Literal["logloss", "auc"] = Field(
        "logloss", description="early-stopping metric (multi-class: mlogloss or xgboost's auc)"
    )
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="held out for early stopping when no validation set is given"
    )
    n_jobs: int | None = Field(None, description="threads; None uses all cores")
    prune_tolerance: float = Field(
        0.0005,
        ge=0,
        lt=0.1,
        description="keep the fewest rounds whose validation AUC is within this of the best",
    )
    refit: bool = Field(
        True,
        description="after early stopping, train again on the training and validation events "
        'with the rounds found, scaled to the larger sample (README "Defaults")',
    )


class XGB(Classifier):
    """xgboost ``binary:logistic`` (two classes) or ``multi:softprob`` (K > 2).

    Fitted attributes: ``booster_`` (the ``xgboost.Booster``, already cut to the rounds
    predictions use), ``feature_importances_`` (normalised gain), ``history_`` (train/val
    ``logloss`` and ``auc`` per round; for K > 2 the logloss is xgboost's mlogloss and the
    AUC xgboost's multi-class AUC: one-vs-rest, averaged with class-prevalence weights).
    Pruning to the validation-AUC plateau uses that same AUC curve.
    """

    name = "xgb"
    importance_type = "share of the total gain of the splits"
    Params = XGBParams
    uses_validation = True

    def __init__(
        self,
        *,
        n_estimators: int = 3000,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        min_child_weight: float = 10.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 2.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        max_bin: int = 256,
        early_stopping_rounds: int = 100,
        eval_metric: str = "logloss",
        validation_fraction: float = 0.2,
        n_jobs: int | None = None,
        prune_tolerance: float = 0.0005,
        refit: bool = True,
        seed: int = 42,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.eval_metric = eval_metric
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.prune_tolerance = prune_tolerance
        self.refit = refit
        self.seed = seed

    def _fit_rows(self, hp: XGBParams, train: Rows, val: Rows | None) -> None:
        n_classes = len(self.classes_)
        assert train.w is not None
        weighted = np.flatnonzero(np.bincount(train.y, train.w, n_classes) > 0)
        if len(weighted) < 2:
            only = self.classes_[weighted[0]].item()
            raise ValueError(
                f"xgb: the sample weights leave only class {only!r} with positive weight; "
                "training needs at least two classes"
            )
        if val is None:
            train, val = held_out(train, hp.validation_fraction, self.seed)
        # quantised straight from normalised blocks of the table: no float copy of the rows
        dtrain = xgboost.QuantileDMatrix(RowBlocks([train]), max_bin=hp.max_bin)
        dval = xgboost.QuantileDMatrix(RowBlocks([val]), ref=dtrain)
        params = booster_params(hp, n_classes, self.seed)
        curves: dict[str, dict[str, list[float]]] = {}
        booster = xgboost.train(
            params,
            dtrain,
            num_boost_round=hp.n_estimators,
            evals=[(dtrain, "train"), (dval, "val")],
            early_stopping_rounds=hp.early_stopping_rounds,
            evals_result=curves,
            verbose_eval=False,
        )
        self.set_booster(booster, curves, train.n_features, hp)
        if hp.refit:
            del booster, dtrain, dval
            rounds = self.refit_rounds(len(train), len(val))
            everything = xgboost.QuantileDMatrix(RowBlocks([train, val]), max_bin=hp.max_bin)
            refitted = xgboost.train(params, everything, num_boost_round=rounds)
            self.set_refit(refitted, rounds, train.n_features)

    def refit_rounds(self, n_fit: int, n_validation: int) -> int:
        """Rounds of the refit on fit and validation events: those kept after early
        stopping and pruning, scaled to the larger sample (``refit: true``)."""
        return refit_rounds(self.booster_.best_iteration + 1, n_fit, n_validation)

    def set_refit(self, booster: xgboost.Booster, rounds: int, n_features: int) -> None:
        """Adopt the booster refitted on fit and validation events with ``rounds`` rounds
        (here or by ``xgboost.dask``); the learning curves stay those of the first fit."""
        booster.set_attr(best_iteration=str(rounds - 1))
        self.booster_ = booster
        self.history_["refit_rounds"] = [float(rounds)]
        self._set_importances(n_features)

    def set_booster(
        self,
        booster: xgboost.Booster,
        curves: dict[str, dict[str, list[float]]],
        n_features: int,
        hp: XGBParams,
    ) -> None:
        """Adopt a booster trained with :func:`booster_params` (here or by ``xgboost.dask``):
        prune it, and keep its learning curves and gain importances."""
        self.booster_ = _pruned(booster, curves["val"]["auc"], hp.prune_tolerance)
        self.history_ = {
            f"{sample}_{metric.removeprefix('m')}": [float(v) for v in values]
            for sample, metrics in curves.items()
            for metric, values in metrics.items()
        }
        self._set_importances(n_features)

    def _set_importances(self, n_features: int) -> None:
        gain = self.booster_.get_score(importance_type="gain")
        importances = np.array([gain.get(f"f{i}", 0.0) for i in range(n_features)])
        total = importances.sum()
        self.feature_importances_ = importances / total if total > 0 else importances

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        best = self.booster_.best_iteration
        # in place: no DMatrix copy of the events
        score = self.booster_.inplace_predict(X, iteration_range=(0, best + 1))
        proba = np.asarray(score, dtype=np.float64)
        if proba.ndim == 1:
            return np.column_stack([1 - proba, proba])
        return proba / proba.sum(axis=1, keepdims=True)

    def _save_model(self, directory: Path) -> None:
        self.booster_.save_model(directory / "xgb.json")

    def _load_model(self, directory: Path) -> None:
        self.booster_ = xgboost.Booster(model_file=directory / "xgb.json")


def booster_params(hp: XGBParams, n_classes: int, seed: int) -> dict[str, Any]:
    """xgboost's parameters for ``hp``; the early-stopping metric is the last of eval_metric."""
    logloss = "logloss" if n_classes == 2 else "mlogloss"
    stop_on = logloss if hp.eval_metric == "logloss" else "auc"
    other = "auc" if stop_on == logloss else logloss
    params: dict[str, Any] = {
        "objective": "binary:logistic" if n_classes == 2 else "multi:softprob",
        "tree_method": "hist",
        "eval_metric": [other, stop_on],  # xgboost stops early on the last one
        "eta": hp.learning_rate,
        "max_depth": hp.max_depth,
        "min_child_weight": hp.min_child_weight,
        "subsample": hp.subsample,
        "colsample_bytree": hp.colsample_bytree,
        "lambda": hp.reg_lambda,
        "alpha": hp.reg_alpha,
        "gamma": hp.gamma,
        "max_bin": hp.max_bin,
        "seed": seed,
    }
    if n_classes > 2:
        params["num_class"] = n_classes
    if hp.n_jobs is not None:
        params["nthread"] = hp.n_jobs
    return params


def _pruned(booster: xgboost.Booster, val_auc: list[float], tolerance: float) -> xgboost.Booster:
    """The booster cut to the fewest rounds within ``tolerance`` of the best validation AUC.

    Early stopping on the loss lets boosting add rounds that no longer change the
    validation AUC but keep fitting the training sample, which the train-vs-test KS
    check then flags; those rounds are dropped.
    """
    considered = np.asarray(val_auc[: booster.best_iteration + 1])
    if not np.isfinite(considered).any():  # a validation set of one class has no AUC
        return booster
    target = np.nanmax(considered) - tolerance
    rounds = int(np.flatnonzero(considered >= target)[0]) + 1
    pruned = booster[:rounds]
    pruned.set_attr(best_iteration=str(rounds - 1))
    return pruned


class RowBlocks(xgboost.DataIter):
    """Normalised blocks of one or more row sets, fed to xgboost (a ``QuantileDMatrix``
    sketches and quantises them block by block, so the float rows are never held whole)."""

    def __init__(self, parts: list[Rows], block: int = BLOCK_EVENTS) -> None:
        self._parts = parts
        self._block = block
        self._positions = [
            (i, start) for i, part in enumerate(parts) for start in range(0, len(part), block)
        ]
        self._next = 0
        super().__init__(release_data=True)

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._next == len(self._positions):
            return False
        i, start = self._positions[self._next]
        part = self._parts[i]
        stop = min(start + self._block, len(part))
        assert part.w is not None
        input_data(
            data=part.block(start, stop), label=part.y[start:stop], weight=part.w[start:stop]
        )
        self._next += 1
        return True

    def reset(self) -> None:
        self._next = 0
