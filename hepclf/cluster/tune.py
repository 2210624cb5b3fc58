"""Tuning on a cluster: Optuna trials as parallel tasks on the Dask workers.

Each trial is one task. The worker opens the study in its storage (an RDB URL every worker
reaches: by default the SQLite file beside the tracking store, else ``tune.storage``, a file
on a shared folder or a database server), runs one trial with Optuna's own ``optimize`` (it
draws, reports each fold's running mean to the pruner, and records the outcome there),
reading its events from the partitions, and returns what it did. The client keeps one trial
per worker running, stops starting new ones at the budget (``tune.trials``,
``tune.timeout_s``), and records each trial in MLflow as it ends. Each task's sampler is
seeded with the pipeline's seed and the trial's position, so trials running side by side
draw different points; a trial's fold fits run one after the other on its worker, so the
pruner may stop it after any fold.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from hepclf.cluster.executor import DaskExecutor
from hepclf.cluster.prepare import PartitionedData
from hepclf.config import PipelineConfig
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.progress import Progress
from hepclf.training.results import TuningResult
from hepclf.training.studies import fingerprint, open_study
from hepclf.training.tuning import (
    TrialLog,
    TrialRecord,
    TrialRunner,
    TrialSpec,
    trial_objective,
    tune_rows,
)

TRIAL_RETRIES = 1
"""A trial whose worker died is run again once (as a new trial: the lost one is marked
failed by the storage's heartbeat)."""


@dataclass
class TrialDone:
    """What one trial task did: the study's trial number, the drawn parameters, the fold
    AUCs and whether the pruner stopped it."""

    number: int = -1
    params: dict[str, Any] = field(default_factory=dict)
    aucs: list[float] = field(default_factory=list)
    pruned: bool = False


def run_trial(task: tuple[TrialSpec, int]) -> TrialDone:
    """On a worker: one trial of the study, its sampler seeded with ``task[1]``."""
    spec, sampler_seed = task
    try:
        study = open_study(spec.storage, spec.study_name, sampler_seed, spec.pruning)
    except ConfigError as err:
        raise ConfigError(
            f"on Dask worker {socket.gethostname()}: {err}. Every worker must reach the "
            "study's storage: set tune.storage to a file on a shared folder or to a database "
            "URL (e.g. postgresql://...)"
        ) from None
    done = TrialDone()

    @contextmanager
    def record(name: str, number: int, params: dict[str, Any]) -> Iterator[TrialRecord]:
        done.number, done.params = number, params
        try:
            yield done.aucs.extend
        except optuna.TrialPruned:
            done.pruned = True
            raise

    study.optimize(trial_objective(spec, record), n_trials=1, catch=())
    return done


def parallel_trials(executor: DaskExecutor, workers: int) -> TrialRunner:
    """A :data:`~hepclf.training.tuning.TrialRunner` keeping ``workers`` trials running."""

    def run(
        spec: TrialSpec,
        study: optuna.Study,
        n_trials: int | None,
        timeout_s: float | None,
        callback: Callable[..., None],
        trial_log: TrialLog | None,
    ) -> None:
        [shared] = executor.client.scatter([spec], broadcast=True, hash=False)
        start = time.monotonic()
        first = len(study.get_trials(deepcopy=False))  # a resumed study's draws go on

        def tasks() -> Iterator[tuple[Any, int]]:
            for i in itertools.count():
                if n_trials is not None and i >= n_trials:
                    return
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    return
                yield shared, spec.seed + 1 + first + i

        finished = executor.as_ready(
            run_trial,
            tasks(),
            parallel=workers,
            label=f"hepclf-tune-{spec.name}",
            retries=TRIAL_RETRIES,
        )
        for done in finished:
            _log_trial(spec.name, done, trial_log)
            callback(study, study.get_trials(deepcopy=False)[done.number])

    return run


def _log_trial(name: str, done: TrialDone, trial_log: TrialLog | None) -> None:
    """Record a finished trial as the in-process search records it while it runs."""
    if trial_log is None:
        return
    with suppress(optuna.TrialPruned), trial_log(name, done.number, done.params) as log:
        if done.pruned:
            raise optuna.TrialPruned()
        log(done.aucs)


def tune_on_cluster(
    config: PipelineConfig,
    data: PartitionedData,
    models: list[str] | None,
    tracking_uri: str | None,
    executor: DaskExecutor,
    progress: Progress | None = None,
    trial_log: TrialLog | None = None,
) -> dict[str, TuningResult]:
    """Tune on the training and validation events of a partitioned table, trials in parallel.

    The events are those of the in-process search (the same rows, labels and weights, the
    same tuning folds), so the first trial (the current setting) has the in-process value.
    """
    from hepclf.cluster.client import worker_count

    table = data.table
    rows = np.sort(np.concatenate([data.split.train, data.split.validation]))
    normalizer = data.normalizer

    def data_key(kept: np.ndarray) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(rows[kept]).tobytes()).hexdigest()
        return fingerprint(
            table.digest(), digest, normalizer.center.tolist(), normalizer.scale.tolist()
        )

    return tune_rows(
        config,
        data.source,
        rows,
        table.label[rows],
        table.weight[rows],
        data_key,
        models=models,
        tracking_uri=tracking_uri,
        progress=progress,
        trial_log=trial_log,
        runner=parallel_trials(executor, worker_count(executor.client)),
    )
