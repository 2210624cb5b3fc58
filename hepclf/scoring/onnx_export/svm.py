"""The SVM: an RBF kernel machine (exact SVC, or Nystroem features + a linear SVM), then one
Platt sigmoid per one-vs-rest decision value (normalised to sum 1 for K > 2 classes).

Written with plain ONNX operators in double precision rather than through skl2onnx:
skl2onnx has no converter for the Nystroem pipeline, and the Platt calibration is ours.

The kernel matrix of N events against M support vectors (or landmarks) is N x M doubles:
for an exact SVM with ~12k support vectors, 20k events would need several GiB at once. The
graph therefore pads the events to whole blocks of ``BLOCK`` and evaluates the kernel one
block at a time inside a ``Scan``, so memory stays at BLOCK x M whatever N is.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, TensorProto, helper

from hepclf.models.svm import SVM
from hepclf.runtime.errors import HepclfError
from hepclf.scoring.onnx_export.graph import ClassifierGraph, classifier_model, const

BLOCK = 1024  # events per kernel block: 1024 x 12k doubles ~ 100 MB for an exact SVM


def _kernel_machine(clf: SVM) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Centres, gamma, weights (M, K') and intercept (K',) with decision = K(x, c) @ W + b."""
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    svm = clf.svm_
    if isinstance(svm, SVC):
        return svm.support_vectors_, clf.gamma_, svm.dual_coef_.T, svm.intercept_
    if isinstance(svm, Pipeline) and list(svm.named_steps) == ["nystroem", "linearsvc"]:
        nystroem, linear = svm.named_steps["nystroem"], svm.named_steps["linearsvc"]
        if nystroem.kernel != "rbf":
            raise HepclfError(f"svm export: Nystroem kernel {nystroem.kernel!r} is not supported")
        # Nystroem features are K(x, c) @ normalization_.T: fold it into the linear weights
        weights = nystroem.normalization_.T @ linear.coef_.T
        return nystroem.components_, float(nystroem.gamma), weights, linear.intercept_
    raise HepclfError(f"svm export: unexpected fitted estimator {type(svm).__name__}")


def _block_body(n_features: int, n_out: int, constants: list) -> NodeProto:
    """Scan body: one block ``xb`` [BLOCK, F] -> decision values ``db`` [BLOCK, K'].

    K[i, j] = exp(-gamma * |x_i - c_j|^2), expanded as |x|^2 + |c|^2 - 2 x.c like libsvm.
    The body holds its own ``constants``: ``onnx.compose.add_prefix`` (used when the graph is
    wrapped) renames outer names without following references from inside a subgraph.
    """
    nodes = [
        helper.make_node("ReduceSumSquare", ["xb"], ["x2"], axes=[1], keepdims=1),
        helper.make_node("MatMul", ["xb", "svm_centres_t"], ["cross"]),
        helper.make_node("Mul", ["cross", "svm_minus_two"], ["cross2"]),
        helper.make_node("Add", ["x2", "svm_c2"], ["norms"]),
        helper.make_node("Add", ["norms", "cross2"], ["d2"]),
        helper.make_node("Mul", ["d2", "svm_minus_gamma"], ["exponent"]),
        helper.make_node("Exp", ["exponent"], ["kernel"]),
        helper.make_node("MatMul", ["kernel", "svm_weights"], ["dual"]),
        helper.make_node("Add", ["dual", "svm_intercept"], ["db"]),
    ]
    body = helper.make_graph(
        nodes,
        "svm_block",
        [helper.make_tensor_value_info("xb", TensorProto.DOUBLE, [BLOCK, n_features])],
        [helper.make_tensor_value_info("db", TensorProto.DOUBLE, [BLOCK, n_out])],
        initializer=constants,
    )
    return helper.make_node(
        "Scan", ["x_blocks"], ["d_blocks"], num_scan_inputs=1, body=body, name="svm_blocks"
    )


def to_graph(clf: SVM, n_features: int) -> ClassifierGraph:
    """Graph: x -> double -> blocked kernel decision -> Platt sigmoids -> ``score`` float32
    [N, 1] for two classes, ``probabilities`` float32 [N, K] (normalised) otherwise."""
    centres, gamma, weights, intercept = _kernel_machine(clf)
    centres = np.asarray(centres, np.float64)
    n_out = weights.shape[1]
    scan = _block_body(
        n_features,
        n_out,
        [
            const("svm_centres_t", centres.T),
            const("svm_c2", (centres**2).sum(axis=1)[None, :]),
            const("svm_minus_two", -2.0),
            const("svm_minus_gamma", -float(gamma)),
            const("svm_weights", np.asarray(weights, np.float64)),
            const("svm_intercept", np.asarray(intercept, np.float64).ravel()),
        ],
    )
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        # pad N up to whole blocks: pad = (BLOCK - N % BLOCK) % BLOCK rows at the end
        helper.make_node("Shape", ["x64"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero1"], ["n"], axis=0),
        helper.make_node("Mod", ["n", "block"], ["rest"]),
        helper.make_node("Sub", ["block", "rest"], ["short"]),
        helper.make_node("Mod", ["short", "block"], ["pad"]),
        helper.make_node("Concat", ["zeros2", "pad", "zero1"], ["pads"], axis=0),
        helper.make_node("Pad", ["x64", "pads"], ["x_padded"]),
        helper.make_node("Reshape", ["x_padded", "block_shape"], ["x_blocks"]),
        scan,
        helper.make_node("Reshape", ["d_blocks", "flat_shape"], ["d_padded"]),
        helper.make_node("Slice", ["d_padded", "zero1", "n", "zero1"], ["decision"]),
        helper.make_node("Mul", ["decision", "platt_a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "platt_b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p64"]),
    ]
    output = "score"
    if n_out > 1:
        output = "probabilities"
        nodes += [
            helper.make_node("ReduceSum", ["p64", "one1"], ["total"], keepdims=1),
            helper.make_node("Div", ["p64", "total"], ["p64_norm"]),
            helper.make_node("Cast", ["p64_norm"], [output], to=TensorProto.FLOAT),
        ]
    else:
        nodes.append(helper.make_node("Cast", ["p64"], [output], to=TensorProto.FLOAT))
    ints = np.int64
    inits = [
        const("platt_a", np.asarray(clf.platt_coef_, np.float64)),
        const("platt_b", np.asarray(clf.platt_intercept_, np.float64)),
        const("zero1", [0], ints),
        const("zeros2", [0, 0], ints),
        const("block", [BLOCK], ints),
        const("block_shape", [-1, BLOCK, n_features], ints),
        const("flat_shape", [-1, n_out], ints),
    ]
    if n_out > 1:
        inits.append(const("one1", [1], ints))
    return classifier_model(nodes, inits, n_features, output, n_outputs=n_out)
