"""xgboost through onnxmltools, cut at the early-stopping round that predictions use."""

from __future__ import annotations

from hepclf.models.xgb import XGB
from hepclf.scoring.onnx_export.graph import TARGET_OPSET, ClassifierGraph


def to_graph(clf: XGB, n_features: int) -> ClassifierGraph:
    """Graph: x -> TreeEnsembleClassifier -> ``probabilities`` [N, K] (K = 2: signal in
    column 1)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = clf.booster_
    best = getattr(booster, "best_iteration", None)
    if best is not None:
        booster = booster[: best + 1]  # the trees predict_proba uses (iteration_range)
    model = convert_xgboost(
        booster,
        initial_types=[("x", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
    )
    return ClassifierGraph(model, "probabilities", 1)
