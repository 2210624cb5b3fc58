"""Record a pipeline invocation in MLflow: a parent run and one nested run per model."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import yaml
from mlflow.entities import Metric
from rich.console import Console

from hepclf import report
from hepclf.config import PipelineConfig
from hepclf.evaluation import plots
from hepclf.tracking.provenance import git_commit, git_dirty, package_versions
from hepclf.tracking.pyfunc import log_bundle
from hepclf.tracking.registry import CHAMPION_ALIAS, register_model

if TYPE_CHECKING:
    from hepclf.bundle import ModelBundle
    from hepclf.pipeline import ModelResult, PipelineResult, PreparedData

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_BATCH = 1000


def tracking_uri_for(explicit: str | None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else SQLite ``mlflow.db`` here."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value
    return out


class PipelineTracker:
    """Context manager around the parent run; plots and files are staged in ``staging``."""

    def __init__(
        self,
        config: PipelineConfig,
        data: PreparedData,
        staging: Path,
        tracking_uri: str | None,
        experiment: str | None,
        console: Console,
    ) -> None:
        self.config = config
        self.data = data
        self.staging = staging
        self.plots = staging / "plots"
        self.tracking_uri = tracking_uri_for(tracking_uri)
        self.experiment = experiment or config.experiment or config.name
        self.console = console
        self.results: dict[str, ModelResult] = {}
        self.run_id = ""

    def __enter__(self) -> PipelineTracker:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.experiment)
        run = mlflow.start_run(run_name=f"{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.run_id = run.info.run_id
        self._log_provenance()
        self._log_data()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED" if kind else "FINISHED")

    def _log_provenance(self) -> None:
        commit = git_commit()
        tags = {"hepclf.pipeline": self.config.name, "hepclf.kind": "pipeline"}
        if commit:
            tags["mlflow.source.git.commit"] = commit
            tags["hepclf.git_dirty"] = str(git_dirty()).lower()
        tags.update({f"version.{k}": v for k, v in package_versions().items()})
        mlflow.set_tags(tags)
        config = self.config.model_dump(mode="json", exclude={"models"})
        params = _flatten("", config, {})
        params = {k: v for k, v in params.items() if k not in ("samples", "features")}
        params["n_features"] = len(self.data.table.columns)
        params["features"] = ",".join(self.data.table.columns)
        params["models"] = ",".join(self.config.models)
        mlflow.log_params(params)
        mlflow.log_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False), "pipeline.yaml"
        )

    def _log_data(self) -> None:
        table, split = self.data.table, self.data.split
        summary = {
            "events": len(table),
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
            "columns": table.columns,
            "samples": table.info.get("samples", []),
        }
        mlflow.log_dict(summary, "data_summary.json")
        mlflow.log_metrics(
            {
                "events_total": len(table),
                "events_signal": int((table.label == 1).sum()),
                "events_background": int((table.label == 0).sum()),
            }
        )
        frame = table.to_pandas()
        dataset = mlflow.data.from_pandas(
            frame, source=str(self.config.base_dir), name=self.config.name, targets="label"
        )
        mlflow.log_input(dataset, context="training")
        train = split.train
        X, y, w = table.X[train], table.label[train], table.weight[train]
        files = [
            plots.plot_correlation_matrices(
                X,
                table.columns,
                y,
                w,
                self.plots / "correlation_signal.png",
                self.plots / "correlation_background.png",
            ),
            plots.plot_feature_distributions(X, table.columns, y, w, self.plots / "features.png"),
        ]
        for path in _paths(files):
            mlflow.log_artifact(str(path), "plots")

    def log_model(self, result: ModelResult, bundle: ModelBundle) -> None:
        """A nested run with params, metrics, curves, plots, device and the pyfunc model."""
        with mlflow.start_run(run_name=result.name, nested=True) as run:
            result.run_id = run.info.run_id
            mlflow.set_tags(
                {"hepclf.model": result.name, "hepclf.device": result.classifier.device_}
            )
            mlflow.log_params(_flatten("", result.classifier.params, {}))
            metrics = dict(result.report.to_flat_dict())
            metrics["train_seconds"] = result.train_seconds
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            self._log_history(run.info.run_id, result.classifier.history_)
            for path in self._model_plots(result):
                mlflow.log_artifact(str(path), "plots")
            result.model_uri = log_bundle(bundle)
        self.results[result.name] = result

    def _log_history(self, run_id: str, history: dict[str, list[float]]) -> None:
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

    def _model_plots(self, result: ModelResult) -> list[Path]:
        table, split = self.data.table, self.data.split
        y_tr, w_tr = table.label[split.train], table.weight[split.train]
        y_te, w_te = table.label[split.test], table.weight[split.test]
        s_tr, s_te = result.scores["train"], result.scores["test"]
        r = result.report
        files = [
            plots.plot_overtraining(
                s_tr[y_tr == 1],
                w_tr[y_tr == 1],
                s_tr[y_tr == 0],
                w_tr[y_tr == 0],
                s_te[y_te == 1],
                w_te[y_te == 1],
                s_te[y_te == 0],
                w_te[y_te == 0],
                r.ks_signal.pvalue,
                r.ks_background.pvalue,
                self.plots / f"{result.name}_overtraining.png",
                result.name,
            )
        ]
        curves = _per_iteration_curves(result.classifier.history_)
        if curves:
            files.append(
                plots.plot_learning_curves(
                    curves,
                    self.plots / f"{result.name}_learning_curve.png",
                    f"{result.name} learning curve",
                )
            )
        if result.classifier.feature_importances_ is not None:
            files.append(
                plots.plot_feature_importance(
                    result.classifier.feature_importances_,
                    table.columns,
                    self.plots / f"{result.name}_importance.png",
                    result.name,
                )
            )
        result.plots = {p.stem: p for p in _paths(files)}
        return _paths(files)

    def finish(self, register: str | None) -> PipelineResult:
        """ROC overlay, best model, registry, metrics.json and summary.md; logged to the parent."""
        from hepclf.pipeline import PipelineResult, best_model

        roc = plots.plot_roc_overlay(
            {
                n: (r.report.roc_test.eff_s, r.report.roc_test.eff_b)
                for n, r in self.results.items()
            },
            self.plots / "roc.png",
            aucs={n: r.report.auc_test for n, r in self.results.items()},
        )
        mlflow.log_artifact(str(roc), "plots")
        best = best_model(self.results, self.config.evaluation.select_metric)
        result = PipelineResult(self.run_id, self.experiment, self.tracking_uri, self.results, best)
        mlflow.set_tags({"hepclf.best_model": best})
        metric = self.config.evaluation.select_metric
        mlflow.log_metric(f"best_{metric}", float(self.results[best].report.to_flat_dict()[metric]))
        if register:
            result.registered_version = register_model(self.results[best].model_uri, register)
            mlflow.set_tags(
                {
                    "hepclf.registered_model": register,
                    "hepclf.registered_version": result.registered_version,
                }
            )
            self.console.print(
                f"registered [bold]{best}[/] as models:/{register}/{result.registered_version} "
                f"(alias @{CHAMPION_ALIAS})"
            )
        header = {
            "pipeline": self.config.name,
            "mlflow run": self.run_id,
            "experiment": self.experiment,
            "tracking URI": self.tracking_uri,
            "best model": f"{best} (by {metric})",
        }
        (self.staging / "metrics.json").write_text(
            json.dumps(report.metrics_document(result), indent=2, default=float)
        )
        (self.staging / "summary.md").write_text(report.summary_markdown(result, header))
        mlflow.log_artifact(str(self.staging / "metrics.json"))
        mlflow.log_artifact(str(self.staging / "summary.md"))
        self.console.print(report.comparison_table(result))
        return result


def _per_iteration_curves(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """Curves sharing one x axis (an entry per epoch or tree); the schedule is left out.

    A model may also record the learning rate or checkpoints every few trees; drawn on the
    same axis those would mislead, so only the longest, aligned curves are plotted.
    """
    curves = {k: v for k, v in history.items() if k != "learning_rate" and v}
    longest = max((len(v) for v in curves.values()), default=0)
    return {k: v for k, v in curves.items() if len(v) == longest}


def _paths(items: list[Any]) -> list[Path]:
    """Plot functions return one path or a tuple of paths; flatten to a list."""
    out: list[Path] = []
    for item in items:
        out.extend(Path(p) for p in (item if isinstance(item, list | tuple) else [item]))
    return out
