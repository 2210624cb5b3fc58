"""hepclf's own AdaBoost BDT as an ai.onnx.ml TreeEnsembleRegressor.

The BDT keeps its forest as dense complete binary trees (``feature_``, ``threshold_``,
``leaf_class_``, ``alpha_``; see :class:`hepclf.models.bdt.BDT`): per tree, inner node
``h`` (heap order) sends an event right when ``x[feature] >= threshold`` (threshold +inf:
everything left) and each leaf votes for one class.

Two classes: the score is ``(sum(alpha * h) / sum(alpha) + 1) / 2`` with h = +-1, so each
leaf gets the weight ``alpha * h / (2 * sum(alpha))`` and the ensemble the base value 0.5.
K > 2 classes (SAMME): each leaf adds ``alpha`` to its class's vote V_k; scikit-learn's
probabilities softmax((K V / A - 1) / (K-1)^2) (A = sum(alpha)) equal softmax(V * K / (A
(K-1)^2)), since a softmax ignores a shift common to all classes.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hepclf.models.bdt import BDT
from hepclf.scoring.onnx_export.graph import ClassifierGraph, classifier_model, const
from hepclf.scoring.onnx_export.trees import Forest, regressor_node


def forest_of(clf: BDT) -> Forest:
    """Heap-ordered nodes: inner ``h`` has children ``2h+1`` (left) and ``2h+2`` (right).

    Leaf values: the two-class score contribution, or (K > 2) ``alpha`` in the column of
    the class the leaf votes for.
    """
    threshold = np.asarray(clf.threshold_, np.float64)  # float32 cuts, exact in double
    leaf_class = np.asarray(clf.leaf_class_, np.int64)
    alpha = np.asarray(clf.alpha_, np.float64)
    n_classes = len(clf.classes_)
    n_trees, n_inner = threshold.shape
    n_nodes = 2 * n_inner + 1
    inner = np.arange(n_inner)

    def per_node(inner_values: np.ndarray, leaf_values: np.ndarray) -> np.ndarray:
        return np.concatenate([inner_values, leaf_values], axis=1).reshape(
            n_trees * n_nodes, *inner_values.shape[2:]
        )

    zeros_leaf = np.zeros((n_trees, n_inner + 1))
    if n_classes == 2:
        value = per_node(
            np.zeros((n_trees, n_inner)), alpha[:, None] * (2 * leaf_class - 1) / (2 * alpha.sum())
        )
    else:
        votes = alpha[:, None, None] * (leaf_class[:, :, None] == np.arange(n_classes))
        value = per_node(np.zeros((n_trees, n_inner, n_classes)), votes)
    return Forest(
        tree=np.repeat(np.arange(n_trees), n_nodes),
        node=np.tile(np.arange(n_nodes), n_trees),
        feature=per_node(np.asarray(clf.feature_, np.int64), zeros_leaf),
        threshold=per_node(threshold, zeros_leaf),
        true_child=np.tile(np.concatenate([2 * inner + 2, np.zeros(n_inner + 1)]), n_trees),
        false_child=np.tile(np.concatenate([2 * inner + 1, np.zeros(n_inner + 1)]), n_trees),
        leaf=np.tile(np.arange(n_nodes) >= n_inner, n_trees),
        value=value,
    )


def to_graph(clf: BDT, n_features: int) -> ClassifierGraph:
    """Graph: normalised float32 [N, n] -> double -> forest -> ``score`` float32 [N, 1], or
    for K > 2 classes -> class votes (summed in double, output as float32) -> Softmax ->
    ``probabilities`` float32 [N, K]."""
    n_classes = len(clf.classes_)
    cast = helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE)
    if n_classes == 2:
        nodes = [
            cast,
            regressor_node(forest_of(clf), "BRANCH_GTE", 0.5, "x64", "score", "AdaBoost"),
        ]
        return classifier_model(nodes, [], n_features, "score", ml=True)
    scale = n_classes / (float(np.sum(clf.alpha_)) * (n_classes - 1) ** 2)
    nodes = [
        cast,
        regressor_node(forest_of(clf), "BRANCH_GTE", 0.0, "x64", "votes", "SAMME"),
        helper.make_node("Mul", ["votes", "samme_scale"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    inits = [const("samme_scale", scale, np.float32)]  # the ensemble's output is float32
    return classifier_model(nodes, inits, n_features, "probabilities", n_classes, ml=True)
