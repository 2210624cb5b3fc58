"""Which MLflow store a command uses, resolved the same way for every command.

``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else SQLite ``mlflow.db`` in the working
folder. Commands that write (train) may create the store; the first use of a fresh SQLite
file is serialised with a file lock beside it, because MLflow's schema migrations are not
safe when several jobs start at once. Commands that only read (score, serve, export,
compare) never create one: a missing store is an error naming where they looked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from hepclf.runtime.errors import HepclfError
from hepclf.runtime.interrupts import deferred

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOCK_TIMEOUT_S = 300.0


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else SQLite ``mlflow.db`` here."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def local_store_path(uri: str) -> Path | None:
    """The file (SQLite) or folder (file store) behind a local tracking URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////abs/path.db; in-memory has no file
        path = unquote(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else ""
        return Path(path).expanduser().resolve() if path and path != ":memory:" else None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).expanduser().resolve()
    if parsed.scheme == "" and uri:
        return Path(uri).expanduser().resolve()
    return None


def current_tracking_uri() -> str:
    """The store MLflow points at in this process (what worker processes are pointed at)."""
    import mlflow

    return mlflow.get_tracking_uri()


def point_at(uri: str) -> None:
    """Point MLflow at ``uri`` in this process (a worker, told by the process that started it)."""
    import mlflow

    mlflow.set_tracking_uri(uri)


def use_store(explicit: str | None = None, *, create: bool) -> str:
    """Point MLflow at the resolved store and return its URI.

    ``create=False``: a local store that does not exist is an error (nothing is created).
    ``create=True``: a fresh SQLite store is created under a lock, so concurrent first
    uses do not race through MLflow's migrations.
    """
    import mlflow

    uri = resolve_tracking_uri(explicit)
    path = local_store_path(uri)
    if path is not None and not path.exists() and not create:
        raise HepclfError(
            f"no MLflow store at {path} (tracking URI {uri}); nothing was created. Give "
            "--tracking-uri or set MLFLOW_TRACKING_URI to the store your models were "
            "trained into (`hepclf train` prints it)."
        )
    mlflow.set_tracking_uri(uri)
    if create and path is not None and urlparse(uri).scheme == "sqlite":
        _initialise_sqlite(uri, path)
    return uri


def use_store_for(models: list[str], explicit: str | None = None) -> str:
    """Like ``use_store(create=False)``, for commands given model sources: a store is only
    required when a source is not a local folder (models:/, runs:/, m-...)."""
    sources = [m.split("=", 1)[-1] for m in models]
    for source in sources:
        if not Path(source).expanduser().exists() and not _is_mlflow_reference(source):
            raise HepclfError(
                f"model {source!r}: no such folder, and not an MLflow URI; give "
                "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/MODEL_TYPE, a logged model "
                "id (m-...) or a model folder"
            )
    if all(Path(source).expanduser().exists() for source in sources):
        # local folders need no MLflow (seconds to import); it reads this if ever imported
        uri = resolve_tracking_uri(explicit)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        if "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(uri)
        return uri
    return use_store(explicit, create=False)


def _is_mlflow_reference(source: str) -> bool:
    """models:/..., runs:/..., other artifact URIs, or a logged-model id (m-...)."""
    return ":/" in source or source.startswith("m-")


def _initialise_sqlite(uri: str, path: Path) -> None:
    """Create (or migrate) the tracking and registry tables once, holding a file lock."""
    import mlflow
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    # a migration stopped half-way would leave a store nobody can open
    with deferred(), FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def describe_store(uri: str) -> str:
    """A short account of where a store is, for messages."""
    path = local_store_path(uri)
    return f"{uri} ({path})" if path is not None and str(path) not in uri else uri
