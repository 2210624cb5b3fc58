"""Send a pipeline run's finished results to MLflow: a parent run, one nested run per model.

The tracker computes nothing: training, evaluation (plots) and reporting have produced the
results and files it logs. Its run ends FINISHED, FAILED on an error, or KILLED when the
user or the batch system interrupted the run (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import yaml
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric
from mlflow.types import ColSpec, Schema

from hepclf.tracking.provenance import git_commit, git_dirty, package_versions
from hepclf.tracking.pyfunc import log_bundle
from hepclf.tracking.registry import register_model
from hepclf.tracking.store import resolve_tracking_uri, use_store
from hepclf.training.split import SPLIT_TAG, split_fingerprint

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.ingest import FeatureTable
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.results import ModelResult, PipelineResult
    from hepclf.training.split import SplitIndices

_BATCH = 1000


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Nested settings as dotted MLflow parameter names (lists as JSON)."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value
    return out


def end_status(kind: type[BaseException] | None) -> str:
    """MLflow run status for how a block ended: interrupted (Ctrl-C; SIGTERM, which the CLI
    turns into KeyboardInterrupt) is KILLED, an error FAILED."""
    if kind is None:
        return "FINISHED"
    if issubclass(kind, KeyboardInterrupt | SystemExit):
        return "KILLED"
    return "FAILED"


class TableDataset(MetaDataset):
    """The feature table as an MLflow dataset: explicit schema and a content digest, so
    logging it costs milliseconds instead of inspecting every cell."""

    def __init__(self, table: FeatureTable, source: str, name: str) -> None:
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        self.rows, self.width = len(table), len(table.columns) + 4
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
            resolved = resolve_dataset_source(source)
        super().__init__(resolved, name=name, digest=table.digest(), schema=_schema(table))

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self.rows, "num_elements": self.rows * self.width}

    def to_dict(self) -> dict[str, str]:
        """What MLflow stores: MetaDataset's fields plus the profile (size) of the table."""
        return {**super().to_dict(), "profile": json.dumps(self.profile)}


def _schema(table: FeatureTable) -> Schema:
    kind = {np.dtype("float32"): "float", np.dtype("float64"): "double"}
    columns = [ColSpec("float", c) for c in table.columns]  # ingest writes float32 features
    columns += [
        ColSpec("integer", "label"),
        ColSpec(kind.get(table.weight.dtype, "double"), "weight"),
        ColSpec("string", "sample"),
        ColSpec("long", "event_id"),
    ]
    return Schema(columns)


class PipelineTracker:
    """Context manager around the MLflow parent run of one pipeline invocation."""

    def __init__(
        self, config: PipelineConfig, tracking_uri: str | None, experiment: str | None
    ) -> None:
        self.config = config
        self.explicit_uri = tracking_uri
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment or config.experiment or config.name
        self.run_id = ""
        self._split_tag = ""

    def __enter__(self) -> PipelineTracker:
        self.tracking_uri = use_store(self.explicit_uri, create=True)
        mlflow.set_experiment(self.experiment)
        run = mlflow.start_run(run_name=f"{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.run_id = run.info.run_id
        self._log_provenance()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = end_status(kind)
        while mlflow.active_run() is not None:
            mlflow.end_run(status=status)

    def _log_provenance(self) -> None:
        commit = git_commit()
        tags = {"hepclf.pipeline": self.config.name, "hepclf.kind": "pipeline"}
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags["hepclf.git_dirty"] = str(git_dirty()).lower()
        tags.update({f"version.{k}": v for k, v in package_versions().items()})
        mlflow.set_tags(tags)
        mlflow.log_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False), "pipeline.yaml"
        )

    def log_data(self, table: FeatureTable, split: SplitIndices) -> None:
        """Parameters, the data summary and counts, and the dataset (schema, digest, size)."""
        config = self.config.model_dump(mode="json", exclude={"models"})
        params = flatten("", config, {})
        params = {k: v for k, v in params.items() if k not in ("samples", "features")}
        params["n_features"] = len(table.columns)
        params["features"] = ",".join(table.columns)
        params["models"] = ",".join(self.config.models)
        mlflow.log_params(params)
        self._split_tag = json.dumps(split_fingerprint(self.config, table), sort_keys=True)
        mlflow.set_tag(SPLIT_TAG, self._split_tag)  # `hepclf result` checks its split with it
        summary = {
            "events": len(table),
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
            "columns": table.columns,
            "samples": table.info.get("samples", []),
        }
        mlflow.log_dict(summary, "data_summary.json")
        config = self.config
        signal = np.isin(table.label, [config.class_names.index(c) for c in config.signal_classes])
        mlflow.log_metrics(
            {
                "events_total": len(table),
                "events_signal": int(signal.sum()),
                "events_background": int((~signal).sum()),
            }
        )
        dataset = TableDataset(table, str(self.config.base_dir), self.config.name)
        mlflow.log_input(dataset, context="training")

    def log_files(self, paths: Iterable[Path], folder: str | None = None) -> None:
        """Artifacts of the parent run (plots under ``plots/``, reports at the top)."""
        for path in paths:
            mlflow.log_artifact(str(path), folder)

    def log_model(
        self, result: ModelResult, bundle: ModelBundle, input_example: Any = None
    ) -> None:
        """A nested run with params, metrics, curves, plots, device and the pyfunc model.

        Fills ``result.run_id`` and ``result.model_uri``.
        """
        with mlflow.start_run(run_name=result.name, nested=True) as run:
            result.run_id = run.info.run_id
            model = result.classifier
            tags = {"hepclf.model": result.name, "hepclf.device": model.device_}
            if self._split_tag:
                tags[SPLIT_TAG] = self._split_tag
            mlflow.set_tags(tags)
            mlflow.log_params(flatten("", model.hyperparameters, {}))
            mlflow.log_metrics({k: float(v) for k, v in result.metrics().items()})
            if result.folds is not None:  # k-fold: one value per fold, step = fold
                for k, row in enumerate(result.folds.per_fold()):
                    mlflow.log_metrics(row, step=k)
            self._log_history(run.info.run_id, model.history_)
            for path in result.plots.values():
                mlflow.log_artifact(str(path), "plots")
            for path in result.physics_files.values():
                mlflow.log_artifact(str(path), "results")
            result.model_uri = log_bundle(bundle, input_example=input_example)

    def log_physics(self, result: ModelResult) -> None:
        """The physics result's metrics and files again on the model's run (the champion
        gains observed results, impacts and toys after every model was logged)."""
        if result.physics is None or not result.run_id:
            return
        client = mlflow.MlflowClient()
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in result.physics.to_flat_dict().items()]
        client.log_batch(result.run_id, metrics=metrics)
        for path in result.physics_files.values():
            client.log_artifact(result.run_id, str(path), "results")

    def _log_history(self, run_id: str, history: Mapping[str, list[float]]) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"curve_{key}", float(v), now, step)
            for key, values in history.items()
            for step, v in enumerate(values)
            if np.isfinite(v)
        ]
        client = mlflow.MlflowClient()
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def register(self, result: PipelineResult, name: str) -> str:
        """Register the champion under ``name`` with alias ``champion``; returns the version."""
        version = register_model(result.results[result.best].model_uri, name)
        result.registered_name, result.registered_version = name, version
        mlflow.set_tags({"hepclf.registered_model": name, "hepclf.registered_version": version})
        return version

    def log_result(self, result: PipelineResult, files: Iterable[Path]) -> None:
        """The champion, the run-level plots and the report files, on the parent run."""
        selection = result.selection
        tags = {"hepclf.best_model": selection.best}
        if selection.warning:
            tags["hepclf.best_model_warning"] = selection.warning[:5000]
        mlflow.set_tags(tags)
        mlflow.log_metric(f"best_{selection.metric}", selection.value)
        mlflow.log_metric("wall_seconds", result.wall_seconds)
        self.log_files(result.plots.values(), "plots")
        self.log_files(files)
