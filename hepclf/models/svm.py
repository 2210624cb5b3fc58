"""RBF support vector machine with Platt-calibrated, one-vs-rest probabilities.

Design (issue 13): an exact kernel SVM keeps most training events as support vectors
(~12.7k of 20k on HIGGS-like data), so every prediction evaluates ~12k kernels and runs at
~2k events/s. By default (``approximate: true``) the RBF kernel is replaced by a Nystroem
approximation on ``n_components`` landmark events and a linear SVM (hinge loss, same ``C``)
is trained on those kernel features; the Nystroem normalisation is folded into the linear
weights, so a prediction is one kernel row of ``n_components`` exponentials and a dot
product. Measured on 20k + 20k HIGGS-like events (28 features, C=1, gamma='scale'),
prediction per CPU-second (one core; two threads use both cores of a 2-core machine):

======================  ========  ==================
design                  test AUC  prediction
======================  ========  ==================
exact SVC (12.4k SV)    0.8295    ~2k events/s
Nystroem 1000 + linear  0.8249    ~0.3M events/s
Nystroem 1500 + linear  0.8266    ~0.2M events/s
Nystroem 2000 + linear  0.8277    ~0.15M events/s
k-means 1500 + linear   0.8278    ~0.18M events/s
======================  ========  ==================

(with the former C=0.5, gamma=0.01, a wider kernel, 1000 landmarks already came within
0.0012 of the exact SVC). The default, 1500 landmarks placed by k-means (the last row),
costs 0.0017 AUC (goal: <= 0.005) for ~140x faster prediction, 0.34M events/s on two cores
(``benchmarks/svm.py``). ``approximate: false`` keeps
the exact scikit-learn SVC (two classes only; warned about when it keeps many support
vectors). Both train on at most ``max_train_events`` (a stratified, seeded subsample with a
warning above that): the exact fit scales as n^2..n^3, the approximate one needs
n x n_components x 8 bytes of memory.

Probabilities: each class's one-vs-rest decision value goes through its own Platt sigmoid,
fitted on the validation set when ``fit`` is given one (else on the training set; the
pipeline gives none, since the svm trains on the validation events too); for K > 2 the
sigmoids are normalised to sum to 1, as scikit-learn's ``CalibratedClassifierCV`` does.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from hepclf.models.base import Classifier
from hepclf.models.rows import Rows, capped

# rows per kernel block in prediction: (block x n_components) doubles stay in cache
PREDICT_BLOCK = 1024
# prediction threads, each on its own share of the events
PREDICT_THREADS = min(2, os.cpu_count() or 1)
# exact SVC: warn above this many support vectors (prediction then runs at < ~10k events/s)
SUPPORT_VECTOR_WARNING = 5000


class SVMParams(BaseModel):
    """scikit-learn's own defaults, C=1 and gamma='scale' (1/(n_features·Var(X)), i.e.
    1/n_features for standardised inputs): a rule that follows the number of inputs, where
    the former fixed gamma=0.01 lost 0.02 AUC on 4 inputs (TMVA example) and 0.007 on 28
    (docs/defaults-study.md). The train scores separate a little more than the test ones, so the
    KS check may flag it on 10^4 events; compare out-of-fold (``split: {method: kfold}``)."""

    model_config = ConfigDict(extra="forbid")

    C: float = Field(1.0, gt=0, description="inverse regularisation strength")
    gamma: Literal["scale", "auto"] | float = Field(
        "scale", description="RBF kernel width; 'scale' = 1/(n_features·Var(X))"
    )
    max_train_events: int = Field(
        20_000, ge=100, description="train on a stratified subsample above this many events"
    )
    approximate: bool = Field(
        True,
        description="Nystroem kernel features + linear SVM (fast prediction); "
        "false: exact SVC (two classes, ~2k events/s prediction)",
    )
    n_components: int = Field(1500, ge=1, description="Nystroem kernel features")
    landmarks: Literal["kmeans", "random"] = Field(
        "kmeans",
        description="Nystroem landmarks: k-means centres of the training events, or a random "
        "draw of them",
    )
    max_iter: int = Field(
        5000, ge=1, description="approximate: iterations of the linear SVM (liblinear)"
    )


class SVM(Classifier):
    """RBF SVM; fitted attributes ``svm_`` (a scikit-learn ``SVC``, or a ``Pipeline`` of
    ``Nystroem`` and ``LinearSVC``), ``gamma_`` (the kernel width used), ``platt_coef_`` and
    ``platt_intercept_`` (one Platt sigmoid per one-vs-rest decision column: P = sigmoid(a d +
    b)), ``n_iter_`` (the solver's iterations, compare ``max_iter``) and for the exact SVM
    ``support_vectors_``. No feature importances."""

    name = "svm"
    Params = SVMParams

    def __init__(
        self,
        *,
        C: float = 1.0,
        gamma: str | float = "scale",
        max_train_events: int = 20_000,
        approximate: bool = True,
        n_components: int = 1500,
        landmarks: str = "kmeans",
        max_iter: int = 5000,
        seed: int = 42,
    ) -> None:
        self.C = C
        self.gamma = gamma
        self.max_train_events = max_train_events
        self.approximate = approximate
        self.n_components = n_components
        self.landmarks = landmarks
        self.max_iter = max_iter
        self.seed = seed

    def _fit_rows(self, hp: Any, train: Rows, val: Rows | None) -> None:
        n_classes = len(self.classes_)
        if not hp.approximate and n_classes > 2:
            raise ValueError(
                f"svm: the exact SVM (approximate: false) supports two classes, y has "
                f"{n_classes}; use approximate: true for one-vs-rest multi-class probabilities."
            )
        subsample = capped(train, hp.max_train_events, self.name, self.seed)
        X_fit, y_fit, w_fit = subsample.array(), subsample.y, subsample.w
        self.gamma_ = self._resolve_gamma(hp.gamma, X_fit)
        if hp.approximate:
            # one BLAS thread (as in prediction): the SVD of 1000 landmarks took 0.5 s alone
            # but 2-11 s with two BLAS threads on a loaded 2-core machine
            with threadpool_limits(1, user_api="blas"):
                self.svm_ = self._fit_approximate(hp, X_fit.astype(np.float64), y_fit, w_fit)
            self.n_iter_ = int(np.max(self.svm_.named_steps["linearsvc"].n_iter_))
        else:
            self.svm_ = SVC(C=hp.C, gamma=self.gamma_, kernel="rbf", random_state=self.seed)
            self.svm_.fit(X_fit, y_fit, sample_weight=w_fit)
            self.n_iter_ = int(np.max(self.svm_.n_iter_))
            self.support_vectors_ = self.svm_.support_vectors_
            if len(self.support_vectors_) > SUPPORT_VECTOR_WARNING:
                warnings.warn(
                    f"svm: the exact SVM keeps {len(self.support_vectors_)} support vectors, "
                    "so prediction evaluates as many kernels per event (a few thousand "
                    "events/s); approximate: true predicts ~100x faster.",
                    stacklevel=3,
                )
        calibration = val if val is not None else train
        decision = np.concatenate([self._decision(x) for _, x in calibration.blocks()])
        y_cal, w_cal = calibration.y, calibration.w
        coefs, intercepts = [], []
        for k in range(decision.shape[1]):
            target = y_cal == (k if decision.shape[1] > 1 else 1)
            if target.all() or not target.any():  # nothing to calibrate against
                coefs.append(1.0)
                intercepts.append(0.0)
                continue
            platt = LogisticRegression(C=1e6).fit(
                decision[:, k : k + 1], target, sample_weight=w_cal
            )
            coefs.append(float(platt.coef_[0, 0]))
            intercepts.append(float(platt.intercept_[0]))
        self.platt_coef_ = np.asarray(coefs)
        self.platt_intercept_ = np.asarray(intercepts)

    def _fit_approximate(
        self, hp: SVMParams, X: np.ndarray, y: np.ndarray, w: np.ndarray
    ) -> Pipeline:
        """Nystroem features on ``n_components`` landmarks, then a hinge-loss linear SVM.

        Landmarks ``kmeans`` are the centres of a mini-batch k-means of the training events
        (Zhang et al., ICML 2008; unweighted, as negative MC weights have no meaning for
        where events lie): they cover the data where a random draw crowds its core, and came
        up to 0.002 AUC closer to the exact SVC at the same prediction cost
        (docs/defaults-study.md).
        """
        components = min(hp.n_components, len(X))  # never more landmarks than events
        nystroem = Nystroem(gamma=self.gamma_, n_components=components, random_state=self.seed)
        if hp.landmarks == "kmeans" and components < len(X):
            kmeans = MiniBatchKMeans(
                components, batch_size=4096, n_init=1, random_state=self.seed
            ).fit(X)
            nystroem.fit(kmeans.cluster_centers_)  # every centre is a landmark
        else:
            nystroem.fit(X)
        linear = LinearSVC(C=hp.C, loss="hinge", max_iter=hp.max_iter, random_state=self.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            linear.fit(nystroem.transform(X), y, sample_weight=w)
        for warning in caught:  # liblinear's own words name neither the model nor the fix
            if issubclass(warning.category, ConvergenceWarning):
                warnings.warn(
                    f"svm: the linear SVM did not converge in max_iter={hp.max_iter} "
                    "iterations; its scores may be a little off. Raise models.svm.max_iter "
                    "or lower C.",
                    stacklevel=4,
                )
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        return Pipeline([("nystroem", nystroem), ("linearsvc", linear)])

    @staticmethod
    def _resolve_gamma(gamma: str | float, X: np.ndarray) -> float:
        """scikit-learn's meaning of 'scale'/'auto', which Nystroem does not understand."""
        if gamma == "scale":
            variance = float(X.astype(np.float64).var())
            return 1.0 / (X.shape[1] * variance) if variance > 0 else 1.0
        return 1.0 / X.shape[1] if gamma == "auto" else float(gamma)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        """One-vs-rest decision values, shape (n, 1) for two classes, (n, K) otherwise."""
        if isinstance(self.svm_, SVC):
            return self.svm_.decision_function(X).reshape(len(X), -1)
        nystroem = self.svm_.named_steps["nystroem"]
        linear = self.svm_.named_steps["linearsvc"]
        # Nystroem features are K(x, landmarks) @ normalization_.T: fold that matrix into
        # the linear weights once, then each block costs one kernel row per event
        # in double precision: the folded weights are large and cancel each other
        landmarks = nystroem.components_.astype(np.float64)
        weights = nystroem.normalization_.T @ linear.coef_.T
        norms = (landmarks**2).sum(axis=1)
        out = np.empty((len(X), weights.shape[1]), dtype=np.float64)
        # one BLAS thread per worker: these products are too small to gain from BLAS threads,
        # and on a busy machine BLAS threads waiting on each other made prediction up to 10x
        # slower; independent halves in Python threads (NumPy releases the GIL) use the cores
        workers = min(PREDICT_THREADS, -(-len(X) // PREDICT_BLOCK))
        edges = np.linspace(0, len(X), workers + 1).astype(int)

        def share(start: int, stop: int) -> None:
            self._kernel_blocks(
                X[start:stop], landmarks, norms, nystroem.gamma, weights, out[start:stop]
            )

        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(share, edges[:-1], edges[1:]))
        return out + linear.intercept_

    @staticmethod
    def _kernel_blocks(
        X: np.ndarray,
        landmarks: np.ndarray,
        norms: np.ndarray,
        gamma: float,
        weights: np.ndarray,
        out: np.ndarray,
    ) -> None:
        """out = exp(-gamma |x - landmark|^2) @ weights, block by block."""
        for start in range(0, len(X), PREDICT_BLOCK):
            x = X[start : start + PREDICT_BLOCK].astype(np.float64)
            d2 = x @ landmarks.T
            d2 *= -2.0
            d2 += norms
            d2 += np.einsum("ij,ij->i", x, x)[:, None]
            np.maximum(d2, 0.0, out=d2)  # rounding can make |x - c|^2 slightly < 0
            d2 *= -gamma
            np.exp(d2, out=d2)
            out[start : start + len(x)] = d2 @ weights

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated one-vs-rest log-odds a * margin + b: (n,) for two classes, else (n, K).

        Their sign (two classes) or argmax agrees with ``predict``; the raw margins are
        ``svm_.decision_function``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        logit = self._logit(X)
        return logit[:, 0] if logit.shape[1] == 1 else logit

    def _logit(self, X: np.ndarray) -> np.ndarray:
        return self._decision(X) * self.platt_coef_ + self.platt_intercept_

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        proba = expit(self._logit(X))
        if proba.shape[1] == 1:
            return np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
        total = proba.sum(axis=1, keepdims=True)
        return np.divide(proba, total, out=np.full_like(proba, 1 / proba.shape[1]), where=total > 0)

    def _save_model(self, directory: Path) -> None:
        joblib.dump(
            {
                "svm": self.svm_,
                "gamma": self.gamma_,
                "platt_coef": self.platt_coef_,
                "platt_intercept": self.platt_intercept_,
            },
            directory / "svm.joblib",
        )

    def _load_model(self, directory: Path) -> None:
        saved = joblib.load(directory / "svm.joblib")
        self.svm_, self.gamma_ = saved["svm"], saved["gamma"]
        self.platt_coef_, self.platt_intercept_ = saved["platt_coef"], saved["platt_intercept"]
        solver = self.svm_ if isinstance(self.svm_, SVC) else self.svm_.named_steps["linearsvc"]
        self.n_iter_ = int(np.max(solver.n_iter_))
        if isinstance(self.svm_, SVC):
            self.support_vectors_ = self.svm_.support_vectors_
