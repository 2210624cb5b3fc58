"""Random forest (scikit-learn), regularised by default so it does not over-train."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import joblib
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.ensemble import RandomForestClassifier

from hepclf.models.base import Classifier, check_inputs, two_columns


class ForestParams(BaseModel):
    """A fully grown forest memorises its training events; leaf size and bootstrap size
    keep the train and test score distributions compatible. ``min_samples_leaf=1,
    max_samples=null`` is the classic over-trained configuration."""

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(300, ge=1)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: float = Field(
        0.01, gt=0, description="events per leaf: a count if >= 1, else a fraction of events"
    )
    max_features: Literal["sqrt", "log2"] | float = Field("sqrt", description="features per split")
    max_samples: float | None = Field(
        0.5, gt=0, le=1, description="bootstrap fraction per tree; null = all events"
    )
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"
    n_jobs: int = Field(-1, description="parallel trees; -1 uses all cores")


class Forest(Classifier):
    """scikit-learn ``RandomForestClassifier``; importances are its mean impurity decrease."""

    name = "rf"
    Params = ForestParams
    hp: ForestParams

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        w_val: np.ndarray | None = None,
    ) -> Self:
        X, y, w = check_inputs(X, y, sample_weight)
        p = self.hp
        leaf = int(p.min_samples_leaf) if p.min_samples_leaf >= 1 else p.min_samples_leaf
        self._forest = RandomForestClassifier(
            n_estimators=p.n_estimators,
            max_depth=p.max_depth,
            min_samples_leaf=leaf,
            max_features=p.max_features,
            max_samples=p.max_samples,
            criterion=p.criterion,
            n_jobs=p.n_jobs,
            random_state=self.seed,
        ).fit(X, y, sample_weight=w)
        self.feature_importances_ = self._forest.feature_importances_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # one thread: scikit-learn's threads sum the trees in a varying order, which would
        # make repeated predictions differ in the last bit
        self._forest.n_jobs = 1
        return two_columns(self._forest.predict_proba(check_inputs(X)[0])[:, 1])

    def _save_model(self, directory: Path) -> None:
        joblib.dump(self._forest, directory / "forest.joblib", compress=3)

    def _load_model(self, directory: Path) -> None:
        self._forest = joblib.load(directory / "forest.joblib")
