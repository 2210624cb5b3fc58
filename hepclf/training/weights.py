"""Training weights from physical event weights: negative-weight policy and class balance;
and expected yields: what an evaluated event stands for (evaluation and physics result)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hepclf.runtime.errors import InputDataError


def training_weights(
    label: np.ndarray, weight: np.ndarray, class_balance: str, negative_weights: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and their weights.

    ``negative_weights``: ``keep`` hands them on signed (models that can use them do,
    the others train on |w|: :func:`negative_weights_note`), ``abs`` use |w|, ``drop``
    leave those events out of training (as TMVA's IgnoreNegWeightsInTraining); evaluation
    always uses the physical weights. ``equal_weight`` rescales so every class present has
    the same sum of weights (a rare class would otherwise barely move the loss), with a
    mean weight of one overall; for two classes that is the familiar signal = background
    normalisation.
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


def negative_weights_note(count: int, models: dict[str, dict[str, Any]], seed: int) -> str:
    """What ``negative_weights: keep`` does with ``count`` negative training weights: which
    of ``models`` (name -> parameters) train on them signed and which on |w|."""
    from hepclf.models import build_model

    signed = [n for n, p in models.items() if build_model(n, p, seed=seed).keeps_signed_weights]
    unsigned = [n for n in models if n not in signed]
    parts = []
    if signed:
        verb = "trains" if len(signed) == 1 else "train"
        parts.append(f"{', '.join(signed)} {verb} on the signed weights")
    if unsigned:
        parts.append(f"{', '.join(unsigned)} on |w| (they cannot use negative weights)")
    return (
        f"note: {count:,} training/validation events have negative weights; "
        f"{'; '.join(parts)} (negative_weights: drop leaves them out); evaluation keeps signs"
    )


def require_positive_class_weights(
    label: np.ndarray,
    weight: np.ndarray,
    fold: np.ndarray,
    class_names: Sequence[str],
    setting: str,
    n_folds: int | None = None,
) -> None:
    """Every fold must give every class a positive total weight: its efficiencies, ROC and
    KS test are measured per class and are undefined otherwise (negative weights can sum
    below zero in a small fold). ``setting``: the YAML key that sets the folds."""
    n_folds = int(fold.max(initial=-1)) + 1 if n_folds is None else n_folds
    n_classes = len(class_names)
    totals = np.zeros((n_folds, n_classes))
    np.add.at(totals, (fold, label), weight)
    bad = np.argwhere(~(totals > 0))
    if len(bad):
        k, c = (int(v) for v in bad[0])
        raise InputDataError(
            f"{setting}: fold {k} of {n_folds} gives class {class_names[c]!r} a total weight "
            f"of {totals[k, c]:.4g} ({'negative weights' if totals[k, c] < 0 else 'no events'}; "
            f"{len(bad)} fold/class pairs in all), so "
            f"its ROC and KS test are undefined; use fewer folds ({setting}) or more events "
            "(evaluation keeps the weights' signs whatever negative_weights says)"
        )


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
