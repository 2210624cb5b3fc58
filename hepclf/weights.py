"""Training weights from physical event weights: negative-weight policy and class balance;
and expected yields: what an evaluated event stands for (evaluation and physics result)."""

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


def evaluated_fractions(
    sample_all: np.ndarray, rows: np.ndarray | None, n_samples: int
) -> np.ndarray:
    """Per sample: evaluated events / all events (``rows=None``: all, out-of-fold scores)."""
    total = np.bincount(sample_all, minlength=n_samples).astype(np.float64)
    if rows is None:
        return np.ones(n_samples)
    evaluated = np.bincount(sample_all[rows], minlength=n_samples).astype(np.float64)
    return np.divide(evaluated, total, out=np.zeros(n_samples), where=total > 0)


def expected_yields(
    weight: np.ndarray, sample: np.ndarray, fractions: np.ndarray, luminosity: float
) -> np.ndarray:
    """Expected events per evaluated event: weight × luminosity ÷ evaluated fraction."""
    fraction = fractions[sample]
    return np.asarray(weight, np.float64) * luminosity / np.where(fraction > 0, fraction, 1.0)
