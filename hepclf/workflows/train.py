"""The tracked training pipeline: config -> ingest -> prepare -> train -> evaluate -> report
-> track.

One call trains every requested model of the zoo on the same prepared data, evaluates each
the way physicists judge classifiers (on test and training samples), draws the plots,
writes ``metrics.json``/``summary.md`` and records everything in MLflow: one parent run per
invocation, one nested run per model. Each step lives in its own module (``training``,
its ``evaluation.figures``, ``physics`` and ``report``, then ``tracking``); this one only
orders them.

Files are produced in a staging folder next to ``output`` and published with atomic renames
only when everything succeeded, so a failed or interrupted run leaves earlier results intact.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.evaluation import figures
from hepclf.ingest import FeatureTable, ingest
from hepclf.models import MODEL_TYPES
from hepclf.physics.inputs import PhysicsInputs
from hepclf.physics.step import finish_champion, model_physics, write_model_physics
from hepclf.runtime.files import publish_outputs, staging_dir
from hepclf.runtime.interrupts import Deferred
from hepclf.runtime.progress import Progress
from hepclf.tracking.logging import PipelineTracker
from hepclf.tracking.pyfunc import input_example_for
from hepclf.training.bundle import ModelBundle
from hepclf.training.crossval import fold_event_id
from hepclf.training.executor import Executor
from hepclf.training.fit import select_models, train_model
from hepclf.training.prepare import PreparedData, prepare
from hepclf.training.report import select_champion, write_reports
from hepclf.training.results import ModelResult, PipelineResult
from hepclf.training.tuning import tuned_yaml
from hepclf.training.weights import negative_weights_note
from hepclf.workflows.tune import tune_pipeline

if TYPE_CHECKING:
    from hepclf.cluster.client import ClusterSession, ClusterSettings

__all__ = ["ModelResult", "PipelineResult", "PreparedData", "prepare", "run_pipeline"]

INPUT_EXAMPLE_ROWS = 5


def run_pipeline(
    config: PipelineConfig,
    *,
    models: list[str] | None = None,
    output: str | Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    register: str | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    executor: Executor | None = None,
    cluster: ClusterSettings | None = None,
) -> PipelineResult:
    """Train, evaluate, report and track the zoo; returns every result as data.

    ``output`` receives ``metrics.json``, ``summary.md`` and ``plots/``; ``register`` names
    the registered model whose alias ``champion`` is moved to this run's best model.
    ``progress`` receives what happens (the CLI shows it; the default logs it);
    ``executor`` runs the fits (:mod:`hepclf.training.executor`; in this process by default).
    ``cluster`` (``--workers``/``--scheduler``) runs ingest, fits and scoring on Dask
    workers: the table then stays in partitions and this process holds a few bytes per event.
    """
    start = time.perf_counter()
    output = Path(output) if output is not None else None
    progress = progress or Progress()
    chosen = select_models(config, models)
    with ExitStack() as on_cluster:
        session = None
        if cluster is not None and cluster.distributed:
            from hepclf.cluster.client import cluster_session

            session = on_cluster.enter_context(cluster_session(cluster, tracking_uri))
        return _run(
            config,
            chosen,
            output,
            tracking_uri,
            experiment,
            register,
            use_cache,
            progress,
            executor,
            session,
            start,
        )


def _run(
    config: PipelineConfig,
    chosen: dict[str, dict],
    output: Path | None,
    tracking_uri: str | None,
    experiment: str | None,
    register: str | None,
    use_cache: bool,
    progress: Progress,
    executor: Executor | None,
    session: ClusterSession | None,
    start: float,
) -> PipelineResult:
    if session is None:
        table = ingest(config, use_cache=use_cache, progress=progress)
        data = prepare(config, table)
    else:
        from hepclf.cluster.prepare import ingest_and_prepare

        data = ingest_and_prepare(config, session, use_cache, progress)  # type: ignore[assignment]
        table = data.table
    progress.note(
        f"{config.name}: {len(table):,} events, {len(table.columns)} features; "
        f"train {len(data.split.train):,} / validation {len(data.split.validation):,} / "
        f"test {len(data.split.test):,}"
    )
    if data.negative_weights:
        progress.note(negative_weights_note(data.negative_weights, chosen, config.seed))
    staging = staging_dir(output)
    plots = staging / "plots"
    physics_inputs = PhysicsInputs(config, table, use_cache) if config.result else None
    try:
        with Deferred() as commit, PipelineTracker(config, tracking_uri, experiment) as tracker:
            tracker.log_data(table, data.split)
            train = data.split.train
            with progress.step("drawing the input plots"):
                signal = [config.class_names.index(c) for c in config.signal_classes]
                shown = train[figures.plot_sample(len(train))]  # read only these rows
                is_signal = np.isin(table.label[shown], signal).astype(np.int8)
                inputs = figures.input_plots(
                    table.features(shown),
                    table.columns,
                    is_signal,
                    table.weight[shown],
                    plots,
                    pads=config.padding_values,
                )
            tracker.log_files(inputs.values(), "plots")
            example_rows = data.split.test[:INPUT_EXAMPLE_ROWS]
            example, example_ids = table.features(example_rows), table.event_id[example_rows]
            held_out = None  # test events for a held-out learning curve, read only if drawn
            if any(hasattr(MODEL_TYPES[n], "staged_error") for n in chosen):
                test_rows = data.split.test[figures.plot_sample(len(data.split.test), 20_000)]
                held_out = (
                    data.normalizer.transform(table.features(test_rows)),
                    table.label[test_rows],
                    table.weight[test_rows],
                )
            tuned = tune_pipeline(
                config,
                data,
                list(chosen),
                tracker.tracking_uri,
                progress,
                executor if session is None else session.executor,  # type: ignore[arg-type]
            )
            for tuned_name, tuning in tuned.items():  # the final fit uses the best parameters
                chosen[tuned_name] = {**chosen[tuned_name], **tuning.best_params}
            results: dict[str, ModelResult] = {}
            bundles = {}
            side_by_side = {}  # on a cluster: the one-task fits of the zoo, in parallel
            if session is not None:
                from hepclf.cluster.train import fit_zoo_on_cluster, train_on_cluster

                side_by_side = fit_zoo_on_cluster(chosen, config, data, session.executor, progress)  # type: ignore[arg-type]
            for name, params in chosen.items():
                with progress.step(f"training {name} ..."):
                    if session is None:
                        result = train_model(name, params, config, data, progress, executor)
                    else:
                        result = train_on_cluster(
                            name,
                            params,
                            config,
                            data,  # type: ignore[arg-type]
                            session.executor,
                            progress,
                            side_by_side.get(name),
                        )
                    result.tuning = tuned.get(name)
                    parts = data.labels_and_weights("train"), data.labels_and_weights("test")
                    figures.model_plots(result, *parts, table.columns, plots, held_out=held_out)
                    del parts  # read per model: not held beside the next one's evaluation
                    bundle = bundles[name] = bundle_of(result, config, data)
                    if config.result is not None:
                        add_physics(
                            result, config, table, data.split.test, staging, physics_inputs, bundle
                        )
                    logged_example = input_example_for(bundle, example, example_ids)
                    tracker.log_model(result, bundle, logged_example)
                results[name] = result
                progress.model_done(result)
            selection = select_champion(
                results, config.evaluation.select_metric, config.skip_flagged
            )
            if config.result is not None:  # data are looked at for the champion only
                best = results[selection.best]
                with progress.step(f"physics result of the champion {best.name} ..."):
                    finish_champion(best, config, physics_inputs, bundles[best.name], staging)
                tracker.log_physics(best)
                for warning in best.physics.warnings if best.physics else []:
                    progress.warn(warning)
            result = PipelineResult(
                config.name,
                results,
                selection,
                run_id=tracker.run_id,
                experiment=tracker.experiment,
                tracking_uri=tracker.tracking_uri,
                plots={**inputs, "roc": figures.roc_overlay(results, plots)},
            )
            if selection.note:
                progress.note(selection.note)
            if selection.warning:
                progress.warn(selection.warning)
            result.wall_seconds = time.perf_counter() - start
            files = write_reports(result, staging)
            if tuned:  # the best parameters as a models: block to paste into the pipeline
                files["tuned_params"] = staging / "tuned_params.yaml"
                files["tuned_params"].write_text(tuned_yaml(tuned))
            tracker.log_result(result, files.values())
            commit.hold()  # registry, run status and files: all of them or none
            if register:
                version = tracker.register(result, register)
                progress.note(
                    f"registered {result.best} as models:/{register}/{version} (alias @champion)"
                )
            if output is not None:
                publish_outputs(staging, output)
        if output is not None:
            result.output = output
            result.plots = {k: output / p.relative_to(staging) for k, p in result.plots.items()}
            for r in results.values():
                r.plots = {k: output / p.relative_to(staging) for k, p in r.plots.items()}
                r.physics_files = {
                    k: output / p.relative_to(staging) for k, p in r.physics_files.items()
                }
        else:  # the staged plots are removed below; MLflow holds them
            result.plots = {}
            for r in results.values():
                r.plots = {}
                r.physics_files = {}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def add_physics(
    result: ModelResult,
    config: PipelineConfig,
    table: FeatureTable,
    rows: np.ndarray | None,
    output: Path,
    inputs: PhysicsInputs | None = None,
    bundle: ModelBundle | None = None,
) -> None:
    """Fill ``result.physics`` from its test scores and write its files under ``output``."""
    result.physics = model_physics(config, table, rows, result.scores["test"], inputs, bundle)
    files = write_model_physics(result.physics, output, result.name)
    result.physics_files = files


def bundle_of(result: ModelResult, config: PipelineConfig, data: PreparedData) -> ModelBundle:
    """The trained model with the feature specification and normaliser it needs."""
    return ModelBundle(
        result.name,
        list(config.features),
        data.normalizer,
        result.classifier,
        pipeline=config.name,
        class_names=config.class_names,
        event_id=fold_event_id(result.classifier, config),
    )
