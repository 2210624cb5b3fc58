"""RBF support vector machine, with Platt-calibrated scores.

An exact kernel SVM scales as n^2..n^3 in the number of training events, so above
``max_train_events`` it trains on a stratified, seeded subsample (with a warning), or,
with ``approximate: true``, on all events through a Nystroem kernel approximation and a
linear model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal, Self

import joblib
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from hepclf.models.base import Classifier, check_inputs, two_columns


class SVMParams(BaseModel):
    """A wide kernel and soft margin: on HIGGS-like data scikit-learn's own defaults (C=1,
    gamma='scale', i.e. 1/28 for 28 standardised inputs) gain 0.01 in test AUC but give
    train scores far more separated than test ones (KS p-value ~1e-30)."""

    model_config = ConfigDict(extra="forbid")

    C: float = Field(0.5, gt=0, description="inverse regularisation strength")
    gamma: Literal["scale", "auto"] | float = Field(
        0.01, description="RBF kernel width, for standardised inputs"
    )
    max_train_events: int = Field(
        20_000, ge=100, description="exact SVM: subsample above this many events"
    )
    approximate: bool = Field(False, description="Nystroem features + linear SVM, no cap")
    n_components: int = Field(1000, ge=10, description="Nystroem kernel features")


class SVM(Classifier):
    """Scores are the SVM decision value mapped to a probability by a Platt sigmoid fitted
    on the validation set (on the training set if none is given); no importances."""

    name = "svm"
    Params = SVMParams
    hp: SVMParams

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        w_val: np.ndarray | None = None,
    ) -> Self:
        X, y, w = check_inputs(X, y, sample_weight)
        p = self.hp
        if p.approximate:
            self._svm = make_pipeline(
                Nystroem(gamma=self._gamma(X), n_components=p.n_components, random_state=self.seed),
                SGDClassifier(alpha=1 / (p.C * len(X)), random_state=self.seed),
            )
            self._svm.fit(X, y, sgdclassifier__sample_weight=w)
        else:
            if len(X) > p.max_train_events:
                warnings.warn(
                    f"svm: training on a stratified subsample of {p.max_train_events} of "
                    f"{len(X)} events (max_train_events); set approximate: true to use all.",
                    stacklevel=2,
                )
                keep, _ = train_test_split(
                    np.arange(len(X)),
                    train_size=p.max_train_events,
                    stratify=y,
                    random_state=self.seed,
                )
                X, y, w = X[keep], y[keep], None if w is None else w[keep]
            self._svm = SVC(C=p.C, gamma=p.gamma, kernel="rbf", random_state=self.seed)
            self._svm.fit(X, y, sample_weight=w)
        if X_val is not None and y_val is not None:
            X, y, w = check_inputs(X_val, y_val, w_val)
        decision = self._svm.decision_function(X).reshape(-1, 1)
        self._platt = LogisticRegression(C=1e6).fit(decision, y, sample_weight=w)
        return self

    def _gamma(self, X: np.ndarray) -> float:
        """scikit-learn's meaning of 'scale'/'auto', which Nystroem does not understand."""
        gamma = self.hp.gamma
        if gamma == "scale":
            return 1.0 / (X.shape[1] * X.var())
        return 1.0 / X.shape[1] if gamma == "auto" else gamma

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        decision = self._svm.decision_function(check_inputs(X)[0]).reshape(-1, 1)
        return two_columns(self._platt.predict_proba(decision)[:, 1])

    def _save_model(self, directory: Path) -> None:
        joblib.dump({"svm": self._svm, "platt": self._platt}, directory / "svm.joblib")

    def _load_model(self, directory: Path) -> None:
        saved = joblib.load(directory / "svm.joblib")
        self._svm, self._platt = saved["svm"], saved["platt"]
