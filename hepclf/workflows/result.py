"""``hepclf result``: the physics result of already-trained models, without retraining.

The pipeline YAML gives the data and the (possibly changed) ``result:`` block; the models
come from MLflow. The events are ingested again and split exactly as in training (same
seed, same rule), each model scores its test part (with k-fold, every event by the fold
model that did not train on it), and the result goes to a new MLflow run that points at
the training run, so the original run stays as it was.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.ingest import FeatureTable, ingest
from hepclf.physics.analysis import PhysicsResult
from hepclf.physics.champion import best_expected, champion_physics
from hepclf.physics.inputs import PhysicsInputs, score_table
from hepclf.physics.step import (
    RESULTS_DIR,
    check_model_name,
    model_physics,
    write_model_physics,
)
from hepclf.runtime.errors import ConfigError, HepclfError
from hepclf.runtime.files import publish_outputs, staging_dir
from hepclf.runtime.progress import Progress
from hepclf.tracking.registry import load_bundle
from hepclf.tracking.result_runs import log_result_run, model_sources, recorded_split, run_of
from hepclf.training.bundle import ModelBundle
from hepclf.training.executor import Executor, InProcessExecutor
from hepclf.training.split import pipeline_split, split_differences, split_fingerprint

if TYPE_CHECKING:
    from hepclf.cluster.client import ClusterSettings


@dataclass
class RecomputedResult:
    """What ``hepclf result`` produced: per-model results, files and the MLflow run."""

    results: dict[str, PhysicsResult]
    files: dict[str, dict[str, Path]]
    run_id: str
    source_run_id: str
    seconds: float


def chosen_sources(sources: dict[str, str], models: list[str], source: str) -> dict[str, str]:
    """The ``--models`` subset of a run's models, in the order given; unknown names are an
    error listing the run's models."""
    if "" in sources:
        raise HepclfError(
            f"--models selects models of a pipeline run; {source!r} is a single model"
        )
    unknown = [m for m in models if m not in sources]
    if unknown:
        raise HepclfError(
            f"--models: {', '.join(map(repr, unknown))} not among the finished models of run "
            f"{source!r}: {', '.join(sources)}"
        )
    return {m: sources[m] for m in models}


def check_split(config: PipelineConfig, table: FeatureTable, run_id: str, model: str) -> None:
    """Refuse a pipeline whose split differs from the training run's: its test part would
    hold training events. Runs and models without a record can only be warned about."""
    if not run_id:
        warnings.warn(
            f"{model}: no training run is known, so the split cannot be checked; the result "
            "is only right if the pipeline's samples and 'split:' are those of training",
            stacklevel=2,
        )
        return
    recorded = recorded_split(run_id)
    if recorded is None:
        warnings.warn(
            f"run {run_id} records no split (trained before hepclf recorded it), so the split "
            "cannot be checked; the result is only right if the pipeline's samples and "
            "'split:' are those of training",
            stacklevel=2,
        )
        return
    differences = split_differences(json.loads(recorded), split_fingerprint(config, table))
    if differences:
        raise ConfigError(
            f"{model}: the pipeline does not split the events as training run {run_id} did ("
            + "; ".join(differences)
            + "): training events would be counted as test events. Give `hepclf result` the "
            "pipeline YAML the model was trained with; only its 'result:' block may change"
        )


def bundle_scores(
    bundle: ModelBundle,
    config: PipelineConfig,
    table: FeatureTable,
    on_cluster: ClusterScores | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's scores on the evaluated rows, and those rows.

    Test part: the split of training, rebuilt. k-fold: every event, each scored by the fold
    model that did not train on it (by event id, as the bundle does, or by the split's
    seeded folds when there are no ids). Category models: each event's category from the
    table. ``on_cluster`` scores the rows of a partitioned table on the workers.
    """
    kfold = config.split.method == "kfold"
    if bundle.fold_columns and not kfold:
        raise ConfigError(
            f"model {bundle.name!r} is a k-fold model but the pipeline splits with "
            f"{config.split.method!r}; give the pipeline YAML the model was trained with"
        )
    if bundle.routing_columns and table.category is None:
        raise ConfigError(
            f"model {bundle.name!r} has per-category models; give the pipeline YAML with "
            "the 'categories:' it was trained with"
        )
    split = pipeline_split(config, table)
    ensemble = kfold and not bundle.fold_columns and not bundle.routing_columns
    if ensemble and (not hasattr(bundle.classifier, "predict_proba_folds") or split.folds is None):
        raise ConfigError(
            f"model {bundle.name!r} is not a fold ensemble but the pipeline splits with "
            "kfold; give the pipeline YAML the model was trained with"
        )
    rows = split.test
    folds = split.folds[rows] if ensemble and split.folds is not None else None
    score = partial(rows_scores, bundle, ensemble)
    if on_cluster is not None:
        return on_cluster(score, table, rows, folds), rows
    return score(table.subset(rows), folds), rows  # type: ignore[arg-type]


ClusterScores = Callable[..., np.ndarray]
"""Scores rows of a partitioned table on the workers (:mod:`hepclf.cluster.scores`)."""


def rows_scores(
    bundle: ModelBundle, ensemble: bool, rows: FeatureTable, folds: np.ndarray | None
) -> np.ndarray:
    """The model's scores of the events of ``rows`` (all of a slice of the table).

    ``ensemble``: a fold ensemble without event ids scores each event with the model of
    its split fold (``folds``); other models score as :func:`score_table` does (k-fold
    models by event id, category models by the table's categories).
    """
    if not ensemble:
        return score_table(bundle, rows)
    X = bundle.normalizer.transform(bundle.features_from_frame(rows.features_frame()))
    proba = np.asarray(bundle.classifier.predict_proba_folds(X, folds))
    return proba[:, 1] if proba.shape[1] == 2 else proba


def model_result(
    source: tuple[str, str],
    config: PipelineConfig,
    table: FeatureTable,
    source_run: str,
    inputs: PhysicsInputs | None = None,
    on_cluster: ClusterScores | None = None,
) -> tuple[str, PhysicsResult, ModelBundle]:
    """One model's physics result: ``source`` is (name or '', model URI); returns the name
    (the bundle's own where none was given) and the result. The split is checked against
    the training run's (``source_run``, else the run that logged the model); ``on_cluster``
    scores a partitioned table's test events on the workers."""
    name, uri = source
    try:
        bundle = load_bundle(uri)
        name = check_model_name(name or bundle.name, f"model {uri}")
        check_split(config, table, source_run or run_of(uri), f"model {name!r}")
        scores, rows = bundle_scores(bundle, config, table, on_cluster)
        physics = model_physics(config, table, rows, scores, inputs, bundle)
    except HepclfError as err:  # its message names the model
        if str(err).startswith(f"model {name!r}"):
            raise
        raise type(err)(f"model {name or uri!r}: {err}") from None
    return name, physics, bundle


def recompute_results(
    source: str,
    config: PipelineConfig,
    output: Path,
    *,
    log: bool = True,
    use_cache: bool = True,
    progress: Progress | None = None,
    models: list[str] | None = None,
    executor: Executor | None = None,
    cluster: ClusterSettings | None = None,
) -> RecomputedResult:
    """Ingest, split as in training, score with the logged models, fit, write and log.

    ``models``: only these models of a pipeline run (default: all of them). Files are
    staged and published into ``output/results/<model>/`` only when every model
    succeeded, so a failure leaves earlier results as they were; its error names the model.
    ``executor`` runs the models' scoring and fits (one task per model; in this process by
    default). ``cluster`` (``--workers``/``--scheduler``) ingests on the Dask workers and
    scores the test events there, partition by partition; the fits run here.
    """
    if config.result is None:
        raise ConfigError("the pipeline has no 'result:' block; add one (see docs/physics.md)")
    progress = progress or Progress()
    start = time.perf_counter()
    with ExitStack() as on_cluster:
        scores = None
        if cluster is not None and cluster.distributed:
            from hepclf.cluster.client import cluster_session
            from hepclf.cluster.ingest import ingest_on_cluster
            from hepclf.cluster.scores import scores_on_cluster

            session = on_cluster.enter_context(cluster_session(cluster, None))
            table: FeatureTable = ingest_on_cluster(  # type: ignore[assignment]
                config, session.executor, session.table_dir, use_cache=use_cache, progress=progress
            )
            scores, executor = partial(scores_on_cluster, executor=session.executor), None
        else:
            table = ingest(config, use_cache=use_cache, progress=progress)
        outcome = _recompute(
            source, config, output, table, log, use_cache, progress, models, executor, scores
        )
    outcome.seconds = time.perf_counter() - start
    return outcome


def _recompute(
    source: str,
    config: PipelineConfig,
    output: Path,
    table: FeatureTable,
    log: bool,
    use_cache: bool,
    progress: Progress,
    models: list[str] | None,
    executor: Executor | None,
    on_cluster: ClusterScores | None = None,
) -> RecomputedResult:
    sources, source_run = model_sources(source)
    if models:
        sources = chosen_sources(sources, models, source)
    results: dict[str, PhysicsResult] = {}
    bundles: dict[str, ModelBundle] = {}
    inputs = PhysicsInputs(config, table, use_cache)
    staging = staging_dir(output)
    try:
        names = ", ".join(name or uri for name, uri in sources.items())
        with progress.step(f"physics result of {names} ..."):
            done = (executor or InProcessExecutor()).map(
                partial(
                    model_result,
                    config=config,
                    table=table,
                    source_run=source_run,
                    inputs=inputs,
                    on_cluster=on_cluster,
                ),
                list(sources.items()),
                label="physics results",
            )
        for name, physics, bundle in done:
            results[name], bundles[name] = physics, bundle
        best = best_expected(results, config.evaluation.select_metric)
        with progress.step(f"physics result of the champion {best} ..."):
            folder = staging / RESULTS_DIR / best
            champion_physics(results[best], config, inputs, bundles[best], folder, best)
        for name, result in results.items():
            write_model_physics(result, staging, name)
        run_id = log_result_run(config, results, staging, source_run) if log else ""
        publish_outputs(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {
        name: {p.name: p for p in sorted((output / RESULTS_DIR / name).iterdir())}
        for name in results
    }
    return RecomputedResult(results, files, run_id, source_run, 0.0)
