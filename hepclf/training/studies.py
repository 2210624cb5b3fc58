"""Where tuning studies live and how they are named, so that a search resumes where it
stopped: an SQLite file beside the tracking store, one study per pipeline, model and
fingerprint of the data and settings (a study made with other events, folds or settings is
never resumed).

Optuna creates its tables in whatever SQLite file it is given, an MLflow tracking store
included, and fails deep inside SQLAlchemy on a truncated file; both are refused here with
the file named and left as it is.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import optuna

from hepclf.models import model_type
from hepclf.models.registry import SEARCH_SPACES
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.training.results import TuningResult

STORAGE_FILE = "hepclf_tuning.db"
_OPTUNA_TABLES = {"studies", "trials", "version_info"}
_SQLITE_HEADER = b"SQLite format 3\x00"
FOLD_RULE = "stratified-kfold"
"""How tuning folds are drawn; part of a study's fingerprint, so a study made with other
folds is never resumed."""


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


def data_fingerprint(X: np.ndarray | Rows, y: np.ndarray) -> str:
    """Hash of the training events, so a study is resumed only on the same events.

    Rows are hashed block by block: the same bytes, so the same study, as their float32
    model inputs copied whole.
    """
    digest = hashlib.sha256()
    if isinstance(X, Rows):
        for _, block in X.blocks():
            digest.update(block.tobytes())
    else:
        digest.update(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:10]


def open_study(storage: Path | str, study_name: str, seed: int, pruning: bool) -> optuna.Study:
    """The study ``study_name`` in ``storage``, created or loaded to continue.

    The median pruner stops a trial whose running mean over its folds is below the median
    of earlier trials at the same fold; the seeded TPE sampler makes a search repeatable.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage(storage_url(storage))
    return optuna.create_study(
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


def enqueue_current(study: optuna.Study, name: str, base: dict[str, Any]) -> None:
    """Make the first trial the model's current setting (defaults + the pipeline's values),
    so the search only ever reports a setting that beat it in cross-validation.

    Parameters the space draws under another name or outside its range (``layers``, a
    ``null`` bootstrap fraction, ``gamma: scale``) are left to the sampler.
    """
    current = {**model_type(name).Params().model_dump(), **base}
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


def counted_trials(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def storage_url(storage: Path | str) -> str:
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def study_result(name: str, study: optuna.Study, storage: str) -> TuningResult:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(
            f"tuning {name}: no trial finished within the budget; raise tune.timeout_s "
            "(one trial trains one model per tuning fold)"
        )
    best = study.best_trial
    first = min(study.get_trials(deepcopy=False), key=lambda t: t.number)
    # the study's first trial is the enqueued current setting (``enqueue_current``)
    current = first.state == optuna.trial.TrialState.COMPLETE and "fixed_params" in (
        first.system_attrs
    )
    return TuningResult(
        model=name,
        best_params=dict(best.user_attrs.get("params", best.params)),
        best_value=float(best.value),
        n_trials=counted_trials(study),
        n_complete=len(complete),
        study_name=study.study_name,
        storage=storage,
        trial_values=[float(t.value) for t in complete],
        improved=not (current and best.number == first.number),
    )


def open_storage(storage_url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage; a local file that is not an Optuna database is refused, unchanged:
    Optuna would otherwise add its tables to any SQLite file (an MLflow store included) or
    fail deep in SQLAlchemy on a truncated one."""
    if storage_url.startswith("sqlite:///"):
        _check_sqlite_storage(Path(storage_url.removeprefix("sqlite:///")))
    try:
        with warnings.catch_warnings():
            # the heartbeat marks trials of a killed process as failed when the study resumes
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage_url, heartbeat_interval=30, grace_period=120)
    except Exception as err:  # SQLAlchemy's errors: unreachable server, damaged database
        lines = str(err).strip().splitlines()
        raise ConfigError(
            f"tune.storage {storage_url}: cannot be opened as an Optuna study database "
            f"({type(err).__name__}: {lines[0] if lines else 'no details'}); point tune.storage "
            "at a new file of its own, or repair or remove this one"
        ) from None


def _check_sqlite_storage(path: Path) -> None:
    """An existing, non-empty file must be an SQLite database holding Optuna's tables only."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as file:
        header = file.read(len(_SQLITE_HEADER))
    if header != _SQLITE_HEADER:
        raise ConfigError(
            f"tune.storage {path}: not an SQLite database (truncated, or another kind of file); "
            "it is left as it is: point tune.storage at a new file, or move this one away"
        )
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as err:
        raise ConfigError(
            f"tune.storage {path}: a damaged SQLite database ({err}); it is left as it is: "
            "point tune.storage at a new file, or move this one away"
        ) from None
    tables = {t for t in tables if not t.startswith(("sqlite_", "ix_"))}
    mlflow_store = {"experiments", "runs"} <= tables
    if mlflow_store or (tables and not tables >= _OPTUNA_TABLES):
        whose = "an MLflow tracking store" if mlflow_store else "a database"
        shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        raise ConfigError(
            f"tune.storage {path}: {whose} of another application (tables {shown}), to which "
            "Optuna would add its tables; it is left as it is: give tune.storage a file of its "
            f"own (default: {STORAGE_FILE} beside the tracking store)"
        )
