"""A trained model with everything needed to score raw events: features, normaliser, classifier.

The bundle is the unit that travels: it is logged inside the MLflow pyfunc model, loaded
by batch scoring and the service, and exported to ONNX. Scoring from branches and scoring
from feature columns share it, so both give the same numbers as training saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepclf import __version__
from hepclf.config import FeatureConfig
from hepclf.errors import InputDataError
from hepclf.features import compute_features, feature_branches
from hepclf.models import Classifier, load_model
from hepclf.normalize import Normalizer

SPEC_FILE = "hepclf_bundle.json"
MODEL_DIR = "classifier"


@dataclass
class ModelBundle:
    """Feature specification + fitted normaliser + fitted classifier, named after the model."""

    name: str
    features: list[FeatureConfig]
    normalizer: Normalizer
    classifier: Classifier
    pipeline: str = ""

    @property
    def columns(self) -> list[str]:
        """Raw feature columns the classifier was trained on, in order."""
        return [c for f in self.features for c in f.columns]

    @property
    def required_branches(self) -> list[str]:
        """Branches an input file must hold to be scored."""
        return sorted(feature_branches(self.features))

    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Signal scores for raw (not normalised) feature columns."""
        X = np.asarray(X, dtype=np.float32)
        return self.classifier.predict_proba(self.normalizer.transform(X))[:, 1].astype(np.float64)

    def features_from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature columns of a DataFrame, in training order; missing ones named."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InputDataError(
                f"model {self.name!r} needs feature columns {missing}; it was trained on "
                f"{self.columns}"
            )
        return frame[self.columns].to_numpy(dtype=np.float32)

    def features_from_branches(self, arrays: Mapping[str, Any], n_events: int) -> np.ndarray:
        """Compute the feature columns from raw branches (awkward or NumPy arrays)."""
        return compute_features(self.features, arrays, n_events)

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
        }
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
            classifier=load_model(directory / MODEL_DIR),
            pipeline=spec.get("pipeline", ""),
        )
