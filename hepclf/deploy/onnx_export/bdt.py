"""hepclf's own AdaBoost BDT as an ai.onnx.ml TreeEnsembleRegressor.

The BDT keeps its forest as dense complete binary trees (see :mod:`hepclf.models.bdt`):
per tree, inner node ``h`` (heap order) sends an event right when ``x[feature] >= threshold``
(threshold +inf: everything left) and leaves hold the majority class +-1. The score is
``(sum(alpha * leaf) / sum(alpha) + 1) / 2``, so each leaf gets the weight
``alpha * leaf / (2 * sum(alpha))`` and the ensemble the base value 0.5.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hepclf.deploy.onnx_export.graph import ClassifierGraph, classifier_model
from hepclf.deploy.onnx_export.trees import Forest, regressor_node
from hepclf.models.bdt import BDT


def forest_of(clf: BDT) -> Forest:
    """Heap-ordered nodes: inner ``h`` has children ``2h+1`` (left) and ``2h+2`` (right)."""
    threshold = np.asarray(clf._threshold, np.float64)  # float32 cuts, exact in double
    leaf_class = np.asarray(clf._leaf, np.float64)
    alpha = np.asarray(clf._alpha, np.float64)
    n_trees, n_inner = threshold.shape
    n_nodes = 2 * n_inner + 1
    inner = np.arange(n_inner)

    def per_node(inner_values: np.ndarray, leaf_values: np.ndarray) -> np.ndarray:
        return np.concatenate([inner_values, leaf_values], axis=1).ravel()

    zeros_leaf = np.zeros((n_trees, n_inner + 1))
    return Forest(
        tree=np.repeat(np.arange(n_trees), n_nodes),
        node=np.tile(np.arange(n_nodes), n_trees),
        feature=per_node(np.asarray(clf._feature, np.int64), zeros_leaf),
        threshold=per_node(threshold, zeros_leaf),
        true_child=np.tile(np.concatenate([2 * inner + 2, np.zeros(n_inner + 1)]), n_trees),
        false_child=np.tile(np.concatenate([2 * inner + 1, np.zeros(n_inner + 1)]), n_trees),
        leaf=np.tile(np.arange(n_nodes) >= n_inner, n_trees),
        value=per_node(
            np.zeros((n_trees, n_inner)), alpha[:, None] * leaf_class / (2.0 * alpha.sum())
        ),
    )


def to_graph(clf: BDT, n_features: int) -> ClassifierGraph:
    """Graph: normalised float32 [N, n] -> double -> forest -> ``score`` float32 [N, 1]."""
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        regressor_node(forest_of(clf), "BRANCH_GTE", 0.5, "x64", "score", "AdaBoost"),
    ]
    return classifier_model(nodes, [], n_features, "score", ml=True)
