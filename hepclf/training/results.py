"""What a pipeline run produces, as plain data: one home for the result objects.

Training fills a :class:`ModelResult` per model, evaluation adds its plots, reporting turns
the :class:`PipelineResult` into ``metrics.json``/``summary.md``, and tracking sends finished
results to MLflow (filling ``run_id``/``model_uri``). Nothing here imports MLflow, Rich or
matplotlib, so every layer can depend on this module without circles.

Extending: add a field with a default (cross-validation folds, a physics result, per-class
reports) and let the layer that owns the concept fill it; reporting and tracking read only
the fields they know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

if TYPE_CHECKING:
    from hepclf.evaluation import ClassifierReport
    from hepclf.evaluation.folds import CrossValReport
    from hepclf.models import Classifier
    from hepclf.physics import PhysicsResult


@dataclass
class ModelResult:
    """One trained and evaluated model of the zoo.

    ``scores`` maps a part ("train", "test") to the model's output on its events: the signal
    score (shape (n,)) for two classes, the (n, K) probabilities for K classes.
    """

    name: str
    classifier: Classifier
    report: ClassifierReport
    train_seconds: float
    scores: dict[str, np.ndarray]
    predict_seconds: float = 0.0
    plots: dict[str, Path] = field(default_factory=dict)
    model_uri: str = ""
    run_id: str = ""
    physics: PhysicsResult | None = None
    """With a ``result:`` block: the expected Z0 and limit on mu (pyhf)."""
    physics_files: dict[str, Path] = field(default_factory=dict)
    """The physics result's workspace.json, templates.root, plot and result.json."""
    folds: CrossValReport | None = None
    """k-fold only: per-fold AUCs and overtraining tests (``report`` is out-of-fold)."""
    tuning: TuningResult | None = None
    """When the pipeline tuned this model first: the study and its best parameters."""

    @property
    def overtrained(self) -> bool:
        """The evaluation's overtraining flag (KS test of train vs test scores)."""
        return bool(self.report.overtrained)

    def metrics(self) -> dict[str, float]:
        """Flat metrics (MLflow keys) including the timings."""
        flat = {
            **self.report.to_flat_dict(),
            "train_seconds": float(self.train_seconds),
            "predict_seconds": float(self.predict_seconds),
        }
        cap = max_train_events(self.classifier)
        if cap is not None:
            flat["max_train_events"] = float(cap)
        if self.folds is not None:
            flat |= self.folds.fold_metrics()
        if self.tuning is not None:
            flat["tuning_cv_auc"] = self.tuning.best_value
        if self.physics is not None:
            flat |= self.physics.to_flat_dict()
        return flat


def max_train_events(classifier: Any) -> int | None:
    """The model's cap on training events (bdt, rf, svm train on a stratified subsample of
    at most that many), also of the fold or category models it is made of; None: no cap."""
    for member in getattr(classifier, "models", [classifier]):  # a category model's
        get_params = getattr(member, "get_params", None)
        params = get_params(deep=True) if get_params is not None else {}
        for key, value in params.items():
            if key.split("__")[-1] == "max_train_events" and value is not None:
                return int(value)
    return None


@dataclass
class Selection:
    """Which model is the champion and why (over-trained models are passed over)."""

    best: str
    metric: str
    value: float
    passed_over: list[str] = field(default_factory=list)
    warning: str = ""
    note: str = ""
    flagged: list[str] = field(default_factory=list)
    """Every model flagged over-trained, chosen or not."""
    skip_flagged: bool = True
    """Whether flagged models could be passed over (``evaluation.skip_flagged``)."""

    def summary(self) -> dict[str, Any]:
        """``metrics.json``'s ``champion``: who, by which metric, and who was passed over."""
        return {
            "model": self.best,
            "metric": self.metric,
            "value": self.value,
            "skip_flagged": self.skip_flagged,
            "flagged": self.flagged,
            "passed_over": self.passed_over,
        }


@dataclass
class PipelineResult:
    """What a pipeline invocation produced.

    ``run_id``, ``experiment`` and ``tracking_uri`` describe the MLflow parent run;
    ``registered_version`` is set when the champion was registered; ``output`` when the
    files were published to an output folder; ``plots`` holds the run-level figures by name.
    """

    name: str
    results: dict[str, ModelResult]
    selection: Selection
    run_id: str = ""
    experiment: str = ""
    tracking_uri: str = ""
    registered_name: str | None = None
    registered_version: str | None = None
    output: Path | None = None
    wall_seconds: float = 0.0
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        """Name of the champion model."""
        return self.selection.best


@dataclass
class TuningResult:
    """The outcome of a study: the best parameters and what they scored."""

    model: str
    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    n_complete: int
    study_name: str
    storage: str
    trial_values: list[float] = field(default_factory=list)
    improved: bool = True
    """Whether a drawn setting beat the model's current one (the study's first trial):
    if not, ``best_params`` are the current settings, not a tuning outcome."""

    def to_yaml(self) -> str:
        """A ``models:`` block the user can paste into the pipeline YAML."""
        return yaml.safe_dump({"models": {self.model: self.best_params}}, sort_keys=False)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records under ``tuned_params`` and around it."""
        return {
            "tuned_params": self.best_params,
            "tuning_cv_auc": self.best_value,
            "tuning_trials": self.n_trials,
            "tuning_study": self.study_name,
            "tuning_improved": self.improved,
        }
