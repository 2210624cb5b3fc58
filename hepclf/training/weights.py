"""Training weights from physical event weights: negative-weight policy and class balance."""

from __future__ import annotations

import numpy as np


def training_weights(
    label: np.ndarray, weight: np.ndarray, class_balance: str, negative_weights: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and their weights.

    ``negative_weights``: ``keep`` as they are, ``abs`` use |w|, ``drop`` leave those events
    out of training (as TMVA's IgnoreNegWeightsInTraining); evaluation always uses the
    physical weights. ``equal_weight`` rescales so every class present has the same sum of
    weights (a rare class would otherwise barely move the loss), with a mean weight of one
    overall; for two classes that is the familiar signal = background normalisation.
    """
    keep = np.ones(len(weight), dtype=bool)
    w = np.asarray(weight, np.float64).copy()
    if negative_weights == "abs":
        w = np.abs(w)
    elif negative_weights == "drop":
        keep = w >= 0
    if class_balance == "equal_weight":
        classes = np.unique(label[keep])
        for cls in classes:
            rows = keep & (label == cls)
            total = w[rows].sum()
            if total > 0:
                w[rows] *= keep.sum() / len(classes) / total
    return np.flatnonzero(keep), w[keep]
