"""The SVM: an RBF kernel machine (exact SVC, or Nystroem features + a linear model), then
the Platt sigmoid fitted on its decision values.

Written with plain ONNX operators in double precision rather than through skl2onnx:
skl2onnx has no converter for the Nystroem pipeline, and the decision value has to be fed
to our own Platt calibration, which is not part of the scikit-learn estimator.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, TensorProto, helper

from hepclf.deploy.onnx_export.graph import ClassifierGraph, classifier_model, const
from hepclf.errors import HepclfError
from hepclf.models.svm import SVM


def _rbf_nodes(prefix: str, x: str, out: str, centres: np.ndarray, gamma: float) -> tuple:
    """K[i, j] = exp(-gamma * |x_i - c_j|^2), expanded as |x|^2 + |c|^2 - 2 x.c like libsvm."""
    p = prefix
    nodes: list[NodeProto] = [
        helper.make_node("ReduceSumSquare", [x], [p + "x2"], axes=[1], keepdims=1),
        helper.make_node("MatMul", [x, p + "centres_t"], [p + "cross"]),
        helper.make_node("Mul", [p + "cross", p + "minus_two"], [p + "cross2"]),
        helper.make_node("Add", [p + "x2", p + "c2"], [p + "norms"]),
        helper.make_node("Add", [p + "norms", p + "cross2"], [p + "d2"]),
        helper.make_node("Mul", [p + "d2", p + "minus_gamma"], [p + "exponent"]),
        helper.make_node("Exp", [p + "exponent"], [out]),
    ]
    centres = np.asarray(centres, np.float64)
    inits = [
        const(p + "centres_t", centres.T),
        const(p + "c2", (centres**2).sum(axis=1)[None, :]),
        const(p + "minus_two", -2.0),
        const(p + "minus_gamma", -float(gamma)),
    ]
    return nodes, inits


def _decision_nodes(svm: object) -> tuple[list, list]:
    """Nodes from ``x64`` to the SVM decision value ``decision`` [N, 1]."""
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    if isinstance(svm, SVC):
        nodes, inits = _rbf_nodes("rbf/", "x64", "kernel", svm.support_vectors_, svm._gamma)
        weights, intercept = svm.dual_coef_.T, svm.intercept_
        features = "kernel"
    elif isinstance(svm, Pipeline) and [type(s).__name__ for _, s in svm.steps] == [
        "Nystroem",
        "SGDClassifier",
    ]:
        nystroem, linear = svm.steps[0][1], svm.steps[1][1]
        if nystroem.kernel != "rbf":
            raise HepclfError(f"svm export: Nystroem kernel {nystroem.kernel!r} is not supported")
        nodes, inits = _rbf_nodes("rbf/", "x64", "kernel", nystroem.components_, nystroem.gamma)
        nodes.append(helper.make_node("MatMul", ["kernel", "nystroem_map"], ["features"]))
        inits.append(const("nystroem_map", nystroem.normalization_.T))
        weights, intercept = linear.coef_.T, linear.intercept_
        features = "features"
    else:
        raise HepclfError(f"svm export: unexpected fitted estimator {type(svm).__name__}")
    nodes += [
        helper.make_node("MatMul", [features, "svm_weights"], ["dual"]),
        helper.make_node("Add", ["dual", "svm_intercept"], ["decision"]),
    ]
    inits += [const("svm_weights", weights), const("svm_intercept", intercept)]
    return nodes, inits


def to_graph(clf: SVM, n_features: int) -> ClassifierGraph:
    """Graph: x -> double -> kernel decision -> Platt sigmoid -> ``score`` float32 [N, 1]."""
    nodes, inits = _decision_nodes(clf._svm)
    platt = clf._platt
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        *nodes,
        helper.make_node("Mul", ["decision", "platt_a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "platt_b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p64"]),
        helper.make_node("Cast", ["p64"], ["score"], to=TensorProto.FLOAT),
    ]
    inits += [const("platt_a", platt.coef_[0, 0]), const("platt_b", platt.intercept_[0])]
    return classifier_model(nodes, inits, n_features, "score")
