"""``hepclf tune``, and the tuning step of ``hepclf train``: tune on the training events,
record every trial in MLflow, write the pasteable ``models:`` block.

The search itself (objective, folds, studies) is :mod:`hepclf.training.tuning`.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from hepclf.config import PipelineConfig
from hepclf.config.training import TuneConfig
from hepclf.ingest import ingest
from hepclf.runtime.files import write_atomic
from hepclf.runtime.progress import Progress
from hepclf.tracking.logging import PipelineTracker
from hepclf.tracking.tuning import log_tuning, mark_tuning_run, trial_run
from hepclf.training.executor import Executor
from hepclf.training.fit import select_models
from hepclf.training.prepare import PreparedData, prepare
from hepclf.training.results import TuningResult
from hepclf.training.tuning import training_events, tune_models, tuned_yaml, tuning_outcome

if TYPE_CHECKING:
    from hepclf.cluster.client import ClusterSettings


def tune_pipeline(
    config: PipelineConfig,
    data: PreparedData,
    models: list[str],
    tracking_uri: str | None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> dict[str, TuningResult]:
    """The pipeline's tuning step (nothing without a ``tune:`` block): tune on the training
    events of the prepared data, each trial a nested run of the active MLflow run.

    On a cluster (partitioned data, a Dask executor) the trials run as parallel tasks."""
    if config.tune is None:
        return {}
    from hepclf.cluster.prepare import PartitionedData

    if isinstance(data, PartitionedData):
        from hepclf.cluster.tune import tune_on_cluster

        results = tune_on_cluster(
            config,
            data,
            models,
            tracking_uri,
            executor,
            progress,
            trial_run,  # type: ignore[arg-type]
        )
    else:
        X, y, w = training_events(data.table, data.split, data.normalizer)
        results = tune_models(
            config,
            X,
            y,
            w,
            models=models,
            tracking_uri=tracking_uri,
            progress=progress,
            trial_log=trial_run,
            executor=executor,
        )
    for name, r in results.items():
        if progress is not None:
            progress.note(
                f"tuned {name}: {tuning_outcome(r)} (study {r.study_name!r} in {r.storage})"
            )
    return results


def run_tuning(
    config: PipelineConfig,
    *,
    models: list[str] | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    output: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    executor: Executor | None = None,
    cluster: ClusterSettings | None = None,
) -> dict[str, TuningResult]:
    """``hepclf tune``: ingest, prepare and tune, without the final fit.

    One MLflow run (tag ``hepclf.kind=tuning``) holds a nested run per trial, the best CV
    AUC per model and ``tuned_params.yaml``, which is also written to ``output``. Without
    a ``tune:`` block the defaults of :class:`~hepclf.config.training.TuneConfig` apply.
    ``executor`` runs the trials' fits (in this process by default); ``cluster``
    (``--workers`` or ``--scheduler``) ingests on the workers and runs the trials there,
    side by side.
    """
    progress = progress or Progress()
    if config.tune is None:
        config = config.model_copy(update={"tune": TuneConfig()})
    chosen = select_models(config, models)
    with ExitStack() as on_cluster:
        if cluster is not None and cluster.distributed:
            from hepclf.cluster.client import cluster_session
            from hepclf.cluster.prepare import ingest_and_prepare

            session = on_cluster.enter_context(cluster_session(cluster, tracking_uri))
            data: PreparedData = ingest_and_prepare(config, session, use_cache, progress)  # type: ignore[assignment]
            executor = session.executor  # type: ignore[assignment]
        else:
            data = prepare(config, ingest(config, use_cache=use_cache, progress=progress))
        with PipelineTracker(config, tracking_uri, experiment) as tracker:
            mark_tuning_run()
            results = tune_pipeline(
                config, data, list(chosen), tracker.tracking_uri, progress, executor
            )
            text = tuned_yaml(results)
            log_tuning(results, text)
    if output is not None:
        write_atomic(text.encode(), output)
    return results
