"""Classifier performance as HEP analyses report it, weighted by event weights.

Conventions used throughout: labels are 0 (background) and 1 (signal), a higher score is
more signal-like, and a cut selects ``score >= cut``. Weights may be ``None`` (every event
counts once).

Negative weights (NLO generators) are kept with their sign in every sum: dropping them
would bias the distributions. Each class must still have a positive total weight. Where
negative weights make a cumulative efficiency step back, interpolation on the ROC curve
follows its running maximum; statistical errors use Σw², to which negative weights add;
histogram bins with a non-positive content are skipped by the separation; and cuts where
a significance is undefined (no expected background, a deficit) are not considered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import labelled
from hepclf.evaluation.cuts import BestCut, CutScan
from hepclf.evaluation.overtraining import KSResult, ks_test, separation
from hepclf.evaluation.roc import RocCurve
from hepclf.evaluation.significance import ams, asimov_significance, simple_significance


class SamplePair(NamedTuple):
    """One quantity measured on the test and on the training sample."""

    test: float
    train: float


class Measurement(NamedTuple):
    """A value with its statistical error."""

    value: float
    error: float


def accuracy(
    y: ArrayLike, score: ArrayLike, weight: ArrayLike | None = None, cut: float = 0.5
) -> float:
    """Weighted fraction of events classified correctly when ``score >= cut`` means signal."""
    is_signal, s, w = labelled(y, score, weight)
    correct = (s >= cut) == is_signal
    return float(w[correct].sum() / w.sum())


@dataclass(frozen=True, eq=False)
class ClassifierReport:
    """Everything ``evaluate_classifier`` measured; dict keys of the mappings are the points.

    ``bkg_rejection_at_eff_s``, ``separation_test``, the best accuracy and the significances
    are measured on the test sample only, so that the cut choice is not tuned on events the
    classifier was trained on.
    """

    roc_test: RocCurve
    roc_train: RocCurve
    accuracy_test: float
    accuracy_train: float
    accuracy_best_test: BestCut
    eff_s_at_eff_b: dict[float, SamplePair]
    bkg_rejection_at_eff_s: dict[float, Measurement]
    separation_test: float
    ks_signal: KSResult
    ks_background: KSResult
    ks_threshold: float
    significance_best: BestCut
    asimov_best: BestCut
    ams_best: BestCut

    @property
    def auc_test(self) -> float:
        return self.roc_test.auc

    @property
    def auc_train(self) -> float:
        return self.roc_train.auc

    @property
    def overtrained(self) -> bool:
        """TMVA's criterion: train and test scores differ for signal or for background."""
        return min(self.ks_signal.pvalue, self.ks_background.pvalue) < self.ks_threshold

    def to_flat_dict(self) -> dict[str, float]:
        """Metrics for ``mlflow.log_metrics``: keys use only letters, digits, ``_`` and ``.``.

        Values can be ``inf`` (no background passing) or ``nan`` (undefined significance).
        """
        flat = {
            "auc_test": self.auc_test,
            "auc_train": self.auc_train,
            "accuracy_test": self.accuracy_test,
            "accuracy_train": self.accuracy_train,
            "accuracy_best_test": self.accuracy_best_test.value,
            "best_cut": self.accuracy_best_test.cut,
        }
        for point, pair in self.eff_s_at_eff_b.items():
            flat[f"eff_s_at_eff_b_{_point_key(point)}_test"] = pair.test
            flat[f"eff_s_at_eff_b_{_point_key(point)}_train"] = pair.train
        for point, rejection in self.bkg_rejection_at_eff_s.items():
            flat[f"bkg_rejection_at_eff_s_{_point_key(point)}_test"] = rejection.value
            flat[f"bkg_rejection_at_eff_s_{_point_key(point)}_test_err"] = rejection.error
        flat |= {
            "separation_test": self.separation_test,
            "ks_statistic_signal": self.ks_signal.statistic,
            "ks_pvalue_signal": self.ks_signal.pvalue,
            "ks_statistic_background": self.ks_background.statistic,
            "ks_pvalue_background": self.ks_background.pvalue,
            "overtrained": float(self.overtrained),
        }
        for name in ("significance", "asimov", "ams"):
            best: BestCut = getattr(self, f"{name}_best")
            flat[f"{name}_best"] = best.value
            flat[f"{name}_best_cut"] = best.cut
        return flat

    def to_summary(self) -> dict[str, Any]:
        """Nested, JSON-ready view for a run summary (efficiency points as string keys)."""
        return {
            "auc_test": self.auc_test,
            "auc_train": self.auc_train,
            "accuracy_test": self.accuracy_test,
            "accuracy_train": self.accuracy_train,
            "accuracy_best_test": self.accuracy_best_test._asdict(),
            "eff_s_at_eff_b": {
                _point_key(p): pair._asdict() for p, pair in self.eff_s_at_eff_b.items()
            },
            "bkg_rejection_at_eff_s": {
                _point_key(p): m._asdict() for p, m in self.bkg_rejection_at_eff_s.items()
            },
            "separation_test": self.separation_test,
            "ks_pvalue_signal": self.ks_signal.pvalue,
            "ks_pvalue_background": self.ks_background.pvalue,
            "ks_threshold": self.ks_threshold,
            "overtrained": self.overtrained,
            "significance": {
                "simple": self.significance_best._asdict(),
                "asimov": self.asimov_best._asdict(),
                "ams": self.ams_best._asdict(),
            },
        }


def evaluate_classifier(
    y_test: ArrayLike,
    score_test: ArrayLike,
    w_test: ArrayLike | None,
    y_train: ArrayLike,
    score_train: ArrayLike,
    w_train: ArrayLike | None,
    *,
    ks_threshold: float = 0.05,
    eff_b_points: Sequence[float] = (0.01, 0.1, 0.3),
    eff_s_points: Sequence[float] = (0.5, 0.7, 0.9),
    separation_bins: int = 40,
    ks_bins: int | None = 40,
    signal_scale: float = 1.0,
    background_scale: float = 1.0,
) -> ClassifierReport:
    """Measure a trained classifier on its test and training samples.

    ``signal_scale`` and ``background_scale`` multiply the test-sample sums in the
    significances, e.g. to go from test-sample weights to expected yields. ``ks_bins``
    selects TMVA's binned KS test (the default, 40 bins as in its overtraining plot) or,
    with None, the unbinned test.
    """
    for name, points in (("eff_b_points", eff_b_points), ("eff_s_points", eff_s_points)):
        if not all(0.0 < p <= 1.0 for p in points):
            raise ValueError(f"{name} must lie in (0, 1], got {tuple(points)}")
    test_signal, test_score, test_weight = labelled(y_test, score_test, w_test)
    test_scan = CutScan.from_arrays(test_signal, test_score, test_weight)
    roc_test = RocCurve.from_scan(test_scan)
    scales = (signal_scale, background_scale)
    best_cuts = {  # read off the test scan now, so that it is gone before the training one
        "accuracy_best_test": test_scan.best_accuracy(),
        "significance_best": test_scan.best(simple_significance, *scales),
        "asimov_best": test_scan.best(asimov_significance, *scales),
        "ams_best": test_scan.best(ams, *scales),
    }
    del test_scan
    train_signal, train_score, train_weight = labelled(y_train, score_train, w_train)
    roc_train = RocCurve.from_scan(CutScan.from_arrays(train_signal, train_score, train_weight))

    eff_s_test = roc_test.eff_s_at(eff_b_points)
    eff_s_train = roc_train.eff_s_at(eff_b_points)
    rejection, rejection_err = roc_test.rejection_at(eff_s_points)

    ks_signal = ks_test(
        train_score[train_signal],
        test_score[test_signal],
        train_weight[train_signal],
        test_weight[test_signal],
        ks_bins,
    )
    ks_background = ks_test(
        train_score[~train_signal],
        test_score[~test_signal],
        train_weight[~train_signal],
        test_weight[~test_signal],
        ks_bins,
    )
    return ClassifierReport(
        roc_test=roc_test,
        roc_train=roc_train,
        accuracy_test=accuracy(test_signal, test_score, test_weight),
        accuracy_train=accuracy(train_signal, train_score, train_weight),
        eff_s_at_eff_b={
            float(p): SamplePair(float(t), float(r))
            for p, t, r in zip(eff_b_points, eff_s_test, eff_s_train, strict=True)
        },
        bkg_rejection_at_eff_s={
            float(p): Measurement(float(v), float(e))
            for p, v, e in zip(eff_s_points, rejection, rejection_err, strict=True)
        },
        separation_test=separation(test_signal, test_score, test_weight, separation_bins),
        ks_signal=ks_signal,
        ks_background=ks_background,
        ks_threshold=ks_threshold,
        **best_cuts,
    )


def _point_key(point: float) -> str:
    """0.01 -> "0.01" (never exponent notation, whose '-' MLflow-style keys avoid)."""
    return np.format_float_positional(point, trim="-")
