"""The classifier zoo: every model behind one scikit-learn-style interface, each model's
facts (class, search space, ONNX converter, requirements) in :mod:`.registry`.

Importing this package is cheap: TensorFlow is imported only when a ``dnn`` is fitted or
loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hepclf.models.base import Classifier, read_meta, validate_params
from hepclf.models.folds import FOLD_ENSEMBLE, FoldEnsemble
from hepclf.models.registry import MODEL_TYPES, MODELS, SEARCH_SPACES, ModelSpec
from hepclf.runtime.errors import ConfigError


def model_type(name: str) -> type[Classifier]:
    """The class of zoo model ``name``; an unknown name is an error listing the zoo."""
    if name not in MODEL_TYPES:
        raise ConfigError(
            f"Unknown model type '{name}'. Known types: {', '.join(sorted(MODEL_TYPES))}."
        )
    return MODEL_TYPES[name]


def check_model_params(name: str, params: dict[str, Any] | None) -> None:
    """Raise ``ConfigError`` now for parameters ``fit`` would refuse, or for a model whose
    optional libraries are not installed (used at YAML load)."""
    cls = model_type(name)
    validate_params(name, cls.Params, dict(params or {}))
    if not cls.installed():
        raise ConfigError(
            f"Model '{name}' needs the optional libraries of `pip install 'hepclf[{cls.extra}]'`, "
            "which are not installed here; install them, or leave it out of 'models:'."
        )


def installed_models() -> list[str]:
    """The zoo's models whose libraries are installed (all but ``dnn`` without TensorFlow)."""
    return [name for name, cls in MODEL_TYPES.items() if cls.installed()]


def build_model(name: str, params: dict[str, Any] | None, seed: int) -> Classifier:
    """Create an unfitted model of type ``name`` with validated ``params``."""
    check_model_params(name, params)
    return model_type(name)(seed=seed, **(params or {}))


def load_model(directory: Path | str) -> Classifier:
    """Load any model saved with ``Classifier.save``; ``model.json`` names its type."""
    name = read_meta(Path(directory))["name"]
    if name == FOLD_ENSEMBLE:  # k-fold models: one saved model per fold
        return FoldEnsemble.load(directory, load_model)
    if name not in MODEL_TYPES:
        raise ConfigError(f"{directory} holds an unknown model type '{name}'.")
    return MODEL_TYPES[name].load(directory)


__all__ = [
    "MODELS",
    "MODEL_TYPES",
    "SEARCH_SPACES",
    "Classifier",
    "ModelSpec",
    "build_model",
    "check_model_params",
    "installed_models",
    "load_model",
    "model_type",
]
