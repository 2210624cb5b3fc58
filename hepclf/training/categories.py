"""TMVA's Category method, training side: one model per category, evaluated per category
and combined (every event scored by its own category's model).

The routing itself (which category an event is in) and the :class:`CategoryModel` that
scoring uses live in :mod:`hepclf.ingest.events.categories`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.training import CategoryConfig
from hepclf.ingest.events.categories import CategoryModel
from hepclf.models import build_model
from hepclf.models.rows import Rows
from hepclf.runtime.errors import ConfigError
from hepclf.training.executor import Executor
from hepclf.training.plan import FitPlan, FitTask, execute_plan
from hepclf.training.prepare import PreparedData, weighted_rows
from hepclf.training.scores import model_scores


def fit_categories(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    executor: Executor | None = None,
) -> CategoryModel:
    """Train one ``name`` model per category on that category's training events.

    Training weights (negative-weight policy, class balance) are derived per category, as
    TMVA does for each sub-method, so that every category's model sees balanced classes.
    The fits are one plan, run by ``executor``.
    """
    table, split = data.table, data.split
    assert table.category is not None, "the table was ingested without categories"
    categories = config.categories or []
    n_classes = len(config.class_names)
    estimator = build_model(name, params, seed=config.seed)
    tasks = []
    for i, category in enumerate(categories):
        fit, validation = (
            weighted_rows(table, rows[table.category[rows] == i], config)
            for rows in (split.train, split.validation)
        )
        present = np.unique(table.label[fit.rows])
        if len(present) < n_classes:
            missing = [c for k, c in enumerate(config.class_names) if k not in present]
            raise ConfigError(
                f"category {category.name!r} ({category.selection!r}) has no training events "
                f"of class(es) {missing}; merge it with another category or loosen its selection"
            )
        if len(np.unique(table.label[validation.rows])) < n_classes:
            # too few to stop on: they train as well (a stopping model carves its own)
            fit, validation = fit + validation, None
        tasks.append(FitTask(estimator, fit, validation, f"{name} [{category.name}]"))
    fitted = execute_plan(FitPlan(data.source, tasks, label=f"{name} categories"), executor)
    return CategoryModel(name, list(categories), [f.model for f in fitted])


def category_scores(
    model: CategoryModel, data: PreparedData, part: str
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every event of 'train' or 'test' from its own category's model, as
    :func:`~hepclf.training.scores.model_scores` gives them (float32 signal score, (n, K)
    probabilities for K > 2 classes), and each event's category.

    Each category's model scores index rows of the table block by block, so no normalised
    copy of the part is made (NaN where an event is in no category: ingest refuses those).
    """
    assert data.table.category is not None, "the table was ingested without categories"
    category = data.table.category[getattr(data.split, part)]
    return scores_by_category(model, data.rows(part), category), category


def scores_by_category(
    model: CategoryModel, rows: Rows | np.ndarray, category: np.ndarray
) -> np.ndarray:
    """Each event's score from its own category's model (``category``: one per row of
    ``rows``, index rows of the table or, on a cluster's worker, model inputs)."""
    scores = np.full((len(rows), *_score_shape(model)), np.nan, dtype=np.float32)
    for i, category_model in enumerate(model.models):
        members = np.flatnonzero(category == i)
        if len(members):
            part = rows.take(members) if isinstance(rows, Rows) else rows[members]
            scores[members] = model_scores(category_model, part)
    return scores


def _score_shape(model: CategoryModel) -> tuple[int, ...]:
    """The shape of one event's score: () for two classes, (K,) otherwise."""
    n_classes = len(model.classes_)
    return () if n_classes == 2 else (n_classes,)


@dataclass(frozen=True, eq=False)
class CategoryReport:
    """The combined evaluation (each event scored by its category's model) plus one per category.

    Reads like the combined report (``auc_test``, ``roc_test``, ``overtrained``, ...), so
    every consumer of a plain report keeps working; ``per_category`` adds the breakdown.
    """

    combined: Any
    per_category: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        if name in ("combined", "per_category"):
            raise AttributeError(name)
        return getattr(self.combined, name)

    def to_flat_dict(self) -> dict[str, float]:
        flat = dict(self.combined.to_flat_dict())
        for category, report in self.per_category.items():
            for key in ("auc_test", "auc_train", "accuracy_test", "overtrained"):
                flat[f"category_{category}_{key}"] = float(report.to_flat_dict()[key])
        return flat

    def to_summary(self) -> dict[str, Any]:
        return {
            **self.combined.to_summary(),
            "categories": {c: r.to_summary() for c, r in self.per_category.items()},
        }


def evaluate_by_category(
    categories: Sequence[CategoryConfig],
    category_of: Mapping[str, np.ndarray],
    test: tuple[np.ndarray, ...],
    train: tuple[np.ndarray, ...],
    evaluate: Callable[[tuple[np.ndarray, ...], tuple[np.ndarray, ...]], Any],
) -> CategoryReport:
    """The combined report of all events plus one per category.

    ``test``/``train`` are (labels, scores, weights) of all events, each already scored by
    its own category's model; ``category_of`` gives their category per part; ``evaluate``
    turns (test, train) into a report.
    """
    per_category = {}
    for i, category in enumerate(categories):
        te, tr = category_of["test"] == i, category_of["train"] == i
        try:
            per_category[category.name] = evaluate(
                tuple(a[te] for a in test), tuple(a[tr] for a in train)
            )
        except ValueError as err:
            raise ConfigError(
                f"category {category.name!r} ({category.selection!r}) cannot be evaluated on "
                f"its {int(te.sum())} test and {int(tr.sum())} training events: {err}"
            ) from None
    return CategoryReport(evaluate(test, train), per_category)
