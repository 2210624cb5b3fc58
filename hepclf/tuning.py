"""Budgeted hyperparameter search with Optuna, on training events only.

Each trial draws parameters from the model's documented search space (``SEARCH_SPACES``),
trains one model per fold of the training events (folds stratified by class, so a rare
class is in every fold) and scores the held-out fold: the
objective is the cross-validated AUC, so the test part of the pipeline is never read (the
caller hands in training events only). After each fold the running mean is reported, so
the median pruner stops hopeless trials early. The study lives in an SQLite file, keyed by
pipeline, model and a fingerprint of the data and settings: a search that was interrupted,
or given more budget later, continues where it stopped. Inside an active MLflow run every
trial is a nested run.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import optuna
import yaml
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from sklearn.model_selection import StratifiedKFold

from hepclf.config import PipelineConfig
from hepclf.errors import ConfigError
from hepclf.evaluation import roc_auc
from hepclf.evaluation.multiclass import one_vs_rest_rocs
from hepclf.ingest.table import FeatureTable
from hepclf.models import MODEL_TYPES, build_model
from hepclf.normalize import Normalizer
from hepclf.results import TuningResult
from hepclf.split import SplitIndices
from hepclf.tuning_storage import STORAGE_FILE, open_storage
from hepclf.weights import require_positive_class_weights, training_weights

if TYPE_CHECKING:
    from hepclf.prepare import PreparedData
    from hepclf.progress import Progress

FOLD_RULE = "stratified-kfold"
"""How tuning folds are drawn; part of a study's fingerprint, so a study made with other
folds is never resumed."""
SearchSpace = Callable[[optuna.Trial], dict[str, Any]]


def _xgb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 2.0),
    }


def _bdt_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_trees": trial.suggest_int("n_trees", 100, 1500, step=50),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "beta": trial.suggest_float("beta", 0.05, 1.0, log=True),
        "min_node_size": trial.suggest_float("min_node_size", 0.001, 0.05, log=True),
    }


def _rf_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 200, log=True),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5]),
        "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
    }


def _svm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 0.03, 30.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-3, 0.3, log=True),
    }


def _linear_space(trial: optuna.Trial) -> dict[str, Any]:
    method = trial.suggest_categorical("method", ["fisher", "logistic"])
    params: dict[str, Any] = {"method": method}
    if method == "logistic":
        params["C"] = trial.suggest_float("C", 1e-3, 100.0, log=True)
    return params


def _dnn_space(trial: optuna.Trial) -> dict[str, Any]:
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


SEARCH_SPACES: dict[str, SearchSpace] = {
    "xgb": _xgb_space,
    "bdt": _bdt_space,
    "rf": _rf_space,
    "svm": _svm_space,
    "linear": _linear_space,
    "dnn": _dnn_space,
}
"""Per model, the parameters a trial draws (ranges in the functions above, docs/kfold-tuning.md)."""


def storage_path_for(tracking_uri: str | None) -> Path:
    """``hepclf_tuning.db`` beside an SQLite or file tracking store, else in the working dir."""
    if tracking_uri:
        parsed = urlparse(tracking_uri)
        if parsed.scheme == "sqlite":
            db = Path(tracking_uri.removeprefix("sqlite:///"))
            return db.expanduser().resolve().parent / STORAGE_FILE
        if parsed.scheme in ("", "file"):
            return Path(parsed.path or tracking_uri).expanduser().resolve().parent / STORAGE_FILE
    return Path.cwd() / STORAGE_FILE


def fingerprint(*parts: Any) -> str:
    """A short hash naming a study: same data and settings, same study."""
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def study_key(base: dict[str, Any], folds: int, seed: int, data_key: str) -> str:
    """The fingerprint in a study's name: model settings, folds and their rule, seed, data."""
    return fingerprint(base, folds, FOLD_RULE, seed, data_key)


def data_fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """Hash of the training events, so a study is resumed only on the same events."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:10]


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
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    eval_weight: np.ndarray | None,
    fold: np.ndarray,
    seed: int,
    report: Callable[[int, float], None] | None = None,
) -> list[float]:
    """AUC of each held-out fold for one parameter set; ``report(k, mean)`` after each fold."""
    aucs: list[float] = []
    for k in range(int(fold.max()) + 1):
        train, test = fold != k, fold == k
        model = build_model(name, params, seed=seed)
        w = None if sample_weight is None else sample_weight[train]
        with warnings.catch_warnings():  # the pipeline says it once per run
            warnings.filterwarnings("ignore", message=".*negative weights.*")
            model.fit(X[train], y[train], w)
        proba = model.predict_proba(X[test])
        aucs.append(_auc(y[test], proba, None if eval_weight is None else eval_weight[test]))
        if report is not None:
            report(k, float(np.mean(aucs)))
    return aucs


def _auc(y: np.ndarray, proba: np.ndarray, weight: np.ndarray | None) -> float:
    """The pipeline's ``auc_test`` measure: the signal AUC for two classes, the macro
    one-vs-rest AUC for more."""
    if proba.shape[1] == 2:
        return roc_auc(y, proba[:, 1], weight)
    rocs = one_vs_rest_rocs(y, proba, weight, proba.shape[1])
    return float(np.mean([roc.auc for roc in rocs]))


def tune_model(
    name: str,
    X: np.ndarray,
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
    console: Console | None = None,
    classes: Sequence[str] | None = None,
) -> TuningResult:
    """Search ``name``'s parameters on the given (training) events; returns the best.

    ``trials`` is the total for the study: a resumed study runs only the trials it still
    lacks. ``timeout_s`` bounds this call. ``base_params`` (the pipeline's own settings for
    the model) stay fixed unless the search space draws them. With a ``console``, a Rich
    bar shows the trials and the best CV AUC so far. ``classes`` (names of the labels)
    name a class too rare for the folds in the error.
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
    storage_url = _storage_url(storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage(storage_url)
    study = optuna.create_study(
        study_name=study_name,
        storage=rdb,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=(
            optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
            if pruning
            else optuna.pruners.NopPruner()
        ),
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        drawn = SEARCH_SPACES[name](trial)
        params = {**base, **drawn}

        def report(k: int, mean: float) -> None:
            trial.report(mean, k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with _trial_run(name, trial.number, drawn) as log:
            aucs = cross_validated_auc(
                name, params, X, y, sample_weight, eval_weight, fold, seed, report
            )
            log(aucs)
        trial.set_user_attr("params", drawn)
        return float(np.mean(aucs))

    if not study.get_trials(deepcopy=False):
        _enqueue_current(study, name, base)
    done = _counted(study)
    remaining = None if trials is None else max(0, trials - done)
    if remaining == 0:  # a resumed study that already has its trials
        return _result(name, study, storage_url)
    if console is None:
        study.optimize(objective, n_trials=remaining, timeout=timeout_s, catch=())
    else:
        with _progress_bar(console, name, trials, timeout_s, study, done) as callback:
            study.optimize(
                objective, n_trials=remaining, timeout=timeout_s, callbacks=[callback], catch=()
            )
    return _result(name, study, storage_url)


def _enqueue_current(study: optuna.Study, name: str, base: dict[str, Any]) -> None:
    """Make the first trial the model's current setting (defaults + the pipeline's values),
    so the search only ever reports a setting that beat it in cross-validation.

    Parameters the space draws under another name or outside its range (``layers``, a
    ``null`` bootstrap fraction, ``gamma: scale``) are left to the sampler.
    """
    current = {**MODEL_TYPES[name].Params().model_dump(), **base}
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    SEARCH_SPACES[name](probe)
    values = {}
    for key, dist in probe.distributions.items():
        value = current.get(key)
        if value is None or isinstance(value, list | dict):
            continue
        if _within(dist, value):
            values[key] = value
    study.enqueue_trial(values, skip_if_exists=True)


def _within(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is one the distribution can draw (public attributes only)."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return value in dist.choices
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    ranged = (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)
    return isinstance(dist, ranged) and numeric and dist.low <= value <= dist.high


def _counted(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _storage_url(storage: Path | str) -> str:
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _result(name: str, study: optuna.Study, storage_url: str) -> TuningResult:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(
            f"tuning {name}: no trial finished within the budget; raise tune.timeout_s "
            "(one trial trains one model per tuning fold)"
        )
    best = study.best_trial
    first = min(study.get_trials(deepcopy=False), key=lambda t: t.number)
    # the study's first trial is the enqueued current setting (``_enqueue_current``)
    current = first.state == optuna.trial.TrialState.COMPLETE and "fixed_params" in (
        first.system_attrs
    )
    return TuningResult(
        model=name,
        best_params=dict(best.user_attrs.get("params", best.params)),
        best_value=float(best.value),
        n_trials=_counted(study),
        n_complete=len(complete),
        study_name=study.study_name,
        storage=storage_url,
        trial_values=[float(t.value) for t in complete],
        improved=not (current and best.number == first.number),
    )


class _trial_run:
    """A nested MLflow run per trial when a run is active; a no-op otherwise."""

    def __init__(self, name: str, number: int, params: dict[str, Any]) -> None:
        self.name, self.number, self.params = name, number, params
        self.run: Any = None

    def __enter__(self) -> Callable[[list[float]], None]:
        mlflow = sys.modules.get("mlflow")  # no tracking was started if it is not imported
        if mlflow is not None and mlflow.active_run() is not None:
            self.run = mlflow.start_run(run_name=f"{self.name}-trial-{self.number}", nested=True)
            mlflow.set_tags({"hepclf.kind": "tuning-trial", "hepclf.model": self.name})
            mlflow.log_params({k: json.dumps(v) for k, v in self.params.items()})
        return self._log

    def _log(self, aucs: list[float]) -> None:
        if self.run is None:
            return
        import mlflow

        for k, auc in enumerate(aucs):
            mlflow.log_metric("cv_auc_fold", auc, step=k)
        mlflow.log_metric("cv_auc", float(np.mean(aucs)))

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if self.run is not None:
            import mlflow

            pruned = isinstance(error, optuna.TrialPruned)
            mlflow.set_tag("hepclf.trial_state", "pruned" if pruned else "done")
            mlflow.end_run(status="FAILED" if kind and not pruned else "FINISHED")


class _progress_bar:
    """A rich bar over trials (or the time budget) showing the best AUC so far."""

    def __init__(
        self,
        console: Console,
        name: str,
        trials: int | None,
        timeout_s: float | None,
        study: optuna.Study,
        done: int,
    ) -> None:
        self.progress = RichProgress(
            TextColumn("tuning [bold]{task.fields[model]}[/]"),
            BarColumn(),
            TextColumn("{task.fields[count]} trials, best CV AUC {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.by_trials = trials is not None
        self.total = float(trials) if trials is not None else float(timeout_s or math.inf)
        self.start = time.monotonic()
        self.study = study
        self.done = done
        self.task = self.progress.add_task(
            "tune",
            total=None if math.isinf(self.total) else self.total,
            completed=done if self.by_trials else 0,
            model=name,
            count=done,
            best=self._best(),
        )

    def _best(self) -> str:
        try:
            return f"{self.study.best_value:.4f}"
        except ValueError:
            return "-"

    def __enter__(self) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
        self.progress.start()
        return self._update

    def _update(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        count = _counted(study)
        completed = count if self.by_trials else time.monotonic() - self.start
        self.progress.update(self.task, completed=completed, count=count, best=self._best())

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if not self.by_trials and not math.isinf(self.total):
            self.progress.update(self.task, completed=self.total)
        self.progress.stop()


def training_events(
    table: FeatureTable, split: SplitIndices, normalizer: Normalizer | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and physical weights of the events tuning may see.

    Those are the training and validation parts (every event under k-fold), never the test
    part: a search that looked at test events would make the test AUC optimistic.
    """
    rows = np.sort(np.concatenate([split.train, split.validation]))
    X = table.X[rows]
    if normalizer is not None:
        X = normalizer.transform(X)
    return X, table.label[rows], table.weight[rows]


def tune_models(
    config: PipelineConfig,
    X: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    *,
    models: list[str] | None = None,
    tracking_uri: str | None = None,
    console: Console | None = None,
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
    X, y, eval_weight = X[keep], y[keep], weight[keep]
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
            console=console,
            classes=config.class_names,
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


def tune_pipeline(
    config: PipelineConfig,
    data: PreparedData,
    models: list[str],
    tracking_uri: str | None,
    progress: Progress | None = None,
) -> dict[str, TuningResult]:
    """The pipeline's tuning step (nothing without a ``tune:`` block): tune on the training
    events of the prepared data, with a progress bar where the caller shows bars."""
    if config.tune is None:
        return {}
    X, y, w = training_events(data.table, data.split, data.normalizer)
    console = Console(stderr=True) if progress is not None and progress.bars else None
    results = tune_models(
        config, X, y, w, models=models, tracking_uri=tracking_uri, console=console
    )
    for name, r in results.items():
        if progress is not None:
            progress.note(
                f"tuned {name}: {tuning_outcome(r)} (study {r.study_name!r} in {r.storage})"
            )
    return results


def run_tuning(
    config: PipelineConfig,
    *,
    models: list[str] | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    output: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> dict[str, TuningResult]:
    """``hepclf tune``: ingest, prepare and tune, without the final fit.

    One MLflow run (tag ``hepclf.kind=tuning``) holds a nested run per trial, the best CV
    AUC per model and ``tuned_params.yaml``, which is also written to ``output``. Without
    a ``tune:`` block the defaults of :class:`~hepclf.config.TuneConfig` apply.
    """
    import mlflow

    from hepclf.config import TuneConfig
    from hepclf.files import write_atomic
    from hepclf.ingest import ingest
    from hepclf.prepare import prepare
    from hepclf.progress import Progress
    from hepclf.tracking.logging import PipelineTracker
    from hepclf.training import select_models

    progress = progress or Progress()
    if config.tune is None:
        config = config.model_copy(update={"tune": TuneConfig()})
    chosen = select_models(config, models)
    data = prepare(config, ingest(config, use_cache=use_cache, progress=progress))
    with PipelineTracker(config, tracking_uri, experiment) as tracker:
        mlflow.set_tags({"hepclf.kind": "tuning"})
        results = tune_pipeline(config, data, list(chosen), tracker.tracking_uri, progress)
        for name, r in results.items():
            mlflow.log_metric(f"{name}_tuning_cv_auc", r.best_value)
        text = tuned_yaml(results)
        mlflow.log_text(text, "tuned_params.yaml")
    if output is not None:
        write_atomic(text.encode(), output)
    return results
