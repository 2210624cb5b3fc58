"""The models of a scoring run: each bundle with the output branch its scores go to.

A model is given as ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``,
an MLflow model URI or a local folder, optionally prefixed ``LABEL=``. Its scores are
written to the branch ``score_<LABEL>``; without a label, ``score_<bundle name>`` (the zoo
model type, e.g. ``score_xgb``). Aliases are pinned to a version once, in the process that
starts the run, so every worker of a parallel run scores with the same version.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from hepclf.config.samples import branch_safe
from hepclf.runtime.errors import HepclfError
from hepclf.tracking.store import point_at
from hepclf.training.bundle import SPEC_FILE, ModelBundle, find_bundle

_LABELLED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
_ALIAS_URI = re.compile(r"^models:/([^/@]+)@([^/@]+)$")


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load a model: a pinned source and its output branch."""

    source: str
    branch: str


@dataclass
class ScoringModel:
    """A loaded bundle and the branch its scores go to.

    ``score`` holds a lock: the service scores from many threads with one cached bundle,
    and not every classifier of the zoo is safe to call concurrently.
    """

    spec: ModelSpec
    bundle: ModelBundle
    version: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def branch(self) -> str:
        return self.spec.branch

    @property
    def columns(self) -> tuple[str, ...]:
        """Output columns: ``score_<label>`` for two classes; for K classes one
        ``score_<label>_<class>`` per class (summing to 1) and ``node_<label>``, the index
        of the highest output in the order of ``bundle.classes``."""
        if not self.bundle.multiclass:
            return (self.branch,)
        label = self.branch.removeprefix("score_")
        per_class = [f"{self.branch}_{branch_safe(c)}" for c in self.bundle.classes]
        return (*per_class, f"node_{label}")

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """(n, K) class probabilities (float64) for raw feature columns."""
        with self._lock:
            return self.bundle.probabilities(X)

    def outputs(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        """The output columns from (n, K) probabilities; a NaN row gets node -1."""
        if not self.bundle.multiclass:
            return {self.branch: np.ascontiguousarray(proba[:, 1])}
        *per_class, node = self.columns
        scored = np.isfinite(proba).all(axis=1)
        winner = np.full(len(proba), -1, dtype=np.int16)
        winner[scored] = np.argmax(proba[scored], axis=1)
        scores = {c: np.ascontiguousarray(proba[:, k]) for k, c in enumerate(per_class)}
        return {**scores, node: winner}


def branch_for(label: str) -> str:
    """The score branch for a label: ``score_`` + the label with odd characters as ``_``."""
    return "score_" + branch_safe(label)


def bundle_folder(folder: Path) -> Path:
    """The folder holding the bundle: the model folder itself, or inside a copied MLflow model."""
    found = find_bundle(folder)
    if found is None:
        raise HepclfError(f"model {str(folder)!r} holds no hepclf model ({SPEC_FILE} missing)")
    return found.resolve()


def pin_source(source: str) -> tuple[str, str | None]:
    """Turn an alias into its current version and a folder into its absolute bundle folder.

    Returns the pinned source and the registry version (None when not from the registry).
    """
    local = Path(source).expanduser()
    if local.exists():
        return str(bundle_folder(local)), None
    alias = _ALIAS_URI.match(source)
    if alias is None:
        version = re.match(r"^models:/[^/@]+/(\d+)$", source)
        return source, version.group(1) if version else None
    from hepclf.tracking.registry import alias_version

    name, alias_name = alias.groups()
    version = alias_version(name, alias_name)
    return f"models:/{name}/{version}", str(version)


def load_scoring_models(arguments: list[str]) -> list[ScoringModel]:
    """Load every ``--model`` argument; two models writing one branch is an error."""
    models = []
    for argument in arguments:
        labelled = _LABELLED.match(argument)
        label, source = labelled.groups() if labelled else (None, argument)
        pinned, version = pin_source(source)
        bundle = _load(pinned)
        spec = ModelSpec(pinned, branch_for(label or bundle.name))
        models.append(ScoringModel(spec, bundle, version))
    branches = [m.branch for m in models]
    repeated = sorted({b for b in branches if branches.count(b) > 1})
    if repeated:
        raise HepclfError(
            f"several models would write the branch(es) {repeated}; give each model a label, "
            "e.g. --model old=models:/hh/1 --model new=models:/hh@champion "
            "(branches score_old and score_new)"
        )
    return models


def _load(pinned: str) -> ModelBundle:
    """A pinned source's bundle; MLflow (slow to import) only for registry and run URIs."""
    if Path(pinned).is_dir():
        return ModelBundle.load(pinned)
    from hepclf.tracking.registry import load_bundle

    return load_bundle(pinned)


@lru_cache(maxsize=16)
def _cached_bundle(source: str, tracking_uri: str) -> ModelBundle:
    if not Path(source).is_dir():
        point_at(tracking_uri)
    return _load(source)


def models_from_specs(specs: tuple[ModelSpec, ...], tracking_uri: str) -> list[ScoringModel]:
    """Load pinned models in a worker process, once per process (cached)."""
    return [ScoringModel(spec, _cached_bundle(spec.source, tracking_uri)) for spec in specs]
