"""Train one model of the zoo on prepared data, score its training and test events, and
evaluate it.

The pipeline calls :func:`~hepclf.training.prepare.prepare` once and :func:`train_model`
per model; k-fold and categories plan more fits of the same model (:mod:`.crossval`,
:mod:`.categories`). Every fit is a task of a plan that an executor runs (:mod:`.plan`). A
:class:`~hepclf.training.results.ModelResult` carries the fitted model, its scores, its
evaluation and the time spent fitting and predicting.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.evaluation import ClassifierReport, evaluate_classifier
from hepclf.evaluation.multiclass import MulticlassReport, evaluate_multiclass
from hepclf.models import MODEL_TYPES, Classifier, build_model
from hepclf.runtime.errors import ConfigError
from hepclf.training.categories import (
    CategoryReport,
    category_scores,
    evaluate_by_category,
    fit_categories,
)
from hepclf.training.crossval import train_folds
from hepclf.training.executor import Executor
from hepclf.training.plan import FitPlan, FitTask, execute_plan
from hepclf.training.prepare import PreparedData
from hepclf.training.results import ModelResult
from hepclf.training.scores import model_scores
from hepclf.training.weights import evaluated_fractions, expected_yields

if TYPE_CHECKING:
    from hepclf.runtime.progress import Progress


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


def fit_model(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    executor: Executor | None = None,
) -> tuple[Classifier, float]:
    """A fitted model of type ``name`` and the seconds its fit took.

    A model that stops early (or prunes) does so on the validation part; for the others the
    validation events train as well.
    """
    model = build_model(name, params, seed=config.seed)
    task = FitTask(model, data.fit_rows, data.validation_rows, name)
    [fitted] = execute_plan(FitPlan(data.source, [task], label=name), executor)
    return fitted.model, fitted.seconds


Parts = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(labels, scores, physical weights) of the test or training events."""


def evaluate_parts(
    config: PipelineConfig, test: Parts, train: Parts, yield_scale: float = 1.0
) -> ClassifierReport | MulticlassReport:
    """Two-class HEP metrics, or the multi-class ones for K > 2 classes."""
    if config.multiclass:
        return evaluate_multiclass(
            *test,
            *train,
            config.class_names,
            config.signal_classes,
            ks_threshold=config.evaluation.ks_threshold,
            ks_bins=config.evaluation.ks_bins,
            yield_scale=yield_scale,
        )
    return evaluate_classifier(
        *test,
        *train,
        ks_threshold=config.evaluation.ks_threshold,
        ks_bins=config.evaluation.ks_bins,
    )


def evaluate_scores(
    config: PipelineConfig, data: PreparedData, scores: dict[str, np.ndarray]
) -> ClassifierReport | MulticlassReport | CategoryReport:
    """HEP metrics of a model on its test and training scores (physical weights).

    With ``categories:`` the combined figures (each event scored by its own category's
    model) come with one report per category.
    """
    y_tr, w_tr = data.labels_and_weights("train")
    y_te, w_te = data.labels_and_weights("test")
    # test weights as expected events, as in the physics result: x luminosity ÷ the
    # evaluated fraction of each sample (significances and node yields on one footing)
    table, rows = data.table, data.split.test
    fractions = evaluated_fractions(table.sample, rows, len(table.sample_names))
    luminosity = config.result.luminosity if config.result else 1.0
    w_te = expected_yields(w_te, table.sample[rows], fractions, luminosity)
    test, train = (y_te, scores["test"], w_te), (y_tr, scores["train"], w_tr)
    yield_scale = 1.0
    if not config.categories:
        return evaluate_parts(config, test, train, yield_scale)
    assert data.table.category is not None
    return evaluate_by_category(
        config.categories,
        {part: data.table.category[getattr(data.split, part)] for part in ("train", "test")},
        test,
        train,
        lambda te, tr: evaluate_parts(config, te, tr, yield_scale),
    )


def train_model(
    name: str,
    params: dict[str, Any],
    config: PipelineConfig,
    data: PreparedData,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> ModelResult:
    """Fit one model (one per category with ``categories:``), score its training and test
    events, and evaluate it. With a k-fold split the model is a fold ensemble evaluated
    out-of-fold (:func:`hepclf.training.crossval.train_folds`). ``executor`` runs the fits.
    """
    if data.split.folds is not None:
        return train_folds(name, params, config, data, progress, executor)
    if config.categories:
        start = time.perf_counter()
        model: Any = fit_categories(name, params, config, data, executor)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = {p: category_scores(model, data, p)[0] for p in ("train", "test")}
    else:
        model, train_seconds = fit_model(name, params, config, data, executor)
        start = time.perf_counter()
        scores = {part: model_scores(model, data.rows(part)) for part in ("train", "test")}
    predict_seconds = time.perf_counter() - start
    report = evaluate_scores(config, data, scores)
    return ModelResult(
        name,
        model,
        report,
        train_seconds,
        scores,
        predict_seconds=predict_seconds,
    )
