"""Prepare the data once, then fit one model and score its training and test events.

The pipeline calls :func:`prepare` once and :func:`train_model` per model of the zoo;
cross-validation and tuning reuse the same two steps on other row sets. A
:class:`~hepclf.results.ModelResult` carries the fitted model, its scores, its evaluation
and the time spent fitting and predicting.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from hepclf.bundle import ModelBundle
from hepclf.category_training import (
    CategoryReport,
    category_scores,
    evaluate_by_category,
    fit_categories,
)
from hepclf.config import PipelineConfig
from hepclf.errors import ConfigError
from hepclf.evaluation import ClassifierReport, evaluate_classifier
from hepclf.evaluation.multiclass import MulticlassReport, evaluate_multiclass
from hepclf.models import MODEL_TYPES, Classifier, build_model
from hepclf.prepare import PreparedData
from hepclf.results import ModelResult
from hepclf.weights import evaluated_fractions, expected_yields

if TYPE_CHECKING:
    from hepclf.progress import Progress


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


def model_scores(model: Classifier, X: np.ndarray) -> np.ndarray:
    """The signal score (n,) of a two-class model; the (n, K) probabilities otherwise."""
    return scores_of(model.predict_proba(X))


def scores_of(proba: np.ndarray) -> np.ndarray:
    """The signal score (n,) from two-class probabilities; (n, K) probabilities as they are."""
    return proba[:, 1] if proba.shape[1] == 2 else proba


def fit_model(
    name: str, params: dict[str, Any], config: PipelineConfig, data: PreparedData
) -> tuple[Classifier, float]:
    """A fitted model of type ``name`` and the seconds its fit took."""
    model = build_model(name, params, seed=config.seed)
    start = time.perf_counter()
    with warnings.catch_warnings():  # said once per run by the pipeline, not once per model
        warnings.filterwarnings("ignore", message=".*negative weights.*")
        if model.uses_validation:  # early stopping / pruning on the validation part
            model.fit(data.X_fit, data.y_fit, data.w_fit, data.X_val, data.y_val, data.w_val)
        else:  # nothing to stop early on: the validation events train as well
            model.fit(*(np.concatenate(p) for p in data.fit_and_validation()))
    return model, time.perf_counter() - start


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
) -> ModelResult:
    """Fit one model (one per category with ``categories:``), score its training and test
    events, and evaluate it. With a k-fold split the model is a fold ensemble evaluated
    out-of-fold (:func:`hepclf.crossval.train_folds`)."""
    if data.split.folds is not None:
        from hepclf.crossval import train_folds

        return train_folds(name, params, config, data, progress)
    if config.categories:
        start = time.perf_counter()
        model: Any = fit_categories(name, params, config, data)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = {p: scores_of(category_scores(model, data, p)[0]) for p in ("train", "test")}
    else:
        model, train_seconds = fit_model(name, params, config, data)
        features = {part: data.part(part)[0] for part in ("train", "test")}
        start = time.perf_counter()
        scores = {part: model_scores(model, X) for part, X in features.items()}
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


def bundle_of(result: ModelResult, config: PipelineConfig, data: PreparedData) -> ModelBundle:
    """The trained model with the feature specification and normaliser it needs."""
    from hepclf.crossval import fold_event_id

    return ModelBundle(
        result.name,
        list(config.features),
        data.normalizer,
        result.classifier,
        pipeline=config.name,
        class_names=config.class_names,
        event_id=fold_event_id(result.classifier, config),
    )
