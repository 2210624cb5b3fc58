"""Find trained models: MLflow URIs (models:/, runs:/, m-...) or local folders, to bundles."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from hepclf.bundle import SPEC_FILE, ModelBundle, find_bundle
from hepclf.errors import HepclfError

CHAMPION_ALIAS = "champion"


_RUN_URI_HINT = (
    " A run's model is named after its model type: runs:/RUN_ID/bdt, runs:/RUN_ID/xgb, ... "
    "(MLflow 3 keeps no runs:/RUN_ID/model)."
)


def load_bundle(model: str) -> ModelBundle:
    """Load ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/ID/PATH`` or a folder."""
    local = Path(model).expanduser()
    if not local.exists():
        if ":/" not in model:
            raise HepclfError(
                f"model {model!r}: no such folder, and not an MLflow URI; give models:/NAME@ALIAS, "
                "models:/NAME/VERSION, runs:/RUN_ID/MODEL_TYPE (e.g. runs:/RUN_ID/bdt) or a "
                "model folder"
            )
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model))
        except MlflowException as err:
            hint = _RUN_URI_HINT if model.startswith("runs:/") else ""
            raise HepclfError(
                f"model {model!r} cannot be fetched from MLflow at {mlflow.get_tracking_uri()}: "
                f"{err.message.splitlines()[0]}. Check the name, version or alias "
                "(`hepclf compare`, or the MLflow UI) and MLFLOW_TRACKING_URI / --tracking-uri."
                + hint
            ) from None
    bundle_dir = find_bundle(local)
    if bundle_dir is None:
        raise HepclfError(f"model {model!r}: {local} holds no hepclf model ({SPEC_FILE} missing)")
    return ModelBundle.load(bundle_dir)


def register_model(model_uri: str, name: str, alias: str = CHAMPION_ALIAS) -> str:
    """Register ``model_uri`` under ``name`` and point ``alias`` at the new version.

    MLflow prints "Successfully registered model" and "Created version" lines straight to
    stderr (not through a logger); hepclf reports the registration itself, so they are
    silenced unless ``HEPCLF_VERBOSE=1`` (``hepclf --verbose``).
    """
    from mlflow.utils.logging_utils import disable_logging, enable_logging

    quiet = os.environ.get("HEPCLF_VERBOSE") != "1"
    if quiet:
        disable_logging()
    try:
        version = mlflow.register_model(model_uri, name)
    finally:
        if quiet:
            enable_logging()
    mlflow.MlflowClient().set_registered_model_alias(name, alias, version.version)
    return str(version.version)
