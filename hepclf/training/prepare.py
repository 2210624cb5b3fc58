"""Split and normalise once: the rows every model of the zoo trains and is evaluated on.

The normaliser is fitted on the training rows only and the training weights (class
balance, negative-weight policy) are derived here, so that every model, fold and tuning
trial sees the same prepared data. Nothing here copies the features: the parts are index
arrays into the table (:class:`~hepclf.models.rows.Rows`), normalised block by block as a
model reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.ingest import FeatureTable
from hepclf.models.rows import Rows, joined
from hepclf.training.normalize import Normalizer
from hepclf.training.split import SplitIndices, split_table
from hepclf.training.weights import training_weights


@dataclass
class PreparedData:
    """Everything the zoo trains and is evaluated on, prepared once for all models.

    ``fit`` and ``validation`` are the training rows (those the weight policy keeps) with
    their labels and training weights.
    """

    table: FeatureTable
    split: SplitIndices
    normalizer: Normalizer
    fit: Rows
    validation: Rows

    def rows(self, name: str) -> Rows:
        """The rows of 'train' or 'test' with their labels and physical weights (to score)."""
        index = getattr(self.split, name)
        table = self.table
        return Rows(
            table.X, index, table.label[index], table.weight[index], self.normalizer.transform
        )

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised features (a copy), labels and physical weights of 'train' or 'test'."""
        rows = self.rows(name)
        assert rows.w is not None
        return rows.array(), rows.y, rows.w

    def labels_and_weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels and physical weights of 'train' or 'test' (what plots and metrics need)."""
        rows = getattr(self.split, name)
        return self.table.label[rows], self.table.weight[rows]

    def fit_and_validation(self) -> Rows:
        """The fit then the validation rows as one: for models without early stopping."""
        return joined(self.fit, self.validation)

    @property
    def negative_weights(self) -> int:
        """Training and validation events with negative weight (they train as |w|)."""
        return int(sum((rows.w < 0).sum() for rows in (self.fit, self.validation)))


def training_rows(
    table: FeatureTable, rows: np.ndarray, config: PipelineConfig, normalizer: Normalizer
) -> Rows:
    """``rows`` of the table to train on: the weight policy applied, training weights set."""
    keep, w = training_weights(
        table.label[rows], table.weight[rows], config.class_balance, config.negative_weights
    )
    kept = rows[keep]
    return Rows(table.X, kept, table.label[kept], w, normalizer.transform)


def prepare(config: PipelineConfig, table: FeatureTable) -> PreparedData:
    """Split, fit the normaliser on training rows only, and derive training weights."""
    split = split_table(table, config.split, use_event_id=config.event_id is not None)
    normalizer = Normalizer.fit(table.X, config.normalization, rows=split.train)
    fit = training_rows(table, split.train, config, normalizer)
    validation = training_rows(table, split.validation, config, normalizer)
    return PreparedData(table, split, normalizer, fit, validation)
