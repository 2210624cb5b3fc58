"""The linear model (Fisher or logistic): sigmoid(x . coef + intercept), in double precision
as NumPy evaluates it."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hepclf.deploy.onnx_export.graph import ClassifierGraph, classifier_model, const
from hepclf.models.linear import Linear


def to_graph(clf: Linear, n_features: int) -> ClassifierGraph:
    """Graph: x -> double -> MatMul + Add -> Sigmoid -> ``score`` float32 [N, 1]."""
    coef = np.asarray(clf._coef, np.float64).reshape(-1, 1)
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("MatMul", ["x64", "coef"], ["projection"]),
        helper.make_node("Add", ["projection", "intercept"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p64"]),
        helper.make_node("Cast", ["p64"], ["score"], to=TensorProto.FLOAT),
    ]
    inits = [const("coef", coef), const("intercept", [clf._intercept])]
    return classifier_model(nodes, inits, n_features, "score")
