"""The model registry as the service sees it: cached bundles (the registry queries are
:mod:`hepclf.tracking.registry`'s).

Bundles are cached per (name, version): a version never changes, so a cached bundle is
never stale. What an alias points to is cached for ``alias_ttl_s`` seconds only, so that
moving ``champion`` takes effect within that time without a registry call per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from hepclf.scoring.scorers import ModelSpec, ScoringModel, branch_for
from hepclf.tracking.registry import (
    CHAMPION_ALIAS,
    ModelNotFound,
    list_models,
    load_bundle,
    resolve_version,
)

__all__ = ["ModelCache", "ModelNotFound", "list_models", "resolve_version"]


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
