"""One ai.onnx.ml TreeEnsembleRegressor node from flat per-node arrays, in double precision.

Thresholds and leaf weights are double tensors (``*_as_tensor``, ai.onnx.ml opset 3) on a
double input, so cuts compare exactly as NumPy / scikit-learn compare float32 features
with their cut values, and ONNX Runtime sums the leaf values in double precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, helper, numpy_helper


@dataclass
class Forest:
    """All trees, one entry per node: ``leaf`` marks leaves (their ``value`` is the weight).

    ``value`` is (n_nodes,) for one output or (n_nodes, K) for K outputs (one weight per
    class and leaf, as a multi-class forest's per-class votes or class fractions).
    """

    tree: np.ndarray
    node: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    missing_true: np.ndarray | None = None


def regressor_node(
    forest: Forest, mode: str, base_value: float, x: str, out: str, name: str
) -> NodeProto:
    """TreeEnsembleRegressor summing the leaf values of all trees plus ``base_value``.

    ``mode`` is the comparison sending an event to ``true_child``: 'BRANCH_LEQ' (x <= cut)
    or 'BRANCH_GTE' (x >= cut). The output is [N, K] for a (n_nodes, K) ``value``, each
    column starting from ``base_value``.
    """
    leaf = forest.leaf.astype(bool)
    n = len(leaf)
    missing = np.zeros(n, np.int64) if forest.missing_true is None else forest.missing_true
    values = np.asarray(forest.value, np.float64).reshape(n, -1)[leaf]  # (leaves, K)
    n_targets = values.shape[1]
    leaf_tree = np.repeat(forest.tree[leaf].astype(np.int64), n_targets)
    leaf_node = np.repeat(forest.node[leaf].astype(np.int64), n_targets)
    return helper.make_node(
        "TreeEnsembleRegressor",
        [x],
        [out],
        domain="ai.onnx.ml",
        name=name,
        n_targets=n_targets,
        aggregate_function="SUM",
        post_transform="NONE",
        nodes_treeids=forest.tree.astype(np.int64).tolist(),
        nodes_nodeids=forest.node.astype(np.int64).tolist(),
        nodes_featureids=np.where(leaf, 0, forest.feature).astype(np.int64).tolist(),
        nodes_modes=np.where(leaf, "LEAF", mode).tolist(),
        nodes_truenodeids=np.where(leaf, 0, forest.true_child).astype(np.int64).tolist(),
        nodes_falsenodeids=np.where(leaf, 0, forest.false_child).astype(np.int64).tolist(),
        nodes_values_as_tensor=numpy_helper.from_array(
            np.where(leaf, 0.0, forest.threshold).astype(np.float64), "nodes_values"
        ),
        nodes_missing_value_tracks_true=np.where(leaf, 0, missing).astype(np.int64).tolist(),
        target_treeids=leaf_tree.tolist(),
        target_nodeids=leaf_node.tolist(),
        target_ids=np.tile(np.arange(n_targets), len(values)).tolist(),
        target_weights_as_tensor=numpy_helper.from_array(values.ravel(), "target_weights"),
        base_values_as_tensor=numpy_helper.from_array(
            np.full(n_targets, float(base_value)), "base_values"
        ),
    )
