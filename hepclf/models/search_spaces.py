"""The parameters a tuning trial draws, per zoo model (docs/kfold-tuning.md has the table).

Each function takes an Optuna trial and returns the parameters it drew; parameters a space
does not draw keep the pipeline's value. :mod:`hepclf.models.registry` ties each space to
its model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna import Trial


def xgb(trial: Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 2.0),
    }


def bdt(trial: Trial) -> dict[str, Any]:
    return {
        "n_trees": trial.suggest_int("n_trees", 100, 1500, step=50),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "beta": trial.suggest_float("beta", 0.05, 1.0, log=True),
        "min_node_size": trial.suggest_float("min_node_size", 0.001, 0.05, log=True),
    }


def rf(trial: Trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 200, log=True),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5]),
        "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
    }


def svm(trial: Trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 0.03, 30.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-3, 0.3, log=True),
    }


def linear(trial: Trial) -> dict[str, Any]:
    method = trial.suggest_categorical("method", ["fisher", "logistic"])
    params: dict[str, Any] = {"method": method}
    if method == "logistic":
        params["C"] = trial.suggest_float("C", 1e-3, 100.0, log=True)
    return params


def dnn(trial: Trial) -> dict[str, Any]:
    depth = trial.suggest_int("n_layers", 1, 4)
    width = trial.suggest_categorical("width", [32, 64, 128, 256])
    params: dict[str, Any] = {
        "layers": [width] * depth,
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "l2": trial.suggest_float("l2", 1e-6, 1e-3, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512]),
    }
    params["optimizer"] = trial.suggest_categorical(
        "optimizer", ["adam", "adamw", "sgd", "rmsprop"]
    )
    params["kernel_initializer"] = trial.suggest_categorical(
        "kernel_initializer", ["glorot_uniform", "he_normal"]
    )
    return params
