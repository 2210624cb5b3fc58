"""Budgeted hyperparameter search with Optuna, on training events only.

Each trial draws parameters from the model's search space (:mod:`hepclf.models.registry`),
trains one model per fold of the training events and scores the held-out fold: the
objective is the cross-validated AUC (:mod:`.tuning_cv`), so the test part of the pipeline
is never read (the caller hands in training events only). After each fold the running mean
is reported, so the median pruner stops hopeless trials early. Studies live in SQLite and
resume (:mod:`.studies`); a ``trial_log`` from the caller records each trial (the
command's nested MLflow runs). A :data:`TrialRunner` runs the trials: one after the other
here, or as parallel tasks on a cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml

from hepclf.config import PipelineConfig
from hepclf.ingest.table import FeatureTable
from hepclf.models.registry import SEARCH_SPACES
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.progress import Progress, bar
from hepclf.training.executor import Executor
from hepclf.training.normalize import Normalizer
from hepclf.training.plan import FitSource, RowsSource
from hepclf.training.results import TuningResult
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
from hepclf.training.tuning_cv import Events, TuningEvents, as_rows, fold_aucs, tuning_folds
from hepclf.training.weights import require_positive_class_weights, training_weights

TrialRecord = Callable[[list[float]], None]
"""Takes a finished trial's fold AUCs."""
TrialLog = Callable[[str, int, dict[str, Any]], AbstractContextManager[TrialRecord]]
"""Opens the record of one trial (model, trial number, drawn parameters) for its duration."""


@dataclass(frozen=True)
class TrialSpec:
    """One model's search as a process running its trials needs it (small and picklable:
    the events are a source and row numbers)."""

    name: str
    base: dict[str, Any]
    events: TuningEvents
    seed: int
    storage: str
    study_name: str
    pruning: bool


TrialRunner = Callable[
    [TrialSpec, optuna.Study, "int | None", "float | None", Callable[..., None], "TrialLog | None"],
    None,
]
"""Runs up to ``n_trials`` trials of a study within ``timeout_s`` (None: no bound), calling
``callback(study, trial)`` after each and recording them with ``trial_log``: in this
process (:func:`optimize_here`) or as parallel tasks on a cluster (:mod:`hepclf.cluster.tune`)."""


def trial_objective(
    spec: TrialSpec, trial_log: TrialLog | None = None, executor: Executor | None = None
) -> Callable[[optuna.Trial], float]:
    """Optuna's objective for ``spec``: draw, cross-validate (pruned after any fold), record."""

    def objective(trial: optuna.Trial) -> float:
        drawn = SEARCH_SPACES[spec.name](trial)
        params = {**spec.base, **drawn}

        def report(k: int, mean: float) -> None:
            trial.report(mean, k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with (trial_log or _no_log)(spec.name, trial.number, drawn) as log:
            aucs = fold_aucs(spec.name, params, spec.events, spec.seed, report, executor)
            log(aucs)
        trial.set_user_attr("params", drawn)
        return float(np.mean(aucs))

    return objective


def optimize_here(executor: Executor | None = None) -> TrialRunner:
    """Trials one after the other in this process (their fits through ``executor``)."""

    def run(
        spec: TrialSpec,
        study: optuna.Study,
        n_trials: int | None,
        timeout_s: float | None,
        callback: Callable[..., None],
        trial_log: TrialLog | None,
    ) -> None:
        objective = trial_objective(spec, trial_log, executor)
        study.optimize(
            objective, n_trials=n_trials, timeout=timeout_s, callbacks=[callback], catch=()
        )

    return run


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
    base = dict(base_params or {})
    study_name = study_name or f"{name}-{study_key(base, folds, seed, data_fingerprint(X, y))}"
    return tune_events(
        name,
        RowsSource(as_rows(X, y)),
        np.arange(len(y)),
        y,
        sample_weight,
        eval_weight,
        base_params=base,
        folds=folds,
        seed=seed,
        timeout_s=timeout_s,
        trials=trials,
        storage=storage,
        study_name=study_name,
        pruning=pruning,
        classes=classes,
        progress=progress,
        trial_log=trial_log,
        runner=optimize_here(executor),
    )


def tune_events(
    name: str,
    source: FitSource,
    rows: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    eval_weight: np.ndarray | None,
    *,
    base_params: dict[str, Any],
    folds: int,
    seed: int,
    timeout_s: float | None,
    trials: int | None,
    storage: Path | str,
    study_name: str,
    pruning: bool,
    classes: Sequence[str] | None,
    progress: Progress | None,
    trial_log: TrialLog | None,
    runner: TrialRunner,
) -> TuningResult:
    """:func:`tune_model` on ``rows`` of a fit source, its trials run by ``runner``."""
    if name not in SEARCH_SPACES:
        raise ConfigError(
            f"tune.models: {name!r} has no search space; tunable: {sorted(SEARCH_SPACES)}"
        )
    fold = tuning_folds(y, folds, seed, classes)
    if eval_weight is not None:
        names = list(classes or [str(c) for c in range(int(y.max()) + 1)])
        require_positive_class_weights(y, eval_weight, fold, names, "tune.folds")
    url = storage_url(storage)
    study = open_study(url, study_name, seed, pruning)
    events = TuningEvents(source, rows, y, sample_weight, eval_weight, fold)
    spec = TrialSpec(name, dict(base_params), events, seed, url, study_name, pruning)
    if not study.get_trials(deepcopy=False):
        enqueue_current(study, name, spec.base)
    done = counted_trials(study)
    remaining = None if trials is None else max(0, trials - done)
    if remaining != 0:  # zero: a resumed study that already has its trials
        with _trial_bar(progress, name, trials, timeout_s, done) as callback:
            runner(spec, study, remaining, timeout_s, callback, trial_log)
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
    events = as_rows(X, y)
    return tune_rows(
        config,
        RowsSource(events),
        np.arange(len(y)),
        y,
        weight,
        lambda keep: data_fingerprint(events.take(keep), y[keep]),
        models=models,
        tracking_uri=tracking_uri,
        progress=progress,
        trial_log=trial_log,
        runner=optimize_here(executor),
    )


def tune_rows(
    config: PipelineConfig,
    source: FitSource,
    rows: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    data_key: Callable[[np.ndarray], str],
    *,
    models: list[str] | None = None,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
    trial_log: TrialLog | None = None,
    runner: TrialRunner,
) -> dict[str, TuningResult]:
    """:func:`tune_models` on ``rows`` of a fit source (labels ``y``, physical weights);
    ``data_key(kept)`` names the events the trials train on (kept: positions into rows)."""
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
    rows, y, eval_weight = rows[keep], y[keep], weight[keep]
    storage = tune.storage or storage_path_for(tracking_uri)
    key = data_key(keep)
    seed = config.seed
    results = {}
    for name in chosen:
        base = dict(config.models.get(name) or {})
        results[name] = tune_events(
            name,
            source,
            rows,
            y,
            sample_weight,
            eval_weight,
            base_params=base,
            folds=tune.folds,
            seed=seed,
            timeout_s=tune.timeout_s,
            trials=tune.trials,
            storage=storage,
            study_name=f"{config.name}.{name}.{study_key(base, tune.folds, seed, key)}",
            pruning=tune.pruning,
            classes=config.class_names,
            progress=progress,
            trial_log=trial_log,
            runner=runner,
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
