"""Linear baselines: the Fisher discriminant (TMVA's Fisher) or logistic regression."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from hepclf.models.base import Classifier, check_inputs, two_columns


class LinearParams(BaseModel):
    """``fisher`` needs no tuning; ``C`` only applies to ``logistic``."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["fisher", "logistic"] = "fisher"
    C: float = Field(1.0, gt=0, description="logistic: inverse L2 regularisation strength")


def fisher(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted Fisher/LDA: coefficients and intercept of log P(s|x)/P(b|x).

    Written out because scikit-learn's LinearDiscriminantAnalysis ignores event weights.
    The pooled within-class covariance gets a tiny ridge so constant inputs do not fail.
    """
    X = X.astype(np.float64)
    signal = y == 1
    w_s, w_b = w[signal].sum(), w[~signal].sum()
    mu_s = w[signal] @ X[signal] / w_s
    mu_b = w[~signal] @ X[~signal] / w_b
    centred = X - np.where(signal[:, None], mu_s, mu_b)
    cov = (centred * w[:, None]).T @ centred / (w_s + w_b)
    cov += 1e-9 * np.trace(cov) / len(cov) * np.eye(len(cov))
    coef = np.linalg.solve(cov, mu_s - mu_b)
    return coef, float(-0.5 * coef @ (mu_s + mu_b) + np.log(w_s / w_b))


class Linear(Classifier):
    """Score = sigmoid(coef . x + intercept); importances are |coef| times the input spread."""

    name = "linear"
    Params = LinearParams
    hp: LinearParams

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
        w = np.ones(len(X)) if w is None else w
        if self.hp.method == "fisher":
            self._coef, self._intercept = fisher(X, y, w)
        else:
            model = LogisticRegression(C=self.hp.C, max_iter=1000).fit(X, y, sample_weight=w)
            self._coef, self._intercept = model.coef_[0], float(model.intercept_[0])
        spread = np.abs(self._coef) * X.std(axis=0)
        self.feature_importances_ = spread / spread.sum() if spread.sum() > 0 else spread
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return two_columns(expit(check_inputs(X)[0] @ self._coef + self._intercept))

    def _save_model(self, directory: Path) -> None:
        np.savez(directory / "linear.npz", coef=self._coef, intercept=self._intercept)

    def _load_model(self, directory: Path) -> None:
        with np.load(directory / "linear.npz") as saved:
            self._coef, self._intercept = saved["coef"], float(saved["intercept"])
