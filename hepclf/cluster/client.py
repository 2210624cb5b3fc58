"""Start or connect to a Dask cluster: shared by scoring and training.

A LocalCluster runs single-threaded worker *processes* (the work of a task is CPU-bound
Python and NumPy, so processes, not threads, use the cores); ``--scheduler`` connects to a
cluster someone else started (``dask scheduler`` + ``dask worker``, dask-jobqueue).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepclf.runtime.errors import ConfigError, HepclfError

CONNECT_TIMEOUT_S = 30.0
"""Seconds to keep trying a scheduler (``HEPCLF_CONNECT_TIMEOUT_S`` overrides)."""


@dataclass(frozen=True)
class ClusterSettings:
    """Where the work runs: ``workers`` local processes, or the cluster at ``scheduler``.

    ``table_dir`` is the folder, shared by the client and every worker, that receives the
    partitions of the feature table (None: beside the tracking store). ``memory_limit``
    applies to local workers only (a batch system sets its own).
    """

    workers: int = 1
    scheduler: str | None = None
    table_dir: Path | None = None
    memory_limit: str | None = None

    def __post_init__(self) -> None:
        if self.workers > 1 and self.scheduler is not None:
            raise ConfigError("give either --workers N (a local cluster) or --scheduler, not both")

    @property
    def distributed(self) -> bool:
        """Whether the work goes to Dask workers (otherwise it stays in this process)."""
        return self.workers > 1 or self.scheduler is not None


@contextmanager
def dask_client(
    workers: int, scheduler: str | None, memory_limit: str | None = None
) -> Iterator[Any]:
    """A client on ``scheduler``, or on a LocalCluster of ``workers`` single-threaded processes.

    An unreachable scheduler is a clear error naming the address. ``memory_limit`` (e.g.
    "4GB") is each local worker's limit: Dask pauses, then restarts a worker that exceeds it.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            timeout = float(os.environ.get("HEPCLF_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S))
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as err:
            raise HepclfError(
                f"cannot connect to the Dask scheduler at {scheduler!r} ({err}); check the "
                "address (tcp://HOST:PORT) and that the scheduler is running"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
            memory_limit=memory_limit or "auto",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextmanager
def cluster_client(settings: ClusterSettings) -> Iterator[Any]:
    """The client ``settings`` ask for (see :func:`dask_client`)."""
    with dask_client(settings.workers, settings.scheduler, settings.memory_limit) as client:
        yield client


def worker_count(client: Any) -> int:
    """Workers connected now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


@dataclass(frozen=True)
class ClusterSession:
    """A connected client, the executor over it and the folder of the table partitions."""

    client: Any
    executor: Any
    table_dir: Path


@contextmanager
def cluster_session(
    settings: ClusterSettings, tracking_uri: str | None
) -> Iterator[ClusterSession]:
    """Start or connect to the cluster ``settings`` name, for ingest and training."""
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import default_table_dir

    table_dir = settings.table_dir or default_table_dir(tracking_uri)
    with cluster_client(settings) as client:
        yield ClusterSession(client, DaskExecutor(client), Path(table_dir).absolute())
