"""The Dask executor: independent tasks (fits, scorings, ingest parts) on a cluster's workers.

It has the same ``map`` as the in-process executor (``hepclf.training.executor``): results
come back in task order and a task's exception propagates. ``retries`` reruns a task whose
worker died or that raised, which is safe for tasks that write atomically or only return
values (ingest, scoring, fold and trial fits). A lost worker's tasks are rescheduled by Dask
itself; a task that keeps killing workers ends as ``KilledWorker``, named here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
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
        from distributed import KilledWorker

        futures = [
            self.client.submit(function, task, retries=retries, pure=False, key=_key(label, i))
            for i, task in enumerate(tasks)
        ]
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    results[i] = future.result()
                except KilledWorker as err:
                    raise HepclfError(
                        f"{label or 'a task'} (task {i}) was running on Dask workers that died "
                        f"each time ({err}); a worker probably ran out of memory: give workers "
                        "more memory or lower step_size"
                    ) from None
                if on_done is not None:
                    on_done(i, results[i])
        except BaseException:
            self.client.cancel(futures)
            raise
        return results


def _key(label: str, i: int) -> str:
    """A readable, unique task key: the label (e.g. ``hepclf-ingest``), the task's index."""
    stem = "".join(c if c.isalnum() else "-" for c in label) or "hepclf-task"
    return f"{stem}-{i}-{uuid.uuid4().hex[:8]}"
