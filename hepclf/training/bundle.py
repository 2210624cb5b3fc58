"""A trained model with everything needed to score raw events: features, normaliser, classifier.

The bundle is the unit that travels: it is logged inside the MLflow pyfunc model, loaded
by batch scoring and the service, and exported to ONNX. Scoring from branches and scoring
from feature columns share it, so both give the same numbers as training saw.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.config.features import FeatureConfig
from hepclf.ingest.events.categories import CategoryModel, is_category_model
from hepclf.ingest.events.features import (
    compute_features,
    describe_nonfinite,
    event_ids,
    feature_branches,
)
from hepclf.models import Classifier, load_model
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.version import __version__
from hepclf.training.normalize import Normalizer

if TYPE_CHECKING:
    import pandas as pd

SPEC_FILE = "hepclf_bundle.json"
MODEL_DIR = "classifier"


def find_bundle(folder: Path) -> Path | None:
    """The folder holding a bundle: ``folder`` itself, or the first one inside it (an MLflow
    model folder keeps the bundle among its artifacts); None when there is none."""
    if (folder / SPEC_FILE).is_file():
        return folder
    found = sorted(folder.rglob(SPEC_FILE))
    return found[0].parent if found else None


_AVERAGED: set[str] = set()


def warn_fold_average(model: str, situation: str) -> None:
    """Say once per model and process that a k-fold model without event ids gives the
    average of its fold models, not each event's out-of-fold score."""
    if model in _AVERAGED:
        return
    _AVERAGED.add(model)
    warnings.warn(
        f"k-fold model {model!r} {situation}: it returns the average of its fold models, not "
        "each event's out-of-fold score (the two differ, most for the training events)",
        stacklevel=3,
    )


@dataclass
class ModelBundle:
    """Feature specification + fitted normaliser + fitted classifier, named after the model.

    The classifier may be a :class:`~hepclf.ingest.events.categories.CategoryModel`: then
    the feature arrays built here carry each event's category index as one extra last
    column, so
    everything that passes features around (scoring chunks, the pyfunc, the service)
    routes every event to its own category's model without knowing about categories.
    """

    name: str
    features: list[FeatureConfig]
    normalizer: Normalizer
    classifier: Classifier | CategoryModel
    pipeline: str = ""
    class_names: list[str] = field(default_factory=list)
    event_id: str | None = None
    """k-fold models: the event-id branch; an event is scored by the fold model that did not
    train on it (``event_id % folds``), an event without it by the average of the folds."""

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of ``probabilities`` columns."""
        return self.class_names or [str(c) for c in self.classifier.classes_]

    @property
    def multiclass(self) -> bool:
        """More than two classes: per-class outputs instead of one signal score."""
        return len(self.classifier.classes_) > 2

    @property
    def routing_columns(self) -> list[str]:
        """Branches the category selections read (none without categories)."""
        if not isinstance(self.classifier, CategoryModel):
            return []
        return sorted(self.classifier.branches)

    @property
    def columns(self) -> list[str]:
        """Raw feature columns the classifier was trained on, in order."""
        return [c for f in self.features for c in f.columns]

    @property
    def fold_columns(self) -> list[str]:
        """The event-id branch of a k-fold model (none otherwise)."""
        return [self.event_id] if self.event_id else []

    @property
    def required_branches(self) -> list[str]:
        """Branches an input file must hold to be scored."""
        needed = feature_branches(self.features) | set(self.routing_columns)
        return sorted(needed | set(self.fold_columns))

    def with_folds(self, X: np.ndarray, event_id: Any) -> np.ndarray:
        """``X`` plus, for a k-fold model, the fold column it reads (``event_id % folds``;
        -1, the fold average, where ``event_id`` is None). Other models: ``X`` as it is."""
        if not self.event_id:
            return X
        return np.column_stack([X, self._fold_of(event_id, len(X))])

    def _fold_of(self, event_id: Any, n_events: int) -> np.ndarray:
        """The fold column appended for k-fold models: ``event_id % folds``; -1 (the fold
        average, said once) without ids; a NaN or fractional id is an error, as at ingest."""
        if event_id is None:
            how = f"is scored without its event-id column {self.event_id!r} (give it)"
            warn_fold_average(self.name, how)
            return np.full(n_events, -1.0, dtype=np.float32)
        ids = event_ids(event_id, str(self.event_id), np.arange(n_events))
        model = self.classifier
        folds = model.models[0].folds if isinstance(model, CategoryModel) else model.folds
        return (ids % folds).astype(np.float32)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """(n, K) class probabilities for raw feature columns (NaN where unrouted).

        Extra columns after the features: the category (category models), then the fold
        (k-fold models given event ids; ``features_from_frame`` and friends append them).
        """
        X = np.asarray(X, dtype=np.float32)
        n = len(self.columns)
        if isinstance(self.classifier, CategoryModel):
            category = X[:, n].astype(np.int64)
            fold = X[:, n + 1].astype(np.int64) if self.event_id and X.shape[1] > n + 1 else None
            Z = self.normalizer.transform(X[:, :n])
            return np.asarray(self.classifier.predict_proba(Z, category, fold), dtype=np.float64)
        if self.event_id and X.shape[1] == n + 1:  # last column: the fold
            fold = X[:, -1].astype(np.int64)
            proba = self.classifier.predict_proba_folds(self.normalizer.transform(X[:, :-1]), fold)
            return np.asarray(proba, dtype=np.float64)
        proba = self.classifier.predict_proba(self.normalizer.transform(X))
        return np.asarray(proba, dtype=np.float64)

    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Signal scores for raw (not normalised) feature columns (two-class models)."""
        if self.multiclass:
            raise ValueError(
                f"model {self.name!r} has {len(self.classes)} classes: use "
                "probabilities() for one column per class"
            )
        return self.probabilities(X)[:, 1]

    def features_from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature columns of a DataFrame, in training order; missing ones named."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InputDataError(
                f"model {self.name!r} needs feature columns {missing}; it was trained on "
                f"{self.columns}"
            )
        X = frame[self.columns].to_numpy(dtype=np.float32)
        problem = describe_nonfinite(X, self.columns, np.arange(len(X)))
        if problem is not None:  # the same rule as batch scoring and the service
            raise InputDataError(
                f"cannot score with model {self.name!r}: {problem.replace('(entries', '(rows')}"
                "; compute the features as hepclf does (empty collections take the "
                "feature's fill value) or drop these rows"
            )
        if self.routing_columns:
            X = self._routed_from_frame(X, frame)
        # an event id column picks the fold model; without it: the average
        ids = frame[self.event_id].to_numpy() if self.event_id in frame.columns else None
        return self.with_folds(X, ids)

    def _routed_from_frame(self, X: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.routing_columns if c not in frame.columns]
        if missing:
            raise InputDataError(
                f"model {self.name!r} routes events to categories with {missing}; give them as "
                "columns too (categories: "
                + "; ".join(f"{c.name}: {c.selection}" for c in self.classifier.categories)
                + ")"
            )
        return self.routed(X, {c: frame[c].to_numpy() for c in self.routing_columns})

    def routed(self, X: np.ndarray, arrays: Mapping[str, Any]) -> np.ndarray:
        """Feature columns plus, for a category model, each event's category from ``arrays``."""
        if not self.routing_columns:
            return X
        return np.column_stack([X, self.classifier.route(arrays, len(X))])

    def features_from_branches(self, arrays: Mapping[str, Any], n_events: int) -> np.ndarray:
        """Compute the feature columns from raw branches (awkward or NumPy arrays)."""
        return self.with_event_columns(compute_features(self.features, arrays, n_events), arrays)

    def with_event_columns(self, X: np.ndarray, arrays: Mapping[str, Any]) -> np.ndarray:
        """Computed feature columns ``X`` plus this model's own per-event columns (category,
        fold) from the raw branches: ``X`` depends on the feature specification only, so
        models sharing it may share ``X``, never these columns."""
        X = self.routed(X, arrays)
        return self.with_folds(X, arrays[self.event_id] if self.event_id else None)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.classifier.save(directory / MODEL_DIR)
        spec = {
            "name": self.name,
            "pipeline": self.pipeline,
            "hepclf_version": __version__,
            "model_type": self.classifier.name,
            "features": [f.model_dump(mode="json") for f in self.features],
            "columns": self.columns,
            "normalizer": self.normalizer.to_dict(),
            "classes": self.classes,
        }
        if self.routing_columns:
            spec["categories"] = [c.model_dump() for c in self.classifier.categories]
        if self.event_id:
            spec["event_id"] = self.event_id
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        spec_path = directory / SPEC_FILE
        if not spec_path.is_file():
            raise InputDataError(f"{directory}: not a hepclf model bundle (no {SPEC_FILE})")
        spec = json.loads(spec_path.read_text())
        return cls(
            name=spec["name"],
            features=[FeatureConfig.model_validate(f) for f in spec["features"]],
            normalizer=Normalizer.from_dict(spec["normalizer"]),
            classifier=(
                CategoryModel.load(directory / MODEL_DIR)
                if is_category_model(directory / MODEL_DIR)
                else load_model(directory / MODEL_DIR)
            ),
            pipeline=spec.get("pipeline", ""),
            class_names=spec.get("classes", []),
            event_id=spec.get("event_id"),
        )
