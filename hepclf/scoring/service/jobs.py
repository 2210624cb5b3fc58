"""Batch scoring jobs: checked before they are accepted, run in background threads.

A job is checked before ``POST /jobs`` answers 202 (:func:`check_job`): the selection is
parsed (bounded, see :mod:`hepclf.ingest.events.expressions`) and tried on the first
entries, the first ``CHECKED_INPUTS`` inputs are opened and their branches checked against
the model and the selection, every other input must be a whole ROOT file by its size and
header, and no output name may hold a file hepclf did not write. Opening each of up to 10,000 inputs
(milliseconds per file on a local disk, more on network storage) would hold the request,
and the interpreter ``/health`` shares, for tens of seconds; so a later input that lacks a
branch fails in the job, which names it among its files while the others complete. What
else is left to fail is the data itself (a file damaged after its first entries, a full
disk).

Jobs stop at the next chunk (about a second) when they pass the time limit or when the
service shuts down (SIGTERM); their status says so, outputs already complete stay, and
a re-submitted job skips them. Jobs are not persisted: after a restart their ids are
unknown, but their outputs are on disk, complete or absent (outputs are written
atomically).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from hepclf.ingest.events.expressions import parse
from hepclf.ingest.events.features import branches_of
from hepclf.ingest.events.selection import selection_mask
from hepclf.ingest.reader import open_tree, root_file_problem
from hepclf.runtime.errors import HepclfError
from hepclf.scoring import DEFAULT_STEP_SIZE, Format
from hepclf.scoring.chunks import ChunkPlan
from hepclf.scoring.file_job import ScoreSettings, check_branches, score_file
from hepclf.scoring.outputs import foreign_reason
from hepclf.scoring.runner import plan_outputs
from hepclf.scoring.scorers import ScoringModel
from hepclf.scoring.service.payloads import MAX_VERSION, PayloadError

JobStatus = Literal["queued", "running", "done", "failed", "stopped"]
_LOG = logging.getLogger("hepclf.service")
_TRIAL_ENTRIES = 100
CHECKED_INPUTS = 10  # inputs opened while the request waits (see the module docstring)
_LISTED_PROBLEMS = 5


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL byte")
    return text


Text = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]
Expression = Annotated[str, AfterValidator(_no_nul)]  # bounded by parse(), which says how


class JobRequest(BaseModel):
    """Files to score with a registered model, like ``hepclf score``; paths under data roots."""

    model_config = ConfigDict(extra="forbid")

    model: Text = Field(description="Registered model name.")
    alias: Text | None = Field(None, description="Registry alias; default 'champion'.")
    version: StrictInt | None = Field(
        None, ge=1, le=MAX_VERSION, description="Registry version (instead of alias)."
    )
    inputs: list[Text] = Field(min_length=1, max_length=10_000, description="Files or globs.")
    out: Text | None = Field(None, description="Output folder (default: each input's folder).")
    tree: Text = "Events"
    format: Format = "root"
    step_size: (
        Annotated[StrictInt, Field(ge=1, le=10**9)] | Annotated[str, Field(max_length=32)]
    ) = Field(
        DEFAULT_STEP_SIZE, description="Entries per chunk, or memory per chunk, e.g. '25 MB'."
    )
    keep_branches: list[Text] = Field(default_factory=list, max_length=1000)
    selection: Expression | None = None
    overwrite: bool = False
    on_nonfinite: Literal["error", "nan"] = Field(
        "error", description="Non-finite features: fail the file, or write a NaN score."
    )


@dataclass
class Job:
    """One submitted job; ``files`` grows as its files finish."""

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


class JobStopped(BaseException):
    """Stops a job's scoring at a chunk boundary (time limit or shutdown).

    A BaseException, like KeyboardInterrupt, so that per-file error handling (which turns
    an Exception into one failed file and goes on) lets it through, and the partial
    output is removed by the atomic writer.
    """


def check_job(inputs: Sequence[str], model: ScoringModel, settings: ScoreSettings) -> None:
    """Refuse, before a job is accepted, everything that would make it fail at once."""
    plan = ChunkPlan([model], settings.keep_branches, settings.selection, settings.on_nonfinite)
    plan.check()
    if settings.selection:
        parse(settings.selection)
    problems, foreign = [], []
    for index, (path, output) in enumerate(plan_outputs(inputs, settings)):
        if index < CHECKED_INPUTS:
            problem = _opening_problem(path, plan, settings, try_selection=index == 0)
        else:  # size and header only: cheap for any number of files
            problem = root_file_problem(path)
        if problem is not None:
            problems.append(problem)
        if not settings.overwrite and (output.exists() or output.is_symlink()):
            why = foreign_reason(output, settings.fmt)
            if why is not None:
                foreign.append(f"{output} ({why})")
    if foreign:
        raise PayloadError(
            f"{_listing(foreign)}: not written by hepclf, left as they are; move them away, "
            "choose another 'out', or send 'overwrite': true to replace them",
            status_code=409,
        )
    if problems:
        raise PayloadError(_listing(problems))


def _opening_problem(
    path: str, plan: ChunkPlan, settings: ScoreSettings, try_selection: bool
) -> str | None:
    """What opening ``path`` shows wrong (tree, branches, the selection on its first
    entries when ``try_selection``), or None."""
    try:
        tree = open_tree(path, settings.tree)
        try:
            check_branches(tree, plan, f"{path} (tree {settings.tree!r})")
            if try_selection and settings.selection:
                _try_selection(tree, settings.selection)
        finally:
            tree.file.close()
    except HepclfError as err:
        return str(err)
    return None


def _try_selection(tree: Any, selection: str) -> None:
    """Evaluate the selection on the first entries: type errors show before a job runs."""
    try:
        chunk = tree.arrays(sorted(branches_of([selection])), entry_stop=_TRIAL_ENTRIES)
    except Exception as err:  # a damaged input is the request's problem, not a 500
        raise PayloadError(
            f"selection: the first entries of the input cannot be read ({type(err).__name__}: "
            f"{err})"
        ) from None
    try:
        selection_mask(selection, chunk, len(chunk))
    except HepclfError as err:
        raise PayloadError(f"selection: {err}") from None


def _listing(items: list[str]) -> str:
    more = f" (and {len(items) - _LISTED_PROBLEMS} more)" if len(items) > _LISTED_PROBLEMS else ""
    return "; ".join(items[:_LISTED_PROBLEMS]) + more


class JobManager:
    """Runs jobs on a small thread pool, each within ``time_limit_s``."""

    def __init__(self, workers: int, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hepclf-job")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def submit(
        self,
        name: str,
        version: int,
        inputs: Sequence[str],
        model: ScoringModel,
        settings: ScoreSettings,
    ) -> Job:
        job = Job(uuid.uuid4().hex, name, version)
        with self._lock:
            if self._stopping.is_set():
                raise PayloadError("the service is shutting down; submit the job again later", 503)
            self._jobs[job.id] = job
            self._futures[job.id] = self._pool.submit(self._run, job, inputs, model, settings)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(
        self, job: Job, inputs: Sequence[str], model: ScoringModel, settings: ScoreSettings
    ) -> None:
        job.started = time.time()
        deadline = time.monotonic() + self.time_limit_s
        job.status = "running"

        def check(_: int = 0) -> None:
            if self._stopping.is_set():
                raise JobStopped("the service shut down while the job ran")
            if time.monotonic() > deadline:
                raise JobStopped(f"the job ran longer than its limit of {self.time_limit_s:g} s")

        status: JobStatus
        try:
            for path, output in plan_outputs(inputs, settings):
                check()
                result = score_file(path, output, [model], settings, on_chunk=check)
                job.files.append(asdict(result))
                job.events += result.entries if result.status == "scored" else 0
        except JobStopped as stop:
            status = "stopped" if self._stopping.is_set() else "failed"
            job.error = (
                f"{stop}; {len(job.files)} of {len(inputs)} files finished (their outputs are "
                "complete); submit the job again to score the others"
            )
            _LOG.warning("job %s %s: %s", job.id, status, job.error)
        except Exception as err:  # reported in the job's status, never lost in a thread
            job.error = f"{type(err).__name__}: {err}"
            status = "failed"
        else:
            failed = sum(f["status"] == "failed" for f in job.files)
            if failed:
                job.error = f"{failed} of {len(job.files)} files failed"
            status = "failed" if failed else "done"
        job.finished = time.time()
        job.status = status  # last: a reader seeing the final status sees the results too

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every job at its next chunk and wait (at most ``grace_s``) for them."""
        with self._lock:
            self._stopping.set()
            futures = dict(self._futures)
        for job_id, future in futures.items():
            if future.cancel():  # still queued: never started
                job = self._jobs[job_id]
                job.error, job.finished = (
                    "the service shut down before the job started",
                    time.time(),
                )
                job.status = "stopped"
                _LOG.warning("job %s stopped: %s", job_id, job.error)
        wait([f for f in futures.values() if not f.cancelled()], timeout=grace_s)
        self._pool.shutdown(wait=False, cancel_futures=True)
