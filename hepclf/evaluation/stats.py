"""Weighted summary statistics used by the metrics and the plots."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import as_weights


def effective_entries(weight: ArrayLike) -> float:
    """Kish's effective sample size (Σw)²/Σw²: the unweighted count with the same precision.

    Negative weights enter Σw with their sign and Σw² as positive, so they lower the
    effective size, as they should.
    """
    w = np.asarray(weight, dtype=np.float64)
    return float(w.sum() ** 2 / np.dot(w, w))


def weighted_correlation(x: ArrayLike, weight: ArrayLike | None = None) -> np.ndarray:
    """Pearson correlation matrix of the columns of ``x`` with event weights.

    Unlike ``np.cov(aweights=...)`` this accepts negative weights (total must be positive).
    Constant columns give NaN rows and columns; values are clipped to [-1, 1].
    """
    data = np.asarray(x, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"x must be 2-D (events × features), got shape {data.shape}")
    w = as_weights(weight, data.shape[0])
    total = w.sum()
    if not total > 0:
        raise ValueError(f"the total weight is {total:g}; a correlation needs a positive one")
    centred = data - (w @ data) / total
    cov = centred.T @ (centred * w[:, None]) / total
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    return np.clip(corr, -1.0, 1.0)
