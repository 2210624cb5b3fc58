"""One interface for every classifier in the zoo, so pipelines never special-case a model."""

from __future__ import annotations

import abc
import json
import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pydantic

from hepclf.errors import ConfigError

META_FILE = "model.json"


def validate_params(
    model: str, schema: type[pydantic.BaseModel], params: dict[str, Any]
) -> pydantic.BaseModel:
    """Validate hyperparameters, turning pydantic's report into a message a physicist can act on."""
    try:
        return schema(**params)
    except pydantic.ValidationError as exc:
        allowed = ", ".join(schema.model_fields)
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "<params>"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown parameter '{key}'")
            else:
                problems.append(f"parameter '{key}': {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(
            f"Model '{model}': {'; '.join(problems)}. Allowed parameters: {allowed}."
        ) from None


def check_inputs(
    X: np.ndarray, y: np.ndarray | None = None, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Return float32 features, int labels in {0, 1} and float64 weights of mean 1.

    Weights are rescaled to mean 1 because only their ratios matter for training, while
    hyperparameters such as xgboost's min_child_weight or an SVM's C would otherwise
    depend on the cross-section units. Negative event weights (NLO generators) are
    replaced by their absolute value, a common approximation in ATLAS/CMS analyses; a
    warning says so.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (events, features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values; fix or drop them before training")
    if y is None:
        return X, None, None
    y = np.asarray(y).ravel()
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} events but y has {len(y)}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must contain only 0 (background) and 1 (signal)")
    y = y.astype(np.int8)
    if y.min() == y.max():
        raise ValueError("training needs both signal (1) and background (0) events")
    if sample_weight is None:
        return X, y, None
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if len(w) != len(X):
        raise ValueError(f"X has {len(X)} events but sample_weight has {len(w)}")
    if (w < 0).any():
        warnings.warn(
            f"{int((w < 0).sum())} events have negative weights; training uses |w| instead.",
            stacklevel=3,
        )
        w = np.abs(w)
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: there is nothing to train on")
    return X, y, w / w.mean()


def resolve_validation(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    w_val: np.ndarray | None,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return checked (train, validation) arrays with explicit weights.

    Early stopping needs a validation set; when the caller gives none, a stratified,
    seeded ``fraction`` of the training events is held out instead.
    """
    X, y, w = check_inputs(X, y, w)
    w = np.ones(len(X)) if w is None else w
    if X_val is None or y_val is None:
        from sklearn.model_selection import train_test_split

        X, X_val, y, y_val, w, w_val = train_test_split(
            X, y, w, test_size=fraction, stratify=y, random_state=seed
        )
        return X, y, w, X_val, y_val, w_val
    X_val, y_val, w_val = check_inputs(X_val, y_val, w_val)
    w_val = np.ones(len(X_val)) if w_val is None else w_val
    return X, y, w, X_val, y_val, w_val


def two_columns(score: np.ndarray) -> np.ndarray:
    """Stack a signal score in [0, 1] as scikit-learn's (background, signal) columns."""
    score = np.clip(np.asarray(score, dtype=np.float64).ravel(), 0.0, 1.0)
    return np.column_stack([1.0 - score, score])


class Classifier(abc.ABC):
    """Signal-vs-background classifier with validated hyperparameters and a self-contained save.

    Subclasses set ``name`` and ``Params`` and implement ``fit``, ``predict_proba``,
    ``_save_model`` and ``_load_model``; everything else (parameter checks, the metadata
    json, learning curves, importances) is shared here.
    """

    name: ClassVar[str]
    Params: ClassVar[type[pydantic.BaseModel]]

    def __init__(self, seed: int = 42, **params: Any) -> None:
        self.seed = int(seed)
        self.hp = validate_params(self.name, self.Params, params)
        self.history_: dict[str, list[float]] = {}
        self.feature_importances_: np.ndarray | None = None
        self.device_ = "CPU"

    @property
    def params(self) -> dict[str, Any]:
        """Validated hyperparameters, defaults filled in."""
        return self.hp.model_dump()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, **{self.params})"

    @abc.abstractmethod
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        w_val: np.ndarray | None = None,
    ) -> Self:
        """Train on normalised float32 features; the validation set drives early stopping."""

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return shape (n, 2); column 1 is the signal score in [0, 1]."""

    @abc.abstractmethod
    def _save_model(self, directory: Path) -> None:
        """Write the fitted model's own files into ``directory``."""

    @abc.abstractmethod
    def _load_model(self, directory: Path) -> None:
        """Restore the fitted model written by ``_save_model``."""

    def save(self, directory: Path | str) -> None:
        """Write a self-contained folder: the model files plus ``model.json`` (name, params)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_model(directory)
        importances = self.feature_importances_
        meta = {
            "name": self.name,
            "params": self.params,
            "seed": self.seed,
            "device": self.device_,
            "history": self.history_,
            "feature_importances": None if importances is None else importances.tolist(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path | str) -> Self:
        """Rebuild a model saved with ``save``; predictions are identical to the saved one."""
        directory = Path(directory)
        meta = read_meta(directory)
        if meta["name"] != cls.name:
            raise ConfigError(
                f"{directory} holds a '{meta['name']}' model, not '{cls.name}'; "
                "use hepclf.models.load_model to load any type."
            )
        model = cls(seed=meta["seed"], **meta["params"])
        model._load_model(directory)
        model.device_ = meta["device"]
        model.history_ = meta["history"]
        importances = meta["feature_importances"]
        model.feature_importances_ = None if importances is None else np.asarray(importances)
        return model


def read_meta(directory: Path) -> dict[str, Any]:
    """Read ``model.json`` of a saved model folder."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ConfigError(f"{directory} is not a saved hepclf model: {META_FILE} is missing.")
    return json.loads(path.read_text())
