"""The MLflow model registry as the service sees it: listings, versions, cached bundles.

Bundles are cached per (name, version): a version never changes, so a cached bundle is
never stale. What an alias points to is cached for ``alias_ttl_s`` seconds only, so that
moving ``champion`` takes effect within that time without a registry call per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from hepclf.errors import HepclfError
from hepclf.scoring.scorers import ModelSpec, ScoringModel, branch_for
from hepclf.tracking.registry import CHAMPION_ALIAS, load_bundle


class ModelNotFound(HepclfError):
    """No such registered model, version or alias (answered with 404)."""


def resolve_version(name: str, alias: str | None, version: int | None) -> int:
    """The version number that ``version`` or ``alias`` (default champion) designates."""
    client = MlflowClient()
    try:
        if version is not None:
            return int(client.get_model_version(name, str(version)).version)
        return int(client.get_model_version_by_alias(name, alias or CHAMPION_ALIAS).version)
    except MlflowException as err:
        what = f"version {version}" if version is not None else f"alias {alias or CHAMPION_ALIAS!r}"
        raise ModelNotFound(
            f"registered model {name!r} has no {what} ({err.message.splitlines()[0]}); "
            "GET /models lists the models, versions and aliases"
        ) from None


def _version_entry(client: MlflowClient, version: Any, aliases: list[str]) -> dict[str, Any]:
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except MlflowException:  # the run was deleted; the version stays usable
            metrics = {}
    return {
        "version": int(version.version),
        "aliases": aliases,
        "run_id": version.run_id,
        "status": version.status,
        "created": version.creation_timestamp,
        "metrics": metrics,
    }


def list_models() -> list[dict[str, Any]]:
    """Every registered model: aliases, the latest version and each aliased version, with
    the metrics of the run that produced it (e.g. auc_test)."""
    client = MlflowClient()
    listing = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        for model in page:
            aliases: dict[str, str] = dict(model.aliases or {})
            versions = client.search_model_versions(f"name='{model.name}'")
            numbers = sorted((int(v.version) for v in versions), reverse=True)
            shown = sorted({*numbers[:1], *(int(v) for v in aliases.values())}, reverse=True)
            by_number = {int(v.version): v for v in versions}
            listing.append(
                {
                    "name": model.name,
                    "description": model.description or "",
                    "aliases": {a: int(v) for a, v in aliases.items()},
                    "latest_version": numbers[0] if numbers else None,
                    "versions": [
                        _version_entry(
                            client,
                            by_number[n],
                            sorted(a for a, v in aliases.items() if int(v) == n),
                        )
                        for n in shown
                        if n in by_number
                    ],
                }
            )
        token = page.token
        if not token:
            return listing


class ModelCache:
    """Loaded models by (name, version), least recently used dropped beyond ``size``."""

    def __init__(self, size: int, alias_ttl_s: float) -> None:
        self.size = size
        self.alias_ttl_s = alias_ttl_s
        self._models: OrderedDict[tuple[str, int], ScoringModel] = OrderedDict()
        self._aliases: dict[tuple[str, str], tuple[int, float]] = {}
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def resolve(self, name: str, alias: str | None, version: int | None) -> int:
        """The version to use; a loaded version or a recently resolved alias needs no call."""
        with self._guard:
            if version is not None and (name, version) in self._models:
                return version
            if version is None:
                cached = self._aliases.get((name, alias or CHAMPION_ALIAS))
                if cached is not None and time.monotonic() - cached[1] < self.alias_ttl_s:
                    return cached[0]
        resolved = resolve_version(name, alias, version)
        if version is None:
            with self._guard:
                self._aliases[(name, alias or CHAMPION_ALIAS)] = (resolved, time.monotonic())
        return resolved

    def get(self, name: str, version: int) -> ScoringModel:
        """The model, loaded once even when many requests ask for it at the same time."""
        key = (name, version)
        with self._guard:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._models:
                    return self._models[key]
            source = f"models:/{name}/{version}"
            bundle = load_bundle(source)
            model = ScoringModel(ModelSpec(source, branch_for(bundle.name)), bundle, str(version))
            with self._guard:
                self._models[key] = model
                self._loading.pop(key, None)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return model
