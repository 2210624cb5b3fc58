"""The MLflow side of ``hepclf result``: find the models a training run logged, and record
a result run that points back at it (the training run stays as it was)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from hepclf.errors import HepclfError
from hepclf.physics.step import RESULTS_DIR

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.physics.analysis import PhysicsResult

_RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


def model_sources(source: str) -> tuple[dict[str, str], str]:
    """Model URIs by model name, and the training run they come from ('' if unknown).

    ``source`` is a pipeline run (``runs:/ID`` or the bare ID: all its models), a model's
    run, or any model URI or folder ``hepclf`` loads (``models:/NAME@ALIAS``, ...).
    """
    match = _RUN_ID.match(source.strip())
    if not match:
        return {"": source}, ""
    run_id = match.group(1)
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise HepclfError(
            f"run {run_id} is not in the MLflow store at {mlflow.get_tracking_uri()}: "
            f"{err.message.splitlines()[0]}. Check --tracking-uri / MLFLOW_TRACKING_URI"
        ) from None
    if "hepclf.model" in run.data.tags:
        return {run.data.tags["hepclf.model"]: _model_uri(run)}, run_id
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    models = {
        c.data.tags["hepclf.model"]: _model_uri(client.get_run(c.info.run_id))
        for c in children
        if "hepclf.model" in c.data.tags and c.info.status == "FINISHED"
    }
    if not models:
        raise HepclfError(
            f"run {run_id} has no finished model runs (nested runs tagged hepclf.model); "
            "give the pipeline run of `hepclf train` or a model URI"
        )
    return dict(sorted(models.items())), run_id


def _model_uri(run: mlflow.entities.Run) -> str:
    """The model a run logged: MLflow 3 keeps it as a logged model (``models:/m-...``)."""
    outputs = run.outputs.model_outputs if run.outputs else []
    if outputs:
        return f"models:/{outputs[0].model_id}"
    return f"runs:/{run.info.run_id}/model"


def log_result_run(
    config: PipelineConfig,
    results: dict[str, PhysicsResult],
    output: Path,
    source_run: str,
) -> str:
    """A new run (in the training run's experiment) with metrics per model and the files."""
    if source_run:
        experiment_id = mlflow.get_run(source_run).info.experiment_id
    else:
        experiment_id = mlflow.set_experiment(config.experiment or config.name).experiment_id
    tags = {"hepclf.kind": "result", "hepclf.pipeline": config.name}
    if source_run:
        tags["hepclf.source_run"] = source_run
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{config.name}-result", tags=tags
    ) as run:
        mlflow.log_dict(config.result.model_dump(mode="json"), "result_config.json")
        for name, result in results.items():
            mlflow.log_metrics({f"{name}.{k}": v for k, v in result.to_flat_dict().items()})
            mlflow.log_artifacts(str(output / RESULTS_DIR / name), f"{RESULTS_DIR}/{name}")
        return run.info.run_id
