"""Validation shared by the metrics: fail early with a message instead of returning NaN."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_weights(weight: ArrayLike | None, n: int, what: str = "weight") -> np.ndarray:
    """Event weights as float64; ``None`` means every event counts once."""
    if weight is None:
        return np.ones(n)
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{what} has shape {w.shape}, expected ({n},) like the scores")
    if not np.isfinite(w).all():
        raise ValueError(f"{what} contains {np.count_nonzero(~np.isfinite(w))} non-finite values")
    return w


def as_scores(score: ArrayLike, what: str = "score") -> np.ndarray:
    """Classifier outputs as a finite 1-D float64 array (a NaN would silently corrupt cuts)."""
    s = np.asarray(score, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {s.shape}")
    bad = np.count_nonzero(~np.isfinite(s))
    if bad:
        raise ValueError(f"{what} contains {bad} non-finite values (NaN or inf)")
    return s


def labelled(
    y: ArrayLike, score: ArrayLike, weight: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is_signal, score, weight), checked; both classes must have a positive total weight."""
    s = as_scores(score)
    labels = np.asarray(y)
    if labels.shape != s.shape:
        raise ValueError(f"labels have shape {labels.shape}, scores have shape {s.shape}")
    is_signal = labels == 1
    if not (is_signal | (labels == 0)).all():
        raise ValueError("labels must be 0 (background) or 1 (signal)")
    w = as_weights(weight, s.size)
    for name, mask in (("signal", is_signal), ("background", ~is_signal)):
        total = w[mask].sum()
        if not total > 0:
            raise ValueError(
                f"the {name} events have a total weight of {total:g}; "
                "both classes need a positive total weight to define efficiencies"
            )
    return is_signal, s, w
