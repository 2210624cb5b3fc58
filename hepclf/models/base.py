"""One interface for every classifier in the zoo: scikit-learn's estimator contract.

Every model is a ``BaseEstimator``/``ClassifierMixin``: ``__init__`` stores its keyword
arguments unchanged (so ``get_params``/``set_params``/``clone`` work), ``fit`` validates them
against the model's pydantic ``Params`` schema (the same check the pipeline YAML gets when it
is loaded) and learns only public attributes ending in ``_``; ``predict_proba`` returns one
column per entry of ``classes_``. That makes ``cross_val_score``, ``GridSearchCV``,
``CalibratedClassifierCV``, ``permutation_importance`` and Optuna work on the zoo.
"""

from __future__ import annotations

import abc
import json
import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pydantic
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from hepclf.models.rows import Rows, capped
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.files import close_matches

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
                near = close_matches(key, schema.model_fields, n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                problems.append(f"unknown parameter '{key}'{hint}")
            else:
                problems.append(f"parameter '{key}': {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(
            f"Model '{model}': {'; '.join(problems)}. Allowed parameters: {allowed}."
        ) from None


def training_weights(
    sample_weight: Any, n_events: int, *, signed: bool = False, model: str = "model"
) -> np.ndarray:
    """Float64 event weights of mean 1; negative ones kept only where ``signed``.

    Only weight ratios matter for training, while hyperparameters such as xgboost's
    min_child_weight or an SVM's C would otherwise depend on the cross-section units. A
    model that cannot use a negative weight (a boosting weight, a hinge loss, a tree's
    node count; xgboost refuses them) trains on |w|, the common ATLAS/CMS approximation,
    with a warning naming it; one whose fit is a weighted sum of moments (Fisher) keeps the
    signs, as TMVA's Fisher does.
    """
    if sample_weight is None:
        return np.ones(n_events)
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if len(w) != n_events:
        raise ValueError(f"X has {n_events} events but sample_weight has {len(w)}")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinite values")
    if (w < 0).any() and not signed:
        warnings.warn(
            f"{model}: {int((w < 0).sum())} events have negative weights; {model} trains on "
            "|w| instead (only linear's fisher method uses signed weights).",
            stacklevel=3,
        )
        w = np.abs(w)
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: there is nothing to train on")
    return w / w.mean()


class Classifier(ClassifierMixin, BaseEstimator, abc.ABC):
    """A classifier of the zoo: scikit-learn contract plus a self-contained ``save``/``load``.

    Subclasses set ``name`` and ``Params`` (pydantic schema: constraints and documented
    defaults, which ``__init__``'s defaults must equal), write ``__init__`` with one keyword
    per parameter plus ``seed``, and implement ``_fit`` (arrays in memory) or ``_fit_rows``
    (rows streamed from the table), ``_predict_proba``, ``_save_model`` and ``_load_model``.
    The shared ``fit``/``fit_rows`` check the data, encode the labels to ``0..K-1``
    (``classes_`` keeps the originals) and normalise the weights.

    Fitted attributes every model sets: ``classes_``, ``n_features_in_``, ``history_``
    (learning curves by name, possibly empty), ``device_``; tree and linear models also
    ``feature_importances_``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[pydantic.BaseModel]]
    importance_type: ClassVar[str] = ""
    """Which importance ``feature_importances_`` holds (gain, impurity, |coef|...), for
    the plot's axis; empty for models without importances."""
    uses_validation: ClassVar[bool] = False
    """Whether ``fit`` uses ``X_val`` (early stopping, pruning): the pipeline gives its
    validation events only to such models and trains the others on them as well."""
    extra: ClassVar[str | None] = None
    """The optional dependency group (``pip install 'hepclf[EXTRA]'``) the model needs."""

    @classmethod
    def installed(cls) -> bool:
        """Whether the libraries this model needs are importable (see ``extra``)."""
        return True

    # -- parameters ---------------------------------------------------------------------
    @property
    def hyperparameters(self) -> dict[str, Any]:
        """``get_params()`` without ``seed``: what the YAML's ``models.<name>`` holds."""
        return {k: v for k, v in self.get_params().items() if k != "seed"}

    def validated_params(self) -> pydantic.BaseModel:
        """The hyperparameters checked against ``Params`` (raises ``ConfigError``)."""
        return validate_params(self.name, self.Params, self.hyperparameters)

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        X_val: Any = None,
        y_val: Any = None,
        w_val: Any = None,
    ) -> Self:
        """Train on normalised features; ``X_val``/``y_val`` drive early stopping where used.

        Without a validation set, models that stop early carve a stratified, seeded
        ``validation_fraction`` from the training events (see ``held_out``).
        """
        hp = self.validated_params()
        X, y = validate_data(self, X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        val = None
        if X_val is not None and y_val is not None:
            X_val = validate_data(self, X_val, reset=False, dtype=np.float32, order="C")
            val = Rows.of(X_val, y_val, w_val)
        return self._fit_checked(hp, Rows.of(X, y, sample_weight), val)

    def fit_rows(self, train: Rows, validation: Rows | None = None) -> Self:
        """Train on rows of a feature table, normalised block by block as the model reads
        them (``Rows.transform``): what the pipeline calls, so that no model copies the table.

        Gives the same model as ``fit`` on the arrays those rows hold.
        """
        hp = self.validated_params()
        check_classification_targets(train.y)
        self.n_features_in_ = train.n_features
        if hasattr(self, "feature_names_in_"):  # from an earlier fit on a DataFrame
            del self.feature_names_in_
        return self._fit_checked(hp, train, validation)

    def _fit_checked(self, hp: Any, train: Rows, val: Rows | None) -> Self:
        """Encode the labels to ``0..K-1`` (``classes_`` keeps the originals), give the
        weights mean 1, and fit."""
        self.classes_, y_code = np.unique(train.y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{self.name}: training needs at least two classes; y holds only one class "
                f"({self.classes_[0]!r})"
            )
        signed = self._uses_signed_weights(hp)

        def weights(rows: Rows) -> np.ndarray:
            return training_weights(rows.w, len(rows), signed=signed, model=self.name)

        train = train.with_labels(y_code.astype(np.intp), weights(train))
        if val is not None:
            val = val.with_labels(self._encode(val.y), weights(val))
        self.history_: dict[str, list[float]] = {}
        self.device_ = "CPU"
        self._fit_rows(hp, train, val)
        return self

    def _fit_rows(self, hp: Any, train: Rows, val: Rows | None) -> None:
        """Fit on rows; by default on their arrays in memory (at most ``max_train_events``
        training events where the model has that parameter). Streaming models override it."""
        train = capped(train, getattr(hp, "max_train_events", None), self.name, self.seed)
        arrays = None if val is None else (val.array(), val.y, val.w)
        assert train.w is not None
        self._fit(hp, train.array(), train.y, train.w, arrays)

    @property
    def keeps_signed_weights(self) -> bool:
        """Whether ``fit`` trains on negative weights as they are (else on |w|)."""
        return self._uses_signed_weights(self.validated_params())

    def _uses_signed_weights(self, hp: Any) -> bool:
        """Override where the fit is sound with negative weights (weighted moments)."""
        return False

    def _encode(self, y: Any) -> np.ndarray:
        """Labels as indices into ``classes_``; unknown labels are an error."""
        y = np.asarray(y).ravel()
        code = np.searchsorted(self.classes_, y)
        code = np.clip(code, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[code], y):
            unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"y_val has labels {unknown} not seen in training")
        return code.astype(np.intp)

    @property
    def n_classes_(self) -> int:
        check_is_fitted(self, "classes_")
        return len(self.classes_)

    def _fit(
        self,
        hp: Any,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        """Learn from float32 C-ordered ``X``, labels ``0..K-1`` and weights of mean 1
        (models that override ``_fit_rows`` instead need not implement it)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _fit nor _fit_rows")

    # -- prediction ---------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Shape (n, K), one column per ``classes_`` entry, rows summing to 1."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        return self._predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each event (for two classes: score >= 0.5 is signal)."""
        proba = self.predict_proba(X)  # first: an unfitted model raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]

    @abc.abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for checked float32 features."""

    # -- persistence --------------------------------------------------------------------
    @abc.abstractmethod
    def _save_model(self, directory: Path) -> None:
        """Write the fitted model's own files into ``directory``."""

    @abc.abstractmethod
    def _load_model(self, directory: Path) -> None:
        """Restore the fitted state written by ``_save_model``."""

    def save(self, directory: Path | str) -> None:
        """Write a self-contained folder: the model files plus ``model.json``."""
        check_is_fitted(self)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_model(directory)
        importances = getattr(self, "feature_importances_", None)
        meta = {
            "name": self.name,
            "params": self.get_params(),
            "classes": self.classes_.tolist(),
            "n_features_in": int(self.n_features_in_),
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
        params = dict(meta["params"])
        if "seed" in meta:  # saved before the estimator contract: seed stood beside params
            params.setdefault("seed", meta["seed"])
        model = cls(**params)
        # two-class models saved before the contract carry neither field
        model.classes_ = np.asarray(meta.get("classes", [0, 1]))
        if "n_features_in" in meta:
            model.n_features_in_ = meta["n_features_in"]
        model.device_ = meta["device"]
        model.history_ = meta["history"]
        if meta["feature_importances"] is not None:
            model.feature_importances_ = np.asarray(meta["feature_importances"])
        model._load_model(directory)
        return model


def read_meta(directory: Path) -> dict[str, Any]:
    """Read ``model.json`` of a saved model folder."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ConfigError(f"{directory} is not a saved hepclf model: {META_FILE} is missing.")
    return json.loads(path.read_text())
