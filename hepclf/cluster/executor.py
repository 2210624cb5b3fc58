"""The Dask executor: independent tasks (fits, scorings, ingest parts) on a cluster's workers.

It has the same ``map`` as the in-process executor (``hepclf.training.executor``): results
come back in task order and a task's exception propagates. ``retries`` reruns a task whose
worker died or that raised, which is safe for tasks that write atomically or only return
values (ingest, scoring, fold and trial fits). A lost worker's tasks are rescheduled by Dask
itself; a task that keeps killing workers ends as ``KilledWorker``, named here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from hepclf.runtime.errors import HepclfError

T = TypeVar("T")
R = TypeVar("R")


class DaskExecutor:
    """Runs each task as one Dask task; the client waits for all of them in order."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def map(
        self,
        function: Callable[[T], R],
        tasks: Sequence[T],
        *,
        label: str = "",
        retries: int = 0,
        on_done: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``function(task)`` for every task, in task order; ``on_done(i, result)`` as each ends."""
        from dask.distributed import as_completed

        futures = [
            self.client.submit(function, task, retries=retries, pure=False, key=_key(label, i))
            for i, task in enumerate(tasks)
        ]
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                results[i] = _result(future, label, i)
                if on_done is not None:
                    on_done(i, results[i])
        except BaseException:
            self.client.cancel(futures)
            raise
        return results

    def as_ready(
        self,
        function: Callable[[T], R],
        tasks: Iterable[T],
        *,
        parallel: int,
        label: str = "",
        retries: int = 0,
    ) -> Iterator[R]:
        """``function(task)`` results as each task ends, at most ``parallel`` running.

        The next task is taken from ``tasks`` only when a running one has ended and its
        result was handed on, so a task may depend on the results before it (an Optuna
        study's next trial on the trials told so far). Tasks still running when the
        caller stops iterating are cancelled.
        """
        from dask.distributed import as_completed

        pending = iter(tasks)
        running = as_completed()
        submitted: list[Any] = []
        index: dict[str, int] = {}

        def submit() -> None:
            for task in pending:  # at most one
                i = len(submitted)
                future = self.client.submit(
                    function, task, retries=retries, pure=False, key=_key(label, i)
                )
                submitted.append(future)
                index[future.key] = i
                running.add(future)
                return

        try:
            for _ in range(max(1, parallel)):
                submit()
            for future in running:
                yield _result(future, label, index[future.key])
                submit()
        finally:
            self.client.cancel([f for f in submitted if not f.done()])


def _result(future: Any, label: str, i: int) -> Any:
    """A finished task's result; a task that killed its workers each time is named."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as err:
        raise HepclfError(
            f"{label or 'a task'} (task {i}) was running on Dask workers that died "
            f"each time ({err}); a worker probably ran out of memory: give workers "
            "more memory or lower step_size"
        ) from None


def _key(label: str, i: int) -> str:
    """A readable, unique task key: the label (e.g. ``hepclf-ingest``), the task's index."""
    stem = "".join(c if c.isalnum() else "-" for c in label) or "hepclf-task"
    return f"{stem}-{i}-{uuid.uuid4().hex[:8]}"
