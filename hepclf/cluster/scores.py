"""Scores of chosen rows of a partitioned table, computed on the workers partition by partition.

``hepclf result`` on a cluster scores the rebuilt test part this way: each task reads its
partition's rows as a feature table (features, event ids, categories) and applies the
in-process scoring function to them, so the client receives scores only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hepclf.cluster.executor import DaskExecutor
from hepclf.ingest.partitions import PartitionedTable
from hepclf.ingest.table import FeatureTable

RETRIES = 2
"""Scoring only returns values: safe to repeat on another worker."""

RowsScore = Callable[[FeatureTable, "np.ndarray | None"], np.ndarray]
"""Scores of every event of a (sliced) feature table; the array: per-event fold numbers."""


def _score_part(task: tuple[str, np.ndarray, np.ndarray | None, RowsScore]) -> np.ndarray:
    """On a worker: ``score`` of one partition's rows."""
    path, local, folds, score = task
    return score(FeatureTable.read_parquet(path).subset(local), folds)


def scores_on_cluster(
    score: RowsScore,
    table: PartitionedTable,
    rows: np.ndarray,
    folds: np.ndarray | None,
    *,
    executor: DaskExecutor,
) -> np.ndarray:
    """``score`` of the sorted global ``rows`` of ``table`` (``folds``: one per row, or
    None), in the order of ``rows``; the function is sent to the workers once."""
    [shared] = executor.client.scatter([score], broadcast=True, hash=False)
    offsets = np.searchsorted(rows, table.offsets)
    tasks: list[Any] = [
        (
            p.path,
            local,
            None if folds is None else folds[offsets[i] : offsets[i + 1]],
            shared,
        )
        for i, (p, local) in enumerate(zip(table.partitions, table.local_rows(rows), strict=True))
        if len(local)
    ]
    parts = executor.map(_score_part, tasks, label="hepclf-score-result", retries=RETRIES)
    if not parts:
        return np.empty(0)
    return np.concatenate(parts)
