"""The fit plan: every fit of a run (one per model, fold, category and tuning trial) as a
small task, and the one function that runs a plan through an executor.

A :class:`FitTask` says which estimator (an unfitted prototype: its class and parameters),
which rows (indices into the table, with their training weights) and which rows stop it
early. The rows are read from the plan's :class:`FitSource` when the task runs, so a task
stays small and picklable whatever the table's size, and an executor may run it anywhere;
:class:`TableSource` reads in-memory arrays, :class:`RowsSource` positions in a set of rows
(tuning's training events), a cluster's source reads its partitions.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sklearn.base import clone

from hepclf.models.rows import Rows
from hepclf.training.executor import Executor, InProcessExecutor

if TYPE_CHECKING:
    from hepclf.training.normalize import Normalizer


@dataclass(frozen=True)
class FitRows:
    """The rows one fit reads: indices into the source and their training weights.

    Only the selection, not :class:`hepclf.models.rows.Rows`: those carry the feature array
    and the normaliser a model reads in this process, while a task must stay small and
    picklable, and the same selection is read from an in-memory table
    (:meth:`TableSource.rows` binds it as ``Rows``) or from a cluster's partitions
    (``hepclf.cluster.prepare.RowPlan``).
    """

    rows: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, mask: np.ndarray) -> FitRows:
        """The rows (and weights) where ``mask`` is true."""
        return FitRows(self.rows[mask], None if self.weight is None else self.weight[mask])

    def __add__(self, other: FitRows) -> FitRows:
        """These rows followed by ``other``'s (validation events that train as well)."""
        if self.weight is None or other.weight is None:
            weight = None
        else:
            weight = np.concatenate([self.weight, other.weight])
        return FitRows(np.concatenate([self.rows, other.rows]), weight)


@dataclass(frozen=True)
class FitTask:
    """One fit: which estimator, which rows, which rows stop it early.

    ``estimator`` is cloned before fitting, so one prototype may serve several tasks (the
    folds of an ensemble). A model that stops early gets ``validation``; for one that does
    not, the validation rows train as well. ``name`` says what the fit is for (``"xgb fold
    2/5"``), for progress and errors.
    """

    estimator: Any
    fit: FitRows
    validation: FitRows | None = None
    name: str = ""


class FitSource(Protocol):
    """Where a plan's tasks read their rows. The source travels with the fit function (once
    per plan), so on a cluster it should be a handle (partitions on the workers, say) rather
    than the arrays themselves."""

    def arrays(self, part: FitRows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Features (normalised as the model trains on them), labels and training weights."""
        ...


@dataclass(frozen=True)
class TableSource:
    """Rows of in-memory arrays: features normalised as they are read, and labels.

    ``X`` is the table's own array, not a copy; each task normalises only the rows it reads.
    """

    X: np.ndarray
    y: np.ndarray
    normalizer: Normalizer | None = None

    def features(self, rows: np.ndarray) -> np.ndarray:
        X = self.X[rows]
        return X if self.normalizer is None else self.normalizer.transform(X)

    def arrays(self, part: FitRows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self.features(part.rows), self.y[part.rows], part.weight

    def rows(self, part: FitRows) -> Rows:
        """The rows as a zoo model reads them: normalised block by block, never whole."""
        transform = None if self.normalizer is None else self.normalizer.transform
        return Rows(self.X, part.rows, self.y[part.rows], part.weight, transform)


@dataclass(frozen=True)
class RowsSource:
    """Rows of one set of events, a task's rows being positions in them: tuning's training
    events, which index the table and are normalised as they are read (or an array of
    model inputs). A task reads only its own rows, block by block; nothing is copied whole.
    """

    events: Rows

    def rows(self, part: FitRows) -> Rows:
        taken = self.events.take(part.rows)
        return taken.with_labels(taken.y, part.weight)

    def arrays(self, part: FitRows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        rows = self.rows(part)
        return rows.array(), rows.y, rows.w


@dataclass(frozen=True)
class Fitted:
    """A fitted estimator and the seconds its fit took."""

    model: Any
    seconds: float


@dataclass(frozen=True)
class FitPlan:
    """Independent fits reading one source; ``label`` names them for progress."""

    source: FitSource
    tasks: Sequence[FitTask] = field(default_factory=list)
    label: str = "fits"


def fit_task(task: FitTask, source: FitSource) -> Fitted:
    """Run one task: clone its estimator and fit it on its rows (what an executor calls)."""
    model = clone(task.estimator)
    fit, validation = task.fit, task.validation
    if validation is not None and not model.uses_validation:
        fit, validation = fit + validation, None  # nothing to stop early on: they train too
    start = time.perf_counter()
    with warnings.catch_warnings():  # said once per run by the pipeline, not once per fit
        warnings.filterwarnings("ignore", message=".*negative weights.*")
        rows = getattr(source, "rows", None)
        if rows is not None and hasattr(model, "fit_rows"):  # a zoo model streams its rows
            model.fit_rows(rows(fit), rows(validation) if validation else None)
        else:
            stopping = source.arrays(validation) if validation is not None else ()
            model.fit(*source.arrays(fit), *stopping)
    return Fitted(model, time.perf_counter() - start)


def execute_plan(plan: FitPlan, executor: Executor | None = None) -> list[Fitted]:
    """Every fit of ``plan``, in task order, run by ``executor`` (in process by default).

    This is the one place where hepclf fits a model: the zoo, fold models, category models
    and tuning trials all come through here, so an executor decides where fits run.
    """
    executor = executor or InProcessExecutor()
    return executor.map(partial(fit_task, source=plan.source), plan.tasks, label=plan.label)
