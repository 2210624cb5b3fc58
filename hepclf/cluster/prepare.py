"""Split and normalise a partitioned table without gathering it.

The split needs only labels and event ids, which the client holds, so it is the in-process
split itself (same rows, same seeds). The normaliser is fitted from per-partition
statistics computed on the workers: counts, sums and squared deviations (two passes, as
scikit-learn's StandardScaler computes them), minima and maxima, and for ``robust`` per-
partition quantiles merged with Dask's percentile merge (a mergeable sketch, close to but
not exactly the in-process median and quartiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.cluster.executor import DaskExecutor
from hepclf.config import PipelineConfig
from hepclf.ingest.partitions import PartitionedTable, read_features
from hepclf.training.normalize import Normalizer
from hepclf.training.plan import FitRows
from hepclf.training.prepare import weighted_rows
from hepclf.training.split import SplitIndices, pipeline_split

if TYPE_CHECKING:
    from hepclf.cluster.client import ClusterSession
    from hepclf.runtime.progress import Progress

QUANTILES = np.linspace(0.0, 100.0, 401)
"""Per-partition quantiles that ``robust`` merges (0.25 % steps)."""


@dataclass(frozen=True)
class RowPlan:
    """Rows of one partition taking part in a fit, and their training weights."""

    path: str
    label: int
    rows: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class PartitionSource:
    """A fit plan's source (:class:`hepclf.training.plan.FitSource`) on a partitioned table:
    a small handle (partition paths, sizes, labels) that reads a task's rows where the task
    runs, so a fit task sent to a worker carries row numbers, never features."""

    paths: tuple[str, ...]
    offsets: np.ndarray
    labels: np.ndarray
    normalizer: Normalizer
    n_features: int

    def arrays(self, part: FitRows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Normalised features, labels and weights of ``part``'s global rows, in its order."""
        rows = np.asarray(part.rows, np.int64)
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        X = np.empty((len(rows), self.n_features), np.float32)
        order = np.argsort(which, kind="stable")
        present, counts = np.unique(which[order], return_counts=True)
        for p, at in zip(present, np.split(order, np.cumsum(counts)[:-1]), strict=True):
            X[at] = read_features(self.paths[p], rows[at] - self.offsets[p])
        return self.normalizer.transform(X), self.labels[which], part.weight


@dataclass
class PartitionedData:
    """What :class:`hepclf.training.prepare.PreparedData` holds, with the features left in the
    partitions: fit rows (global row numbers and weights, as in process), their per-partition
    plans, and a :class:`PartitionSource` the workers read them through."""

    table: PartitionedTable
    split: SplitIndices
    normalizer: Normalizer
    fit_rows: FitRows
    validation_rows: FitRows
    fit: list[RowPlan]
    validation: list[RowPlan]

    @property
    def source(self) -> PartitionSource:
        """Where fit tasks read their rows (on the worker that runs them)."""
        table = self.table
        return PartitionSource(
            tuple(p.path for p in table.partitions),
            table.offsets,
            np.array([p.label for p in table.partitions], np.int8),
            self.normalizer,
            len(table.columns),
        )

    def labels_and_weights(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels and physical weights of 'train' or 'test' (what plots and metrics need)."""
        rows = getattr(self.split, name)
        return self.table.label[rows], self.table.weight[rows]

    def rows_of(self, name: str) -> list[np.ndarray]:
        """Each partition's local rows of 'train' or 'test' (scored for evaluation)."""
        return self.table.local_rows(getattr(self.split, name))

    @property
    def negative_weights(self) -> int:
        """Training and validation events with negative weight (they train as |w|)."""
        return sum(int((p.weight < 0).sum()) for p in (*self.fit, *self.validation))


def ingest_and_prepare(
    config: PipelineConfig,
    session: ClusterSession,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> PartitionedData:
    """The pipeline's table ingested on the session's workers (or reused), split and
    normalised: what training, tuning and results start from on a cluster."""
    from hepclf.cluster.ingest import ingest_on_cluster

    table = ingest_on_cluster(
        config, session.executor, session.table_dir, use_cache=use_cache, progress=progress
    )
    return prepare_on_cluster(config, table, session.executor)


def prepare_on_cluster(
    config: PipelineConfig, table: PartitionedTable, executor: DaskExecutor
) -> PartitionedData:
    """The in-process split, the normaliser from partition statistics, the training weights."""
    split = pipeline_split(config, table)  # type: ignore[arg-type]
    normalizer = fit_normalizer(table, split.train, config, executor)
    fit_rows = weighted_rows(table, split.train, config)  # type: ignore[arg-type]
    validation_rows = weighted_rows(table, split.validation, config)  # type: ignore[arg-type]
    return PartitionedData(
        table,
        split,
        normalizer,
        fit_rows,
        validation_rows,
        _row_plans(table, fit_rows),
        _row_plans(table, validation_rows),
    )


def _row_plans(table: PartitionedTable, part: FitRows) -> list[RowPlan]:
    """``part``'s rows (sorted) and weights cut by partition."""
    kept, w = part.rows, part.weight
    assert w is not None
    offsets = table.offsets
    cuts = np.searchsorted(kept, offsets)
    return [
        RowPlan(
            p.path,
            p.label,
            (kept[cuts[i] : cuts[i + 1]] - offsets[i]).astype(np.int32),
            w[cuts[i] : cuts[i + 1]],
        )
        for i, p in enumerate(table.partitions)
        if cuts[i + 1] > cuts[i]
    ]


def _first_pass(task: tuple[str, np.ndarray, bool]) -> dict[str, Any]:
    path, rows, quantiles = task
    X = read_features(path, rows).astype(np.float64)
    found: dict[str, Any] = {
        "n": len(X),
        "sum": X.sum(axis=0),
        "min": X.min(axis=0),
        "max": X.max(axis=0),
    }
    if quantiles:
        found["quantiles"] = np.percentile(X, QUANTILES, axis=0)
    return found


def _second_pass(task: tuple[str, np.ndarray, np.ndarray]) -> np.ndarray:
    path, rows, mean = task
    X = read_features(path, rows).astype(np.float64)
    return ((X - mean) ** 2).sum(axis=0)


def fit_normalizer(
    table: PartitionedTable, rows: np.ndarray, config: PipelineConfig, executor: DaskExecutor
) -> Normalizer:
    """The normaliser of ``config`` fitted on ``rows`` (training rows) from partition sums."""
    method = config.normalization.method
    n_features = len(table.columns)
    if method == "none":
        return Normalizer.fit(np.zeros((1, n_features), np.float32), config.normalization)
    parts = [
        (p.path, local)
        for p, local in zip(table.partitions, table.local_rows(rows), strict=True)
        if len(local)
    ]
    first = executor.map(
        _first_pass,
        [(path, local, method == "robust") for path, local in parts],
        label="hepclf-normaliser",
        retries=2,
    )
    n = sum(f["n"] for f in first)
    if method == "standard":
        mean = sum(f["sum"] for f in first) / n
        squares = executor.map(
            _second_pass,
            [(path, local, mean) for path, local in parts],
            label="hepclf-normaliser-variance",
            retries=2,
        )
        center, scale = mean, np.sqrt(sum(squares) / n)
    elif method == "minmax":
        center = np.min([f["min"] for f in first], axis=0)
        scale = np.max([f["max"] for f in first], axis=0) - center
    else:
        from dask.array.percentile import merge_percentiles

        counts = [f["n"] for f in first]
        merged = np.array(
            [
                merge_percentiles(
                    [25.0, 50.0, 75.0],
                    [QUANTILES] * len(first),
                    [f["quantiles"][:, j] for f in first],
                    counts,
                )
                for j in range(n_features)
            ]
        )
        center, scale = merged[:, 1], merged[:, 2] - merged[:, 0]
    scale = np.where(np.asarray(scale) > 0, scale, 1.0)
    return Normalizer(
        method,
        np.asarray(center, np.float64),
        np.asarray(scale, np.float64),
        config.normalization.clip,
    )
