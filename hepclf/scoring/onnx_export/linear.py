"""The linear model (Fisher or logistic), in double precision as NumPy evaluates it:
sigmoid(x . coef + intercept) for two classes, softmax over the K class functions otherwise."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hepclf.models.linear import Linear
from hepclf.scoring.onnx_export.graph import ClassifierGraph, classifier_model, const


def to_graph(clf: Linear, n_features: int) -> ClassifierGraph:
    """Graph: x -> double -> MatMul + Add -> Sigmoid -> ``score`` float32 [N, 1], or for
    K > 2 classes -> Softmax -> ``probabilities`` float32 [N, K] in ``classes_`` order."""
    coef = np.asarray(clf.coef_, np.float64).T  # (F, 1) or (F, K)
    multi = coef.shape[1] > 1
    output = "probabilities" if multi else "score"
    head = (
        helper.make_node("Softmax", ["logit"], ["p64"], axis=1)
        if multi
        else (helper.make_node("Sigmoid", ["logit"], ["p64"]))
    )
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("MatMul", ["x64", "coef"], ["projection"]),
        helper.make_node("Add", ["projection", "intercept"], ["logit"]),
        head,
        helper.make_node("Cast", ["p64"], [output], to=TensorProto.FLOAT),
    ]
    inits = [const("coef", coef), const("intercept", np.asarray(clf.intercept_).ravel())]
    return classifier_model(nodes, inits, n_features, output, n_outputs=coef.shape[1])
