"""Batch scoring jobs run in background threads, with their status kept in memory.

Jobs are not persisted: after a restart their ids are unknown, but their outputs are on
disk, complete or absent (outputs are written atomically), and a re-submitted job skips
the files already complete.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hepclf.scoring import DEFAULT_STEP_SIZE
from hepclf.scoring.runner import RunSummary

JobStatus = Literal["queued", "running", "done", "failed"]


class JobRequest(BaseModel):
    """Files to score with a registered model, like ``hepclf score``; paths under data roots."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    alias: str | None = Field(None, description="Registry alias; default 'champion'.")
    version: int | None = Field(None, ge=1, description="Registry version (instead of alias).")
    inputs: list[str] = Field(min_length=1, max_length=10_000, description="Files or globs.")
    out: str | None = Field(None, description="Output folder (default: each input's folder).")
    tree: str = "Events"
    format: Literal["root", "parquet"] = "root"
    step_size: int | str = Field(
        DEFAULT_STEP_SIZE, description="Entries per chunk, or memory per chunk, e.g. '25 MB'."
    )
    keep_branches: list[str] = Field(default_factory=list)
    selection: str | None = None
    overwrite: bool = False


@dataclass
class Job:
    """One submitted job and, once finished, its per-file results."""

    id: str
    model: str
    version: int
    status: JobStatus = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobManager:
    """Runs jobs on a small thread pool; scoring holds the GIL little (NumPy, XGBoost, I/O)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hepclf-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, model: str, version: int, work: Callable[[], RunSummary]) -> Job:
        job = Job(uuid.uuid4().hex, model, version)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job, work: Callable[[], RunSummary]) -> None:
        job.started = time.time()
        job.status = "running"
        try:
            summary = work()
        except Exception as err:  # reported in the job's status, never lost in a thread
            job.error = f"{type(err).__name__}: {err}"
            status: JobStatus = "failed"
        else:
            job.files = [asdict(r) for r in summary.results]
            job.events = summary.events
            if summary.failed:
                job.error = f"{len(summary.failed)} of {len(summary.results)} files failed"
            status = "failed" if summary.failed else "done"
        job.finished = time.time()
        job.status = status  # last: a reader seeing the final status sees the results too

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
