"""A fitted model's scores of rows of the table, block by block (as float32)."""

from __future__ import annotations

import numpy as np

from hepclf.models.base import Classifier
from hepclf.models.rows import Rows


def model_scores(model: Classifier, rows: Rows | np.ndarray) -> np.ndarray:
    """The float32 signal score (n,) of a two-class model, the (n, K) probabilities
    otherwise, of ``rows`` scored block by block (no normalised copy of them); an array is
    taken as model inputs already (a partition read on a worker)."""
    if isinstance(rows, np.ndarray):
        rows = Rows.of(rows, np.zeros(len(rows), np.intp))
    scores: np.ndarray | None = None
    for positions, X in rows.blocks():
        block = scores_of(model.predict_proba(X))
        if scores is None:
            scores = np.empty((len(rows), *block.shape[1:]), dtype=np.float32)
        scores[positions] = block
    assert scores is not None, "no events to score"
    return scores


def scores_of(proba: np.ndarray) -> np.ndarray:
    """The signal score (n,) from two-class probabilities; (n, K) probabilities as they are."""
    return proba[:, 1] if proba.shape[1] == 2 else proba
