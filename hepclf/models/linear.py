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
from hepclf.models.rows import Rows


class LinearParams(BaseModel):
    """``fisher`` needs no tuning; ``C`` only applies to ``logistic``."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["fisher", "logistic"] = "fisher"
    C: float = Field(1.0, gt=0, description="logistic: inverse L2 regularisation strength")


def fisher(train: Rows, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Fisher/LDA: ``coef`` (K', F) and ``intercept`` (K',) as scikit-learn's LDA,
    plus the (unweighted) standard deviation of each input.

    Written out because scikit-learn's LinearDiscriminantAnalysis ignores event weights. The
    sums it needs (weight, weighted sum and scatter per class) are accumulated block by block
    of the rows, so the training events are never held as one array; they are taken about
    the first block's mean, which keeps them as accurate as centring the whole sample.
    """
    n_features = train.n_features
    totals = np.zeros(n_classes)
    sums = np.zeros((n_classes, n_features))
    scatter = np.zeros((n_features, n_features))
    plain_sum, plain_squares = np.zeros(n_features), np.zeros(n_features)
    shift: np.ndarray | None = None
    assert train.w is not None
    for rows, block in train.blocks():
        x = block.astype(np.float64)
        if shift is None:
            shift = x.mean(axis=0)
        x -= shift
        y, w = train.y[rows], train.w[rows]
        for k in range(n_classes):
            xk, wk = x[y == k], w[y == k]
            totals[k] += wk.sum()
            sums[k] += wk @ xk
            scatter += (xk * wk[:, None]).T @ xk
        plain_sum += x.sum(axis=0)
        plain_squares += np.einsum("ij,ij->j", x, x)
    assert shift is not None
    centred_means = sums / totals[:, None]
    within = scatter - (centred_means * totals[:, None]).T @ centred_means
    coef, intercept = fisher_from_statistics(totals, centred_means + shift, within)
    n = len(train)
    std = np.sqrt(np.maximum(plain_squares / n - (plain_sum / n) ** 2, 0.0))
    return coef, intercept, std


def fisher_from_statistics(
    totals: np.ndarray, means: np.ndarray, scatter: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher/LDA from its sufficient statistics: class weight sums (K,), weighted class
    means (K, F) and the within-class scatter sum_i w_i (x_i - mu_y)(x_i - mu_y)^T (F, F).

    For K classes with pooled within-class covariance S, class k's discriminant is
    x.S^-1 mu_k - mu_k.S^-1 mu_k / 2 + log prior_k; for two classes the difference signal -
    background is kept. Sums over parts of the data add up to these exactly, so a cluster
    computes them per partition (``hepclf.cluster.fisher``) and never gathers the events.
    S gets a tiny ridge so constant inputs do not fail.
    """
    cov = scatter / totals.sum()
    cov += 1e-9 * np.trace(cov) / len(cov) * np.eye(len(cov))
    coef = np.linalg.solve(cov, means.T).T
    intercept = -0.5 * np.einsum("kf,kf->k", coef, means) + np.log(totals / totals.sum())
    if len(totals) == 2:
        return coef[1:] - coef[:1], intercept[1:] - intercept[:1]
    return coef, intercept


class Linear(Classifier):
    """Score = sigmoid(x.coef_ + intercept_) for two classes, softmax over classes otherwise.

    Fitted attributes: ``coef_`` (1, F) for two classes or (K, F), ``intercept_``,
    ``feature_importances_`` (|coef| times the input spread, normalised).
    """

    name = "linear"
    Params = LinearParams

    def __init__(self, *, method: str = "fisher", C: float = 1.0, seed: int = 42) -> None:
        self.method = method
        self.C = C
        self.seed = seed

    def _uses_signed_weights(self, hp: Any) -> bool:
        """Fisher's means and covariance are weighted sums: negative MC weights enter as
        they are (as in TMVA); logistic regression's loss is not bounded below with them."""
        return hp.method == "fisher"

    def _fit_rows(self, hp: Any, train: Rows, val: Rows | None) -> None:
        if hp.method == "fisher":  # from sums over blocks: no copy of the events
            coef, intercept, std = fisher(train, len(self.classes_))
        else:
            X = train.array()
            model = LogisticRegression(C=hp.C, max_iter=1000)
            model.fit(X.astype(np.float64), train.y, sample_weight=train.w)
            coef, intercept, std = model.coef_, model.intercept_, X.std(axis=0)
        self.set_coefficients(coef, intercept, std)

    def set_coefficients(
        self, coef: np.ndarray, intercept: np.ndarray, feature_std: np.ndarray
    ) -> None:
        """Adopt fitted linear functions (here or from a cluster's statistics);
        ``feature_std``, the training inputs' spread, weighs the importances."""
        self.coef_, self.intercept_ = coef, intercept
        # softmax is unchanged by a shift common to all classes: measure the spread around it
        centred = coef - coef.mean(axis=0) if len(coef) > 1 else coef
        spread = np.abs(centred).sum(axis=0) * feature_std
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
