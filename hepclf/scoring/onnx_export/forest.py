"""The random forest (scikit-learn) as an ai.onnx.ml TreeEnsembleRegressor.

Built from the fitted trees with the same helper as the BDT (:mod:`.trees`) rather than
with skl2onnx: the float64 cut values stay double, so every event takes the path it takes
in scikit-learn by construction (skl2onnx has to nudge float32 cuts to get there), and the
tree votes are summed in double precision, as scikit-learn averages them.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hepclf.models.forest import Forest as ForestModel
from hepclf.scoring.onnx_export.graph import ClassifierGraph, classifier_model
from hepclf.scoring.onnx_export.trees import Forest, regressor_node


def forest_of(estimators: list, per_class: bool = False) -> Forest:
    """Every tree's nodes; a leaf's value is its signal fraction / number of trees, or with
    ``per_class`` its fraction of every class / number of trees (columns = classes)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in Forest.__dataclass_fields__}
    for i, estimator in enumerate(estimators):
        tree = estimator.tree_
        n = tree.node_count
        counts = tree.value[:, 0, :]
        total = counts.sum(axis=1, keepdims=True)
        fractions = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
        leaf_value = fractions if per_class else fractions[:, 1]
        missing = getattr(tree, "missing_go_to_left", None)
        parts["tree"].append(np.full(n, i))
        parts["node"].append(np.arange(n))
        parts["feature"].append(tree.feature)
        parts["threshold"].append(tree.threshold)
        parts["true_child"].append(tree.children_left)  # x <= cut: left
        parts["false_child"].append(tree.children_right)
        parts["leaf"].append(tree.children_left < 0)
        parts["value"].append(leaf_value / len(estimators))
        parts["missing_true"].append(np.zeros(n) if missing is None else np.asarray(missing))
    return Forest(**{k: np.concatenate(v) for k, v in parts.items()})


def to_graph(clf: ForestModel, n_features: int) -> ClassifierGraph:
    """Graph: x -> double -> forest (mean signal fraction) -> ``score`` float32 [N, 1]; for
    K > 2 classes the mean class fractions -> ``probabilities`` float32 [N, K]."""
    forest = clf.forest_
    n_classes = len(clf.classes_)
    if list(forest.classes_) != list(range(n_classes)):
        raise ValueError(
            f"random forest classes {list(forest.classes_)}, expected {list(range(n_classes))}"
        )
    output = "score" if n_classes == 2 else "probabilities"
    trees = forest_of(clf.estimators_, per_class=n_classes > 2)
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        regressor_node(trees, "BRANCH_LEQ", 0.0, "x64", output, "Forest"),
    ]
    width = 1 if n_classes == 2 else n_classes
    return classifier_model(nodes, [], n_features, output, width, ml=True)
