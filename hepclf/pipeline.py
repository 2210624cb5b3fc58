"""The tracked training pipeline: ingest -> split -> normalise -> train -> evaluate -> plot -> log.

One call trains every requested model of the zoo on the same prepared data, evaluates each
the way physicists judge classifiers (on test and training samples), draws the plots and
records everything in MLflow: one parent run per invocation, one nested run per model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from hepclf.bundle import ModelBundle
from hepclf.config import PipelineConfig
from hepclf.errors import ConfigError
from hepclf.evaluation import ClassifierReport, evaluate_classifier
from hepclf.ingest import FeatureTable, ingest
from hepclf.models import MODEL_TYPES, Classifier, build_model
from hepclf.normalize import Normalizer
from hepclf.split import SplitIndices, split_table
from hepclf.weights import training_weights


@dataclass
class PreparedData:
    """Everything the zoo trains and is evaluated on, prepared once for all models."""

    table: FeatureTable
    split: SplitIndices
    normalizer: Normalizer
    X_fit: np.ndarray
    y_fit: np.ndarray
    w_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    w_val: np.ndarray

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised features, labels and physical weights of 'train' or 'test'."""
        rows = getattr(self.split, name)
        X = self.normalizer.transform(self.table.X[rows])
        return X, self.table.label[rows], self.table.weight[rows]


@dataclass
class ModelResult:
    """One trained and evaluated model of the zoo."""

    name: str
    classifier: Classifier
    report: ClassifierReport
    train_seconds: float
    scores: dict[str, np.ndarray]
    model_uri: str = ""
    run_id: str = ""
    plots: dict[str, Path] = field(default_factory=dict)


@dataclass
class PipelineResult:
    """What a pipeline invocation produced."""

    run_id: str
    experiment: str
    tracking_uri: str
    results: dict[str, ModelResult]
    best: str
    registered_version: str | None = None
    output: Path | None = None


def prepare(config: PipelineConfig, table: FeatureTable) -> PreparedData:
    """Split, fit the normaliser on training rows only, and derive training weights."""
    split = split_table(table, config.split)
    normalizer = Normalizer.fit(table.X[split.train], config.normalization)

    def fit_arrays(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep, w = training_weights(
            table.label[rows], table.weight[rows], config.class_balance, config.negative_weights
        )
        kept = rows[keep]
        return normalizer.transform(table.X[kept]), table.label[kept], w

    X_fit, y_fit, w_fit = fit_arrays(split.train)
    X_val, y_val, w_val = fit_arrays(split.validation)
    return PreparedData(table, split, normalizer, X_fit, y_fit, w_fit, X_val, y_val, w_val)


def select_models(config: PipelineConfig, names: list[str] | None) -> dict[str, dict[str, Any]]:
    """The models to train with their parameters; unknown names are an error listing the zoo."""
    chosen = names or list(config.models)
    unknown = [n for n in chosen if n not in MODEL_TYPES]
    if unknown:
        raise ConfigError(
            f"unknown model(s) {unknown}; the zoo has {sorted(MODEL_TYPES)} (set them under "
            "'models:' in the pipeline or with --models)"
        )
    return {n: dict(config.models.get(n) or {}) for n in chosen}


def train_and_evaluate(
    name: str, params: dict[str, Any], config: PipelineConfig, data: PreparedData
) -> ModelResult:
    """Fit one model and evaluate it on the test and training samples (physical weights)."""
    model = build_model(name, params, seed=config.seed)
    start = time.perf_counter()
    with warnings.catch_warnings():  # said once per run by run_pipeline, not once per model
        warnings.filterwarnings("ignore", message=".*negative weights.*")
        model.fit(data.X_fit, data.y_fit, data.w_fit, data.X_val, data.y_val, data.w_val)
    seconds = time.perf_counter() - start
    X_tr, y_tr, w_tr = data.part("train")
    X_te, y_te, w_te = data.part("test")
    s_tr, s_te = model.predict_proba(X_tr)[:, 1], model.predict_proba(X_te)[:, 1]
    report = evaluate_classifier(
        y_te,
        s_te,
        w_te,
        y_tr,
        s_tr,
        w_tr,
        ks_threshold=config.evaluation.ks_threshold,
        ks_bins=config.evaluation.ks_bins,
    )
    return ModelResult(name, model, report, seconds, {"train": s_tr, "test": s_te})


def bundle_of(result: ModelResult, config: PipelineConfig, data: PreparedData) -> ModelBundle:
    """The trained model with the feature specification and normaliser it needs."""
    return ModelBundle(
        result.name, list(config.features), data.normalizer, result.classifier, pipeline=config.name
    )


def best_model(results: dict[str, ModelResult], metric: str) -> str:
    """Name of the model with the highest ``metric`` (a key of the flat metrics)."""
    values = {n: r.report.to_flat_dict().get(metric) for n, r in results.items()}
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise ConfigError(
            f"evaluation.select_metric {metric!r} is not a metric of the models; use e.g. "
            "'auc_test' or 'eff_s_at_eff_b_0.1_test'"
        )
    return max(values, key=lambda n: float(values[n]))


def publish_outputs(staging: Path, output: Path) -> None:
    """Move finished files into ``output`` one by one with atomic renames.

    Results are produced in a staging folder first, so a failed run leaves the previous
    results in ``output`` untouched.
    """
    output.mkdir(parents=True, exist_ok=True)
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            target = output / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def staging_dir(output: Path | None) -> Path:
    """A private folder next to ``output`` (same file system, so renames are atomic)."""
    parent = (output.parent if output else Path(tempfile.gettempdir())).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".hepclf-staging-", dir=parent))


def run_pipeline(
    config: PipelineConfig,
    *,
    models: list[str] | None = None,
    output: Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    register: str | None = None,
    console: Console | None = None,
    use_cache: bool = True,
) -> PipelineResult:
    """Train, evaluate and track the zoo; write plots, ``metrics.json`` and ``summary.md``."""
    from hepclf.tracking.logging import PipelineTracker

    console = console or Console()
    chosen = select_models(config, models)
    table = ingest(config, use_cache=use_cache)
    data = prepare(config, table)
    console.print(
        f"[bold]{config.name}[/]: {len(table):,} events, {len(table.columns)} features; "
        f"train {len(data.split.train):,} / validation {len(data.split.validation):,} / "
        f"test {len(data.split.test):,}"
    )
    negative = int((data.w_fit < 0).sum() + (data.w_val < 0).sum())
    if negative:
        console.print(
            f"note: {negative:,} training/validation events have negative weights; the models "
            "train on |w| (set negative_weights: drop to leave them out); evaluation keeps signs"
        )
    staging = staging_dir(output)
    try:
        with PipelineTracker(config, data, staging, tracking_uri, experiment, console) as tracker:
            for name, params in chosen.items():
                with console.status(f"training [bold]{name}[/] ..."):
                    result = train_and_evaluate(name, params, config, data)
                tracker.log_model(result, bundle_of(result, config, data))
                console.print(
                    f"  {name}: test AUC {result.report.auc_test:.4f}, "
                    f"{result.train_seconds:.1f} s on {result.classifier.device_}"
                )
            pipeline_result = tracker.finish(register)
        if output is not None:
            publish_outputs(staging, output)
            pipeline_result.output = output
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pipeline_result
