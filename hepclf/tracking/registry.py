"""Find trained models: MLflow URIs (models:/, runs:/, m-...) or local folders, to bundles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from hepclf.runtime.errors import HepclfError
from hepclf.training.bundle import SPEC_FILE, ModelBundle, find_bundle

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


def alias_version(name: str, alias: str) -> str:
    """The version the registry's ``alias`` of model ``name`` points at now."""
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        raise HepclfError(
            f"model 'models:/{name}@{alias}': the registry at {mlflow.get_tracking_uri()} has "
            f"no alias {alias!r} for model {name!r} "
            f"({err.message.splitlines()[0]}). List models and aliases in the MLflow UI or with "
            "`GET /models` of `hepclf serve`, and check --tracking-uri / MLFLOW_TRACKING_URI."
        ) from None


class ModelNotFound(HepclfError):
    """No such registered model, version or alias (the service answers 404)."""


def resolve_version(name: str, alias: str | None, version: int | None) -> int:
    """The version number that ``version`` or ``alias`` (default champion) designates."""
    client = mlflow.MlflowClient()
    try:
        if version is not None:
            return int(client.get_model_version(name, str(version)).version)
        return int(client.get_model_version_by_alias(name, alias or CHAMPION_ALIAS).version)
    except MlflowException as err:
        what = f"version {version}" if version is not None else f"alias {alias or CHAMPION_ALIAS!r}"
        raise ModelNotFound(
            f"registered model {name!r} has no {what} ({err.message.splitlines()[0]}); "
            "GET /models lists the models, versions and aliases"
        ) from None


def _version_entry(client: mlflow.MlflowClient, version: Any, aliases: list[str]) -> dict[str, Any]:
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except MlflowException:  # the run was deleted; the version stays usable
            metrics = {}
    return {
        "version": int(version.version),
        "aliases": aliases,
        "run_id": version.run_id,
        "status": version.status,
        "created": version.creation_timestamp,
        "metrics": metrics,
    }


def list_models() -> list[dict[str, Any]]:
    """Every registered model: aliases, the latest version and each aliased version, with
    the metrics of the run that produced it (e.g. auc_test)."""
    client = mlflow.MlflowClient()
    listing = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        for model in page:
            aliases: dict[str, str] = dict(model.aliases or {})
            versions = client.search_model_versions(f"name='{model.name}'")
            numbers = sorted((int(v.version) for v in versions), reverse=True)
            shown = sorted({*numbers[:1], *(int(v) for v in aliases.values())}, reverse=True)
            by_number = {int(v.version): v for v in versions}
            listing.append(
                {
                    "name": model.name,
                    "description": model.description or "",
                    "aliases": {a: int(v) for a, v in aliases.items()},
                    "latest_version": numbers[0] if numbers else None,
                    "versions": [
                        _version_entry(
                            client,
                            by_number[n],
                            sorted(a for a, v in aliases.items() if int(v) == n),
                        )
                        for n in shown
                        if n in by_number
                    ],
                }
            )
        token = page.token
        if not token:
            return listing
