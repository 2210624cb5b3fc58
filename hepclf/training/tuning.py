"""Budgeted hyperparameter search with Optuna, on training events only.

Each trial draws parameters from the model's search space (:mod:`hepclf.models.registry`),
trains one model per fold of the training events (folds stratified by class, so a rare
class is in every fold) and scores the held-out fold: the objective is the cross-validated
AUC, so the test part of the pipeline is never read (the caller hands in training events
only). After each fold the running mean is reported, so the median pruner stops hopeless
trials early. Studies live in SQLite and resume (:mod:`.studies`); a ``trial_log`` from the
caller records each trial (the command's nested MLflow runs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from sklearn.model_selection import StratifiedKFold

from hepclf.config import PipelineConfig
from hepclf.evaluation import roc_auc
from hepclf.evaluation.multiclass import one_vs_rest_rocs
from hepclf.ingest.table import FeatureTable
from hepclf.models import build_model
from hepclf.models.registry import SEARCH_SPACES
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.progress import Progress, bar
from hepclf.training.executor import Executor
from hepclf.training.normalize import Normalizer
from hepclf.training.plan import FitPlan, FitRows, FitTask, RowsSource, execute_plan
from hepclf.training.results import TuningResult
from hepclf.training.scores import model_scores
from hepclf.training.split import SplitIndices
from hepclf.training.studies import (
    STORAGE_FILE,
    counted_trials,
    data_fingerprint,
    enqueue_current,
    open_study,
    storage_path_for,
    storage_url,
    study_key,
    study_result,
)
from hepclf.training.weights import require_positive_class_weights, training_weights

TrialRecord = Callable[[list[float]], None]
"""Takes a finished trial's fold AUCs."""
TrialLog = Callable[[str, int, dict[str, Any]], AbstractContextManager[TrialRecord]]
"""Opens the record of one trial (model, trial number, drawn parameters) for its duration."""
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
    """AUC of each held-out fold for one parameter set; ``report(k, mean)`` after each fold.

    The folds are fitted one plan at a time, so that the pruner can stop a hopeless trial
    after any fold. Fits and scores read the folds' rows of ``X`` block by block; the
    held-out fold is scored as the pipeline scores its test events (float32).
    """
    estimator = build_model(name, params, seed=seed)
    events = _as_rows(X, y)
    source = RowsSource(events)
    aucs: list[float] = []
    for k in range(int(fold.max()) + 1):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        w = None if sample_weight is None else sample_weight[train]
        task = FitTask(estimator, FitRows(train, w), name=f"{name} tuning fold {k + 1}")
        [fitted] = execute_plan(FitPlan(source, [task], label=f"tuning {name}"), executor)
        scores = model_scores(fitted.model, events.take(test))
        aucs.append(_auc(y[test], scores, None if eval_weight is None else eval_weight[test]))
        if report is not None:
            report(k, float(np.mean(aucs)))
    return aucs


def _as_rows(X: Events, y: np.ndarray) -> Rows:
    """The events as rows (an array of model inputs is taken as it is)."""
    return X if isinstance(X, Rows) else Rows.of(X, y)


def _auc(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None) -> float:
    """The pipeline's ``auc_test`` measure on ``model_scores``: the signal AUC for two
    classes, the macro one-vs-rest AUC for more."""
    if scores.ndim == 1:
        return roc_auc(y, scores, weight)
    rocs = one_vs_rest_rocs(y, scores, weight, scores.shape[1])
    return float(np.mean([roc.auc for roc in rocs]))


def tune_model(
    name: str,
    X: Events,
    y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    eval_weight: np.ndarray | None = None,
    *,
    base_params: dict[str, Any] | None = None,
    folds: int = 3,
    seed: int = 42,
    timeout_s: float | None = 300.0,
    trials: int | None = None,
    storage: Path | str = STORAGE_FILE,
    study_name: str | None = None,
    pruning: bool = True,
    classes: Sequence[str] | None = None,
    progress: Progress | None = None,
    trial_log: TrialLog | None = None,
    executor: Executor | None = None,
) -> TuningResult:
    """Search ``name``'s parameters on the given (training) events; returns the best.

    ``trials`` is the total for the study: a resumed study runs only the trials it still
    lacks. ``timeout_s`` bounds this call. ``base_params`` (the pipeline's own settings for
    the model) stay fixed unless the search space draws them. ``classes`` (names of the
    labels) name a class too rare for the folds in the error. ``progress`` shows a bar over
    the trials; ``trial_log`` records each trial (MLflow's nested runs, from the caller);
    ``executor`` runs the fits.
    """
    if name not in SEARCH_SPACES:
        raise ConfigError(
            f"tune.models: {name!r} has no search space; tunable: {sorted(SEARCH_SPACES)}"
        )
    base = dict(base_params or {})
    fold = tuning_folds(y, folds, seed, classes)
    if eval_weight is not None:
        names = list(classes or [str(c) for c in range(int(y.max()) + 1)])
        require_positive_class_weights(y, eval_weight, fold, names, "tune.folds")
    study_name = study_name or f"{name}-{study_key(base, folds, seed, data_fingerprint(X, y))}"
    url = storage_url(storage)
    study = open_study(url, study_name, seed, pruning)

    def objective(trial: optuna.Trial) -> float:
        drawn = SEARCH_SPACES[name](trial)
        params = {**base, **drawn}

        def report(k: int, mean: float) -> None:
            trial.report(mean, k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with (trial_log or _no_log)(name, trial.number, drawn) as log:
            aucs = cross_validated_auc(
                name, params, X, y, sample_weight, eval_weight, fold, seed, report, executor
            )
            log(aucs)
        trial.set_user_attr("params", drawn)
        return float(np.mean(aucs))

    if not study.get_trials(deepcopy=False):
        enqueue_current(study, name, base)
    done = counted_trials(study)
    remaining = None if trials is None else max(0, trials - done)
    if remaining != 0:  # zero: a resumed study that already has its trials
        with _trial_bar(progress, name, trials, timeout_s, done) as callback:
            study.optimize(
                objective, n_trials=remaining, timeout=timeout_s, callbacks=[callback], catch=()
            )
    return study_result(name, study, url)


@contextmanager
def _no_log(name: str, number: int, params: dict[str, Any]) -> Iterator[TrialRecord]:
    yield lambda aucs: None


@contextmanager
def _trial_bar(
    progress: Progress | None, name: str, trials: int | None, timeout_s: float | None, done: int
) -> Iterator[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]]:
    """A bar over the study's trials, or over the time budget when no trial count is set."""
    by_trials = trials is not None
    total = trials if trials is not None else math.ceil(timeout_s or 0)
    if not total:  # neither a count nor a budget: nothing to measure against
        yield lambda study, trial: None
        return
    start, shown = time.monotonic(), 0
    with bar(progress, f"tuning {name}", total) as advance:
        if by_trials:
            advance(done)

        def update(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal shown
            now = counted_trials(study) if by_trials else int(time.monotonic() - start)
            advance(min(now, total) - shown)
            shown = min(now, total)

        yield update


def training_events(
    table: FeatureTable, split: SplitIndices, normalizer: Normalizer | None = None
) -> tuple[Rows, np.ndarray, np.ndarray]:
    """Features (rows of the table, normalised by ``normalizer`` as they are read: no
    copy), labels and physical weights of the events tuning may see.

    Those are the training and validation parts (every event under k-fold), never the test
    part: a search that looked at test events would make the test AUC optimistic.
    """
    rows = np.sort(np.concatenate([split.train, split.validation]))
    y, w = table.label[rows], table.weight[rows]
    transform = None if normalizer is None else normalizer.transform
    return Rows(table.X, rows, y, w, transform), y, w


def tune_models(
    config: PipelineConfig,
    X: Events,
    y: np.ndarray,
    weight: np.ndarray,
    *,
    models: list[str] | None = None,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
    trial_log: TrialLog | None = None,
    executor: Executor | None = None,
) -> dict[str, TuningResult]:
    """Tune each model of ``tune.models`` (default: every model to train) on these events.

    The caller passes the training events only (``training_events``), normalised as the
    final fit sees them, with their physical weights; the models train with the pipeline's
    class balance and negative-weight policy, as in the final fit.
    """
    tune = config.tune
    if tune is None:
        raise ConfigError("the pipeline has no 'tune:' block; add e.g. 'tune: {timeout_s: 300}'")
    unknown = [n for n in tune.models or [] if n not in config.models]
    if unknown:
        raise ConfigError(
            f"tune.models names {unknown}, which the pipeline does not train; its models: "
            f"{sorted(config.models)}"
        )
    training = list(models or config.models)
    chosen = [n for n in tune.models or training if n in training]
    keep, sample_weight = training_weights(y, weight, config.class_balance, config.negative_weights)
    # trials train with the training weights and are judged, like auc_test, with physical ones
    X = X.take(keep) if isinstance(X, Rows) else X[keep]
    y, eval_weight = y[keep], weight[keep]
    storage = tune.storage or storage_path_for(tracking_uri)
    data_key = data_fingerprint(X, y)
    seed = config.seed
    results = {}
    for name in chosen:
        base = dict(config.models.get(name) or {})
        results[name] = tune_model(
            name,
            X,
            y,
            sample_weight,
            eval_weight,
            base_params=base,
            folds=tune.folds,
            seed=seed,
            timeout_s=tune.timeout_s,
            trials=tune.trials,
            storage=storage,
            study_name=f"{config.name}.{name}.{study_key(base, tune.folds, seed, data_key)}",
            pruning=tune.pruning,
            classes=config.class_names,
            progress=progress,
            trial_log=trial_log,
            executor=executor,
        )
    return results


def tuned_yaml(results: dict[str, TuningResult]) -> str:
    """One ``models:`` block with the best parameters of every model a trial improved; a
    comment names the models whose current settings no trial beat (left as they are)."""
    block = {name: r.best_params for name, r in results.items() if r.improved}
    kept = [f"# {n}: {tuning_outcome(r)}\n" for n, r in results.items() if not r.improved]
    text = yaml.safe_dump({"models": block}, sort_keys=False) if block else ""
    return "".join(kept) + text


def tuning_outcome(r: TuningResult) -> str:
    """One line on what a study found, saying so when nothing beat the current settings."""
    if r.improved:
        return f"best CV AUC {r.best_value:.4f} after {r.n_trials} trials"
    return (
        f"no trial beat the current settings (CV AUC {r.best_value:.4f}) in {r.n_trials} "
        "trials; they are kept as they are (more trials: raise tune.timeout_s or --trials)"
    )
