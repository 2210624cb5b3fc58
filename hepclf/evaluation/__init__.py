"""Classifier evaluation: HEP performance metrics (this package) and plots (``.plots``).

The plots live in a submodule so that computing metrics does not import matplotlib.
"""

from hepclf.evaluation.cuts import BestCut, CutScan
from hepclf.evaluation.metrics import (
    ClassifierReport,
    Measurement,
    SamplePair,
    accuracy,
    evaluate_classifier,
)
from hepclf.evaluation.overtraining import KSResult, ks_test, separation
from hepclf.evaluation.roc import RocCurve, roc_auc, roc_curve
from hepclf.evaluation.significance import ams, asimov_significance, simple_significance
from hepclf.evaluation.stats import effective_entries, weighted_correlation

__all__ = [
    "BestCut",
    "ClassifierReport",
    "CutScan",
    "KSResult",
    "Measurement",
    "RocCurve",
    "SamplePair",
    "accuracy",
    "ams",
    "asimov_significance",
    "effective_entries",
    "evaluate_classifier",
    "ks_test",
    "roc_auc",
    "roc_curve",
    "separation",
    "simple_significance",
    "weighted_correlation",
]
