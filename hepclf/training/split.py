"""Deterministic train / validation / test division of a feature table.

``random`` is a seeded split stratified by class. ``event_id`` puts events with
``event_id % folds == test_fold`` into the test part (parity for two folds), so the same
event always lands in the same part whatever else changes: the habit of analyses that
later apply the model trained on the other fold. The validation part (for early stopping)
is always a shuffled, class-stratified draw from the training part.

``kfold`` makes every event both: a training event of all fold models but one, and a test
event of that one (``hepclf.training.crossval``); train and test then both hold every row.
``assign_folds`` is the fold rule, shared by training and by cross-validated application.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import train_test_split

from hepclf.config.training import SplitConfig
from hepclf.ingest.table import FeatureTable
from hepclf.models.folds import assign_folds
from hepclf.runtime.errors import InputDataError
from hepclf.training.weights import require_positive_class_weights

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig

SPLIT_TAG = "hepclf.split"
"""The MLflow tag of a training run holding :func:`split_fingerprint` (JSON)."""


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of each part; train and validation together are the non-test rows."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    folds: np.ndarray | None = None
    """For ``kfold``: the fold of every row (train and test both hold every row: each event
    is scored out-of-fold by the model that did not train on it)."""


def split_table(
    table: FeatureTable,
    config: SplitConfig,
    *,
    use_event_id: bool = False,
    class_names: Sequence[str] = (),
    category_names: Sequence[str] = (),
) -> SplitIndices:
    """Split the rows of ``table`` as ``config`` says.

    ``use_event_id`` (the pipeline names an ``event_id`` branch) makes ``kfold`` assign
    folds by ``event_id % folds``; the ``event_id`` method always uses the ids.
    ``class_names`` and ``category_names`` name the labels and categories in errors.
    """
    rows = np.arange(len(table))
    if config.method == "kfold":
        ids = table.event_id if use_event_id else None
        fold = assign_folds(len(table), config.folds, config.seed, ids)
        for k in range(config.folds):
            _require_both_classes(table, rows[fold == k], f"fold {k}")
        names = list(class_names) or [str(c) for c in range(int(table.label.max()) + 1)]
        require_positive_class_weights(table.label, table.weight, fold, names, "split.folds")
        if table.category is not None:  # each category's fold models are evaluated alone
            for index, category in enumerate(category_names):
                alone = table.category == index
                require_positive_class_weights(
                    table.label[alone],
                    table.weight[alone],
                    fold[alone],
                    names,
                    f"split.folds (category {category!r})",
                    n_folds=config.folds,
                )
        return SplitIndices(rows, rows[:0], rows, fold)
    if config.method == "random":
        fit_rows, test = train_test_split(
            rows, test_size=config.test_fraction, random_state=config.seed, stratify=table.label
        )
    else:
        in_test = (table.event_id % config.folds) == config.test_fold
        fit_rows, test = rows[~in_test], rows[in_test]
    _require_both_classes(table, fit_rows, "training")
    _require_both_classes(table, test, "test")
    if config.validation_fraction > 0:
        train, validation = train_test_split(
            fit_rows,
            test_size=config.validation_fraction,
            random_state=config.seed + 1,
            stratify=table.label[fit_rows],
        )
    else:
        train, validation = fit_rows, rows[:0]
    return SplitIndices(np.sort(train), np.sort(validation), np.sort(test))


def pipeline_split(config: PipelineConfig, table: FeatureTable) -> SplitIndices:
    """The split ``config`` gives ``table``, errors naming its classes and categories: the
    one that training used, so preparing on a cluster and ``hepclf result`` rebuild the
    same rows."""
    return split_table(
        table,
        config.split,
        use_event_id=config.event_id is not None,
        class_names=config.class_names,
        category_names=[category.name for category in config.categories or []],
    )


def _require_both_classes(table: FeatureTable, rows: np.ndarray, part: str) -> None:
    present = set(np.unique(table.label[rows]).tolist())
    if present != set(np.unique(table.label).tolist()):
        raise InputDataError(
            f"the {part} part has {len(rows)} events but not every class; check split settings "
            "(test_fraction, event_id folds) and that every class has enough events"
        )


def split_fingerprint(config: PipelineConfig, table: FeatureTable) -> dict[str, Any]:
    """Everything that decides which events are test events: the split settings, the
    event-id rule and a digest of the rows split (their classes, samples, weights and ids).

    Stored with a training run, so that ``hepclf result`` can refuse a pipeline that would
    count training events as test events.
    """
    digest = hashlib.blake2b(digest_size=16)
    arrays = (table.label, table.sample, table.weight, table.event_id)
    for array, kind in zip(arrays, ("<i8", "<i8", "<f8", "<i8"), strict=True):
        digest.update(np.ascontiguousarray(array, dtype=kind).tobytes())  # cached or fresh
    return {
        **config.split.model_dump(mode="json"),
        "event_id": config.event_id,
        "events": len(table),
        "rows": digest.hexdigest(),
    }


def split_differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a training run's split fingerprint and this one, in words."""
    differences = [
        f"{key}: {recorded.get(key)!r} in training, {now.get(key)!r} now"
        for key in sorted(set(recorded) | set(now))
        if key not in ("rows", "events") and recorded.get(key) != now.get(key)
    ]
    if not differences and recorded.get("rows") != now.get("rows"):
        differences.append(
            f"the events: {recorded.get('events')} events in training, {now.get('events')} "
            "now, or the same number with other classes, samples, weights or ids (changed "
            "selection, files or sample settings)"
        )
    return differences
