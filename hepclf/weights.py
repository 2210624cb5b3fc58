"""Training weights from physical event weights: negative-weight policy and class balance."""

from __future__ import annotations

import numpy as np


def training_weights(
    label: np.ndarray, weight: np.ndarray, class_balance: str, negative_weights: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and their weights.

    ``negative_weights``: ``keep`` as they are, ``abs`` use |w|, ``drop`` leave those events
    out of training (as TMVA's IgnoreNegWeightsInTraining); evaluation always uses the
    physical weights. ``equal_weight`` rescales so both classes have the same sum of weights,
    with a mean weight of one overall.
    """
    keep = np.ones(len(weight), dtype=bool)
    w = np.asarray(weight, np.float64).copy()
    if negative_weights == "abs":
        w = np.abs(w)
    elif negative_weights == "drop":
        keep = w >= 0
    if class_balance == "equal_weight":
        for cls in (0, 1):
            rows = keep & (label == cls)
            total = w[rows].sum()
            if total > 0:
                w[rows] *= 0.5 * keep.sum() / total
    return np.flatnonzero(keep), w[keep]
