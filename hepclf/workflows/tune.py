"""``hepclf tune``, and the tuning step of ``hepclf train``: tune on the training events,
record every trial in MLflow, write the pasteable ``models:`` block.

The search itself (objective, folds, studies) is :mod:`hepclf.training.tuning`.
"""

from __future__ import annotations

from pathlib import Path

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


def tune_pipeline(
    config: PipelineConfig,
    data: PreparedData,
    models: list[str],
    tracking_uri: str | None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> dict[str, TuningResult]:
    """The pipeline's tuning step (nothing without a ``tune:`` block): tune on the training
    events of the prepared data, each trial a nested run of the active MLflow run."""
    if config.tune is None:
        return {}
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
) -> dict[str, TuningResult]:
    """``hepclf tune``: ingest, prepare and tune, without the final fit.

    One MLflow run (tag ``hepclf.kind=tuning``) holds a nested run per trial, the best CV
    AUC per model and ``tuned_params.yaml``, which is also written to ``output``. Without
    a ``tune:`` block the defaults of :class:`~hepclf.config.training.TuneConfig` apply.
    ``executor`` runs the trials' fits (in this process by default).
    """
    progress = progress or Progress()
    if config.tune is None:
        config = config.model_copy(update={"tune": TuneConfig()})
    chosen = select_models(config, models)
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
