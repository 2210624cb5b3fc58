"""Split and normalise once: the arrays every model of the zoo trains and is evaluated on.

The normaliser is fitted on the training rows only and the training weights (class
balance, negative-weight policy) are derived here, so that every model, fold and tuning
trial sees the same prepared data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.ingest import FeatureTable
from hepclf.normalize import Normalizer
from hepclf.split import SplitIndices, split_table
from hepclf.weights import training_weights


@dataclass
class PreparedData:
    """Everything the zoo trains and is evaluated on, prepared once for all models."""

    table: FeatureTable
    split: SplitIndices
    normalizer: Normalizer
    X_fit: np.ndarray
    y_fit: np.ndarray
    w_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    w_val: np.ndarray

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised features, labels and physical weights of 'train' or 'test'."""
        rows = getattr(self.split, name)
        X = self.normalizer.transform(self.table.X[rows])
        return X, self.table.label[rows], self.table.weight[rows]

    def labels_and_weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels and physical weights of 'train' or 'test' (what plots and metrics need)."""
        rows = getattr(self.split, name)
        return self.table.label[rows], self.table.weight[rows]

    def fit_and_validation(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """(X_fit, X_val), (y_fit, y_val), (w_fit, w_val): for models without early stopping."""
        return (self.X_fit, self.X_val), (self.y_fit, self.y_val), (self.w_fit, self.w_val)

    @property
    def negative_weights(self) -> int:
        """Training and validation events with negative weight (``negative_weights: keep``)."""
        return int((self.w_fit < 0).sum() + (self.w_val < 0).sum())


def prepare(config: PipelineConfig, table: FeatureTable) -> PreparedData:
    """Split, fit the normaliser on training rows only, and derive training weights."""
    split = split_table(
        table,
        config.split,
        use_event_id=config.event_id is not None,
        class_names=config.class_names,
    )
    normalizer = Normalizer.fit(table.X[split.train], config.normalization)

    def fit_arrays(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep, w = training_weights(
            table.label[rows], table.weight[rows], config.class_balance, config.negative_weights
        )
        kept = rows[keep]
        return normalizer.transform(table.X[kept]), table.label[kept], w

    X_fit, y_fit, w_fit = fit_arrays(split.train)
    X_val, y_val, w_val = fit_arrays(split.validation)
    return PreparedData(table, split, normalizer, X_fit, y_fit, w_fit, X_val, y_val, w_val)
