"""The training sections: ``split:``, ``normalization:``, ``categories:``, ``tune:`` and
``evaluation:`` (how events are divided, scaled, grouped, searched over and judged)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from hepclf.config.base import StrictModel


class SplitConfig(StrictModel):
    """How events are divided into training, validation (early stopping) and test parts.

    ``kfold`` trains ``folds`` models, each on the other folds, and scores every event with
    the model that did not train on it (folds by ``event_id % folds`` when the pipeline has
    ``event_id``, else a seeded random assignment); ``folds`` defaults to 5 there, 2 else.
    """

    method: Literal["random", "event_id", "kfold"] = "random"
    """`random` (seeded, stratified), `event_id` (`event_id % folds == test_fold` is test) or
    `kfold`"""
    test_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    """share of events in the test part (`random`)"""
    validation_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    """share of the non-test events held out for early stopping"""
    seed: int = 42
    """seed of the split (the models have the top-level `seed`)"""
    folds: int = Field(default=2, ge=2)
    """number of folds (`event_id`, `kfold`; 5 for `kfold` when not given)"""
    test_fold: int = Field(default=0, ge=0)
    """the fold that is the test part (`event_id`)"""

    @model_validator(mode="before")
    @classmethod
    def _kfold_default_folds(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") == "kfold" and "folds" not in data:
            return {**data, "folds": 5}
        return data

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.test_fold >= self.folds:
            raise ValueError(f"test_fold must be below folds ({self.folds}), got {self.test_fold}")
        return self


class NormalizationConfig(StrictModel):
    """Feature scaling fitted on the training part only."""

    method: Literal["standard", "minmax", "robust", "none"] = "standard"
    """feature scaling, fitted on the training part and saved inside every model"""
    clip: float | None = Field(default=None, gt=0.0)
    """limit scaled values to ±clip"""


class TuneConfig(StrictModel):
    """Budgeted hyperparameter search (Optuna) run before the final fit of each model.

    The objective is the cross-validated AUC on the training events only; trials stop at
    ``timeout_s`` or after ``trials``. The study is kept in SQLite (``storage``, default
    ``hepclf_tuning.db`` beside the tracking store), so an interrupted search resumes.
    """

    timeout_s: float = Field(default=300.0, gt=0.0)
    """wall-clock budget of the search per model, in seconds"""
    trials: int | None = Field(default=None, ge=1)
    """stop after this many trials (default: only the time budget)"""
    folds: int = Field(default=3, ge=2)
    """cross-validation folds of the objective (training events only)"""
    models: list[str] | None = None
    """the models to tune (default: every model of `models:`)"""
    storage: str | None = None
    """Optuna storage URL (default: `hepclf_tuning.db` beside the tracking store)"""
    pruning: bool = True
    """stop unpromising trials early (median pruner)"""


class EvaluationConfig(StrictModel):
    """Evaluation and model-selection settings.

    ``skip_flagged``: pass over models flagged over-trained when choosing the champion.
    Default: yes for a single split (their test figures may be optimistic), no under
    k-fold, whose out-of-fold figures are honest; the flag is reported either way.
    """

    ks_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    """a KS p-value below this flags the model as overtrained"""
    ks_bins: int | None = Field(default=40, ge=2)
    """bins of ROOT's binned KS test; `null`: the unbinned test"""
    select_metric: str = "auc_test"
    """the `metrics.json` key that picks the best model"""
    skip_flagged: bool | None = None
    """pass over models flagged over-trained for the champion (default: yes, but not under
    k-fold)"""


class CategoryConfig(StrictModel):
    """One analysis category: events passing ``selection`` get their own model (TMVA Category)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """the category name (an identifier)"""
    selection: str
    """the events of this category; every event must pass exactly one"""
