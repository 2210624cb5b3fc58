"""Split and normalise once: the rows every model of the zoo trains and is evaluated on.

The normaliser is fitted on the training rows only and the training weights (class
balance, negative-weight policy) are derived here, so that every model, fold and tuning
trial sees the same prepared data. Rows are kept as indices into the table: a fit reads
and normalises only the rows it trains on (:mod:`hepclf.training.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.ingest import FeatureTable
from hepclf.models.rows import Rows
from hepclf.training.normalize import Normalizer
from hepclf.training.plan import FitRows, TableSource
from hepclf.training.split import SplitIndices, pipeline_split
from hepclf.training.weights import training_weights


@dataclass
class PreparedData:
    """Everything the zoo trains and is evaluated on, prepared once for all models."""

    table: FeatureTable
    split: SplitIndices
    normalizer: Normalizer
    fit_rows: FitRows
    """The training rows that train (indices into the table) with their training weights."""
    validation_rows: FitRows
    """The validation rows (early stopping) with their training weights."""

    @property
    def source(self) -> TableSource:
        """Where fit tasks read rows: the table's features, normalised as they are read."""
        return TableSource(self.table.X, self.table.label, self.normalizer)

    # the fitting and validation arrays, built on access (fits read their rows themselves)
    @property
    def X_fit(self) -> np.ndarray:
        return self.source.features(self.fit_rows.rows)

    @property
    def y_fit(self) -> np.ndarray:
        return self.table.label[self.fit_rows.rows]

    @property
    def w_fit(self) -> np.ndarray:
        assert self.fit_rows.weight is not None
        return self.fit_rows.weight

    @property
    def X_val(self) -> np.ndarray:
        return self.source.features(self.validation_rows.rows)

    @property
    def y_val(self) -> np.ndarray:
        return self.table.label[self.validation_rows.rows]

    @property
    def w_val(self) -> np.ndarray:
        assert self.validation_rows.weight is not None
        return self.validation_rows.weight

    def rows(self, name: str) -> Rows:
        """The rows of 'train' or 'test' with their labels and physical weights, normalised
        block by block as they are read (to score them without a normalised copy)."""
        index = getattr(self.split, name)
        table = self.table
        return Rows(
            table.X, index, table.label[index], table.weight[index], self.normalizer.transform
        )

    def labels_and_weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels and physical weights of 'train' or 'test' (what plots and metrics need)."""
        rows = getattr(self.split, name)
        return self.table.label[rows], self.table.weight[rows]

    @property
    def negative_weights(self) -> int:
        """Training and validation events with negative weight (``negative_weights: keep``)."""
        return int((self.w_fit < 0).sum() + (self.w_val < 0).sum())


def prepare(config: PipelineConfig, table: FeatureTable) -> PreparedData:
    """Split, fit the normaliser on training rows only, and derive training weights."""
    split = pipeline_split(config, table)
    normalizer = Normalizer.fit(table.X, config.normalization, rows=split.train)
    fit_rows = weighted_rows(table, split.train, config)
    validation_rows = weighted_rows(table, split.validation, config)
    return PreparedData(table, split, normalizer, fit_rows, validation_rows)


def weighted_rows(table: FeatureTable, rows: np.ndarray, config: PipelineConfig) -> FitRows:
    """The rows of ``rows`` that train, with their training weights (class balance and the
    negative-weight policy derived over these rows alone, as TMVA does per sub-method)."""
    keep, w = training_weights(
        table.label[rows], table.weight[rows], config.class_balance, config.negative_weights
    )
    return FitRows(rows[keep], w)
