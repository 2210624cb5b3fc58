"""Score files in parallel on Dask: a LocalCluster of processes, or an existing scheduler.

One task per file. Workers load each model themselves from its pinned source (once per
worker process), so nothing large travels through the scheduler; with a remote scheduler
(dask-jobqueue), workers need hepclf installed, the input files, the output folder and the
MLflow tracking server (or model folder) reachable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hepclf.runtime.errors import HepclfError
from hepclf.scoring.file_job import FileResult, ScoreSettings, score_file
from hepclf.scoring.scorers import ModelSpec, models_from_specs


def _load_models(specs: tuple[ModelSpec, ...], tracking_uri: str) -> None:
    models_from_specs(specs, tracking_uri)  # cached in the worker process; nothing sent back


def warm_workers(client: Any, specs: tuple[ModelSpec, ...], tracking_uri: str) -> None:
    """Load the models on every worker now: a worker that cannot fails once, clearly."""
    try:
        client.run(_load_models, specs, tracking_uri)
    except Exception as err:
        lines = str(err).strip().splitlines()
        raise HepclfError(
            f"the Dask workers cannot load the models ({type(err).__name__}: "
            f"{lines[0] if lines else 'no details'}); workers "
            "need hepclf installed and the model source reachable (MLflow tracking server or a "
            "shared folder)"
        ) from None


def _score_on_worker(
    path: str,
    output: str,
    specs: tuple[ModelSpec, ...],
    tracking_uri: str,
    settings: ScoreSettings,
) -> FileResult:
    return score_file(path, Path(output), models_from_specs(specs, tracking_uri), settings)


def run_on_dask(
    client: Any,
    plan: Sequence[tuple[str, Path]],
    specs: tuple[ModelSpec, ...],
    tracking_uri: str,
    settings: ScoreSettings,
    on_done: Callable[[FileResult], None],
) -> list[FileResult]:
    """Submit one task per file and collect the results as they finish, in input order."""
    from dask.distributed import as_completed

    futures = {
        client.submit(
            _score_on_worker, path, str(output), specs, tracking_uri, settings, pure=False
        ): (path, output)
        for path, output in plan
    }
    results: dict[str, FileResult] = {}
    try:
        for future in as_completed(futures):
            path, output = futures[future]
            try:
                result = future.result()
            except Exception as err:  # the worker died (memory, signal) or could not unpickle
                result = FileResult(
                    path, str(output), "failed", error=f"{path}: {type(err).__name__}: {err}"
                )
            on_done(result)
            results[path] = result
    except BaseException:
        client.cancel(list(futures))
        raise
    return [results[path] for path, _ in plan]
