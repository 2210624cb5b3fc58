"""MLflow records of a tuning search: one nested run per trial inside the active run, and
the search's results on that run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
import numpy as np
import optuna

from hepclf.training.results import TuningResult
from hepclf.training.tuning import TrialRecord


@contextmanager
def trial_run(name: str, number: int, params: dict[str, Any]) -> Iterator[TrialRecord]:
    """A nested MLflow run for one trial when a run is active; a no-op otherwise.

    The run is named ``<model>-trial-<n>`` and tagged ``hepclf.kind=tuning-trial``; it holds
    the drawn parameters, ``cv_auc_fold`` per fold and ``cv_auc``, and ends FINISHED for a
    done or pruned trial (tag ``hepclf.trial_state``), FAILED for an error. Yields what
    takes the trial's fold AUCs.
    """
    if mlflow.active_run() is None:
        yield _ignore
        return
    mlflow.start_run(run_name=f"{name}-trial-{number}", nested=True)
    mlflow.set_tags({"hepclf.kind": "tuning-trial", "hepclf.model": name})
    mlflow.log_params({k: json.dumps(v) for k, v in params.items()})
    state, status = "done", "FAILED"
    try:
        yield _log_aucs
        status = "FINISHED"
    except optuna.TrialPruned:
        state, status = "pruned", "FINISHED"
        raise
    finally:
        mlflow.set_tag("hepclf.trial_state", state)
        mlflow.end_run(status=status)


def _ignore(aucs: list[float]) -> None:
    pass


def _log_aucs(aucs: list[float]) -> None:
    for k, auc in enumerate(aucs):
        mlflow.log_metric("cv_auc_fold", auc, step=k)
    mlflow.log_metric("cv_auc", float(np.mean(aucs)))


def mark_tuning_run() -> None:
    """Tag the active run ``hepclf.kind=tuning`` (before the search: a failed one shows too)."""
    mlflow.set_tags({"hepclf.kind": "tuning"})


def log_tuning(results: dict[str, TuningResult], tuned_yaml: str) -> None:
    """On the active run: each model's best CV AUC and the pasteable ``tuned_params.yaml``."""
    for name, result in results.items():
        mlflow.log_metric(f"{name}_tuning_cv_auc", result.best_value)
    mlflow.log_text(tuned_yaml, "tuned_params.yaml")
