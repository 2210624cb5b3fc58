"""Optuna's study database (``tune.storage``), opened only when it is one.

Optuna creates its tables in whatever SQLite file it is given, an MLflow tracking store
included, and fails deep inside SQLAlchemy on a truncated file; both are refused here with
the file named and left as it is.
"""

from __future__ import annotations

import sqlite3
import warnings
from contextlib import closing
from pathlib import Path

import optuna

from hepclf.errors import ConfigError

STORAGE_FILE = "hepclf_tuning.db"

_OPTUNA_TABLES = {"studies", "trials", "version_info"}
_SQLITE_HEADER = b"SQLite format 3\x00"


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
