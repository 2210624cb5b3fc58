"""Linear baselines: the Fisher discriminant (TMVA's Fisher, i.e. LDA) or logistic regression.

Both give one linear function per class; for two classes scikit-learn's convention holds
(``coef_`` has one row, the signal-versus-background log-odds), for K > 2 classes there is
one row per class and probabilities are their softmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from hepclf.models.base import Classifier


class LinearParams(BaseModel):
    """``fisher`` needs no tuning; ``C`` only applies to ``logistic``."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["fisher", "logistic"] = "fisher"
    C: float = Field(1.0, gt=0, description="logistic: inverse L2 regularisation strength")


def fisher(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Fisher/LDA: ``coef`` (K', F) and ``intercept`` (K',) as scikit-learn's LDA.

    For K classes with weighted means mu_k and pooled within-class covariance S, class k's
    discriminant is x.S^-1 mu_k - mu_k.S^-1 mu_k / 2 + log prior_k; for two classes the
    difference signal - background is kept. Written out because scikit-learn's
    LinearDiscriminantAnalysis ignores event weights. S gets a tiny ridge so constant inputs
    do not fail.
    """
    X = X.astype(np.float64)
    n_classes = int(y.max()) + 1
    totals = np.bincount(y, weights=w, minlength=n_classes)
    means = np.stack([w[y == k] @ X[y == k] / totals[k] for k in range(n_classes)])
    centred = X - means[y]
    cov = (centred * w[:, None]).T @ centred / totals.sum()
    cov += 1e-9 * np.trace(cov) / len(cov) * np.eye(len(cov))
    coef = np.linalg.solve(cov, means.T).T
    intercept = -0.5 * np.einsum("kf,kf->k", coef, means) + np.log(totals / totals.sum())
    if n_classes == 2:
        return coef[1:] - coef[:1], intercept[1:] - intercept[:1]
    return coef, intercept


class Linear(Classifier):
    """Score = sigmoid(x.coef_ + intercept_) for two classes, softmax over classes otherwise.

    Fitted attributes: ``coef_`` (1, F) for two classes or (K, F), ``intercept_``,
    ``feature_importances_`` (|coef| times the input spread, normalised).
    """

    name = "linear"
    importance_type = "share of |coefficient| x input std"
    Params = LinearParams

    def __init__(self, *, method: str = "fisher", C: float = 1.0, seed: int = 42) -> None:
        self.method = method
        self.C = C
        self.seed = seed

    def _uses_signed_weights(self, hp: Any) -> bool:
        """Fisher's means and covariance are weighted sums: negative MC weights enter as
        they are (as in TMVA); logistic regression's loss is not bounded below with them."""
        return hp.method == "fisher"

    def _fit(
        self,
        hp: Any,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        if hp.method == "fisher":
            self.coef_, self.intercept_ = fisher(X, y, w)
        else:
            model = LogisticRegression(C=hp.C, max_iter=1000)
            model.fit(X.astype(np.float64), y, sample_weight=w)
            self.coef_, self.intercept_ = model.coef_, model.intercept_
        # softmax is unchanged by a shift common to all classes: measure the spread around it
        centred = self.coef_ - self.coef_.mean(axis=0) if len(self.coef_) > 1 else self.coef_
        spread = np.abs(centred).sum(axis=0) * X.std(axis=0)
        self.feature_importances_ = spread / spread.sum() if spread.sum() > 0 else spread

    def decision_function(self, X: Any) -> np.ndarray:
        """The linear functions: (n,) log-odds for two classes, (n, K) otherwise."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        scores = X.astype(np.float64) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        scores = X.astype(np.float64) @ self.coef_.T + self.intercept_
        if scores.shape[1] == 1:
            signal = expit(scores[:, 0])
            return np.column_stack([1.0 - signal, signal])
        return softmax(scores, axis=1)

    def _save_model(self, directory: Path) -> None:
        np.savez(directory / "linear.npz", coef=self.coef_, intercept=self.intercept_)

    def _load_model(self, directory: Path) -> None:
        with np.load(directory / "linear.npz") as saved:
            # two-class models saved before the contract held a flat coef and a scalar
            self.coef_ = np.atleast_2d(saved["coef"])
            self.intercept_ = np.atleast_1d(saved["intercept"])
