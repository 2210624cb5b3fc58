"""The MLflow side of ``hepclf result``: find the models a training run logged, and record
a result run that points back at it (the training run stays as it was)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException

from hepclf.physics.step import RESULTS_DIR, check_model_name
from hepclf.runtime.errors import HepclfError
from hepclf.training.split import SPLIT_TAG

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
        return {_tagged_name(run): _model_uri(run)}, run_id
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    models = {
        _tagged_name(c): _model_uri(client.get_run(c.info.run_id))
        for c in children
        if "hepclf.model" in c.data.tags and c.info.status == "FINISHED"
    }
    if not models:
        raise HepclfError(
            f"run {run_id} has no finished model runs (nested runs tagged hepclf.model); "
            "give the pipeline run of `hepclf train` or a model URI"
        )
    return dict(sorted(models.items())), run_id


def _tagged_name(run: mlflow.entities.Run) -> str:
    """The model name a run's ``hepclf.model`` tag gives, refused unless a plain name."""
    where = f"run {run.info.run_id} (tag hepclf.model)"
    return check_model_name(run.data.tags["hepclf.model"], where)


def recorded_split(run_id: str) -> str | None:
    """The split a training run recorded (JSON of ``split_fingerprint``), None if none."""
    return mlflow.get_run(run_id).data.tags.get(SPLIT_TAG)


def run_of(uri: str) -> str:
    """The run that logged a model URI ('' for a folder or a model without one)."""
    try:
        return mlflow.models.get_model_info(uri).run_id or ""
    except Exception:  # a bundle folder, or a model MLflow cannot describe
        return ""


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
