"""The Fisher discriminant from per-partition sufficient statistics: exact, nothing gathered.

Two passes over the training partitions, as the in-process fit computes it: class weight
sums and weighted feature sums (giving the class means, and the inputs' mean for the
importances), then the within-class scatter around those means and the inputs' squared
deviations. Sums over partitions equal the in-process sums up to the order of additions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hepclf.cluster.executor import DaskExecutor
from hepclf.cluster.prepare import RowPlan
from hepclf.models.linear import Linear, fisher_from_statistics
from hepclf.training.normalize import Normalizer


def _inputs(plan: RowPlan, normalizer: Normalizer) -> tuple[np.ndarray, np.ndarray]:
    from hepclf.ingest.partitions import read_features

    X = normalizer.transform(read_features(plan.path, plan.rows)).astype(np.float64)
    return X, np.abs(plan.weight)  # trained as |w|, as the models' own fit does


def _sums(task: tuple[RowPlan, Normalizer, int]) -> dict[str, Any]:
    plan, normalizer, n_classes = task
    X, w = _inputs(plan, normalizer)
    totals = np.zeros(n_classes)
    sums = np.zeros((n_classes, X.shape[1]))
    totals[plan.label] = w.sum()
    sums[plan.label] = w @ X
    return {"n": len(X), "totals": totals, "sums": sums, "x": X.sum(axis=0)}


def _scatter(task: tuple[RowPlan, Normalizer, np.ndarray, np.ndarray]) -> dict[str, Any]:
    plan, normalizer, means, mean = task
    X, w = _inputs(plan, normalizer)
    centred = X - means[plan.label]  # a partition holds one sample, so one class
    return {"scatter": (centred * w[:, None]).T @ centred, "squares": ((X - mean) ** 2).sum(0)}


def fit_fisher(
    model: Linear, plans: list[RowPlan], normalizer: Normalizer, executor: DaskExecutor
) -> None:
    """Fit ``model`` (method fisher) on the rows of ``plans`` (fit and validation events)."""
    n_classes = max(p.label for p in plans) + 1
    first = executor.map(
        _sums, [(p, normalizer, n_classes) for p in plans], label="hepclf-fisher-sums", retries=2
    )
    totals = sum(f["totals"] for f in first)
    n = sum(f["n"] for f in first)
    means = sum(f["sums"] for f in first) / totals[:, None]
    mean = sum(f["x"] for f in first) / n
    second = executor.map(
        _scatter,
        [(p, normalizer, means, mean) for p in plans],
        label="hepclf-fisher-scatter",
        retries=2,
    )
    coef, intercept = fisher_from_statistics(totals, means, sum(s["scatter"] for s in second))
    model.set_coefficients(coef, intercept, np.sqrt(sum(s["squares"] for s in second) / n))
