"""hepclf models as MLflow pyfunc models.

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes a DataFrame of raw (not normalised)
feature columns and returns signal scores: the bundle inside applies the normaliser the
model was trained with. The hepclf source travels with the model (``code_paths``), so a
logged model loads wherever its dependencies are installed.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from hepclf.models.registry import MODELS
from hepclf.training.bundle import ModelBundle

ARTIFACT_KEY = "bundle"
PACKAGE_DIR = Path(__file__).parents[1]
"""The hepclf source folder, logged with every model."""
_REQUIREMENTS = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "xgboost",
    "xgboost-cpu",  # the same module without NCCL (the core install)
    "awkward",
    "uproot",
    "pydantic",
    "pyyaml",
    "mlflow",
)


class HepclfPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper that scores raw feature columns with a :class:`ModelBundle`."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, str] | None = None
    ) -> np.ndarray | pd.DataFrame:
        """Signal scores; for a multi-class model one probability column per class."""
        X = self.bundle.features_from_frame(model_input)
        if self.bundle.multiclass:
            return pd.DataFrame(self.bundle.probabilities(X), columns=self.bundle.classes)
        return self.bundle.score_features(X)


def signature_for(bundle: ModelBundle) -> ModelSignature:
    """Inputs: the raw feature columns (double) and, with categories, the branches that route
    events; output: the signal score, or one probability per class (in class order)."""
    outputs = [ColSpec("double", c) for c in bundle.classes] if bundle.multiclass else None
    inputs = bundle.columns + bundle.routing_columns
    return ModelSignature(
        inputs=Schema(
            [ColSpec("double", c) for c in dict.fromkeys(inputs)]
            # k-fold: the event id picks the fold model; without it the folds are averaged
            + [ColSpec("long", c, required=False) for c in bundle.fold_columns]
        ),
        outputs=Schema(outputs or [ColSpec("double", "score")]),
    )


def requirements_for(bundle: ModelBundle) -> list[str]:
    """Pinned requirements of the installed versions (no slow inference subprocess)."""
    spec = MODELS.get(bundle.classifier.name)
    names = [*_REQUIREMENTS, *(spec.requirements if spec else ())]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def input_example_for(
    bundle: ModelBundle, X: np.ndarray, event_id: np.ndarray | None = None, rows: int = 5
) -> pd.DataFrame | None:
    """A few real events as the raw feature columns the model takes (float64, as signed)
    and, for a k-fold model, their event ids: a request copied from the example (the
    ``serving_input_example.json`` of ``mlflow models serve``) then gets each event's
    out-of-fold score, not the fold average.

    None for a category model: it also needs the routing branches, which are not features.
    """
    if bundle.routing_columns:
        return None
    frame = pd.DataFrame(np.asarray(X[:rows], dtype=np.float64), columns=bundle.columns)
    if bundle.event_id and event_id is not None:
        frame[bundle.event_id] = np.asarray(event_id[:rows], dtype=np.int64)
    return frame


def log_bundle(
    bundle: ModelBundle, name: str | None = None, input_example: pd.DataFrame | None = None
) -> str:
    """Log the bundle as a pyfunc model in the active run; returns the model URI.

    The logged model is named after the model type (``bdt``, ``xgb``, ...) unless ``name``
    is given; ``input_example`` (a few raw events) shows ``mlflow models serve`` users the
    columns to send and is checked against the model when logged.
    """
    with tempfile.TemporaryDirectory(prefix="hepclf-bundle-") as tmp:
        directory = bundle.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name=name or bundle.classifier.name,
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={ARTIFACT_KEY: str(directory)},
            code_paths=[str(PACKAGE_DIR)],
            signature=signature_for(bundle),
            input_example=input_example,
            pip_requirements=requirements_for(bundle),
            metadata={"classes": bundle.classes} if bundle.multiclass else None,
        )
    return info.model_uri
