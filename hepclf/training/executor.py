"""Who runs the independent tasks of a plan (fits, scorings): callers build the plan, an
executor runs it, and neither knows how the other works.

:class:`InProcessExecutor` runs the tasks one after the other in this process (the default);
a Dask executor (``hepclf.cluster``) has the same ``map`` and sends them to workers. A task
and the function applied to it must therefore be picklable and small: fit tasks name their
rows by index (:mod:`hepclf.training.plan`), never carry the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs independent tasks (fits, scorings); callers build a plan, an executor runs it."""

    def map(
        self,
        function: Callable[[T], R],
        tasks: Sequence[T],
        *,
        label: str = "",
        retries: int = 0,
    ) -> list[R]:
        """``function(task)`` for every task, results in task order; exceptions propagate.

        ``label`` names the work for progress displays; ``retries`` is how often a task
        lost with its worker is tried again (where there are workers to lose).
        """
        ...


class InProcessExecutor:
    """Runs tasks in order in this process: the default, and what tests and notebooks use.

    ``retries`` is accepted and ignored: a task that fails here fails the same way again.
    """

    def map(
        self,
        function: Callable[[T], R],
        tasks: Sequence[T],
        *,
        label: str = "",
        retries: int = 0,
    ) -> list[R]:
        return [function(task) for task in tasks]

    def __repr__(self) -> str:
        return "InProcessExecutor()"
