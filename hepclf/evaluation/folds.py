"""The evaluation of a cross-validated model: out-of-fold report plus per-fold figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepclf.evaluation.metrics import ClassifierReport
from hepclf.evaluation.multiclass import MulticlassReport
from hepclf.evaluation.overtraining import KSResult
from hepclf.evaluation.roc import RocCurve


@dataclass(frozen=True)
class CrossValReport:
    """The evaluation of a cross-validated model.

    ``report`` measures the out-of-fold scores of every event as the "test" sample and all
    in-fold scores as the "train" sample; its KS results are the per-fold ones combined
    (largest D, smallest p times the number of folds, Bonferroni), so that a model that is
    fine is flagged no more often than with one split, and an over-trained one in any fold
    still is.

    With more than two classes ``report`` is a :class:`MulticlassReport`, ``fold_reports``
    holds each fold's multi-class evaluation (its events out-of-fold against the fold
    model's training events), ``roc_folds`` the signal node's ROC per fold (for the band
    plot), ``ks_folds`` is empty and ``auc_folds`` are the per-fold macro AUCs.
    """

    report: ClassifierReport | MulticlassReport
    roc_folds: list[RocCurve]
    ks_folds: list[tuple[KSResult, KSResult]]
    fold_reports: list[MulticlassReport] | None = None

    @property
    def auc_folds(self) -> list[float]:
        """Out-of-fold AUC of each fold's events (TMVA's "Fold i ROC-Int"); macro AUC for
        more than two classes."""
        if self.fold_reports is not None:
            return [r.auc_test for r in self.fold_reports]
        return [roc.auc for roc in self.roc_folds]

    @property
    def auc_folds_mean(self) -> float:
        return float(np.mean(self.auc_folds))

    @property
    def auc_folds_std(self) -> float:
        return float(np.std(self.auc_folds, ddof=1)) if len(self.auc_folds) > 1 else 0.0

    def fold_metrics(self) -> dict[str, float]:
        """Scalar metrics beside the report's: fold AUC mean and spread."""
        return {
            "auc_folds_mean": self.auc_folds_mean,
            "auc_folds_std": self.auc_folds_std,
            "folds": float(len(self.auc_folds)),
        }

    def per_fold(self) -> list[dict[str, float]]:
        """One dict per fold (for MLflow metrics with step = fold)."""
        if self.fold_reports is not None:
            return [
                {"auc_fold": r.auc_test, "ks_pvalue_min_fold": r.ks_pvalue_min}
                for r in self.fold_reports
            ]
        return [
            {
                "auc_fold": auc,
                "ks_pvalue_signal_fold": s.pvalue,
                "ks_pvalue_background_fold": b.pvalue,
            }
            for auc, (s, b) in zip(self.auc_folds, self.ks_folds, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Extra keys for a model's ``metrics.json`` entry."""
        if self.fold_reports is not None:
            return {
                "auc_folds": self.auc_folds,
                "auc_folds_mean": self.auc_folds_mean,
                "auc_folds_std": self.auc_folds_std,
                "ks_pvalue_min_folds": [r.ks_pvalue_min for r in self.fold_reports],
            }
        return {
            "auc_folds": self.auc_folds,
            "auc_folds_mean": self.auc_folds_mean,
            "auc_folds_std": self.auc_folds_std,
            "ks_pvalue_signal_folds": [s.pvalue for s, _ in self.ks_folds],
            "ks_pvalue_background_folds": [b.pvalue for _, b in self.ks_folds],
        }
