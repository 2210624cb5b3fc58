"""The Keras network: Keras 3's own ONNX export (tf2onnx underneath), then the ensemble
average that :class:`hepclf.models.dnn.DNN` applies in NumPy: mean(sigmoid(logits)) over
towers for two classes, mean(softmax(logits)) per class for K > 2.

``tf2onnx.convert.from_keras`` fails on Keras 3 models (it looks up Keras-2 tensor
names); ``keras.Model.export(format="onnx")`` traces the model as a tf.function first and
works with TensorFlow 2.21 / Keras 3.15.

A network trained with ``mixed_precision`` computes in bfloat16, which ONNX Runtime's CPU
kernels do not implement: it is exported as the same network in float32 (the weights are
float32 either way), whose scores differ from the bfloat16 ones by bfloat16's rounding.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
from onnx import TensorProto, helper

from hepclf.models.dnn import DNN
from hepclf.models.dnn_network import build_network
from hepclf.models.dnn_tensorflow import import_tensorflow
from hepclf.scoring.onnx_export.graph import TARGET_OPSET, ClassifierGraph

if TYPE_CHECKING:
    import keras


def keras_to_onnx(model: keras.Model, n_features: int) -> onnx.ModelProto:
    """The network as exported by Keras: one float32 input [N, n], logits [N, towers] (or
    [N, towers, K])."""
    tf = import_tensorflow()

    signature = [tf.TensorSpec((None, n_features), tf.float32, name="x")]
    with tempfile.TemporaryDirectory(prefix="hepclf-onnx-") as tmp, warnings.catch_warnings():
        # Keras's bundled tf2onnx probes np.object, a FutureWarning on every export
        warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
        path = Path(tmp) / "dnn.onnx"
        model.export(
            str(path),
            format="onnx",
            verbose=False,
            input_signature=signature,
            opset_version=TARGET_OPSET,
        )
        return onnx.load(str(path))


MIXED_PRECISION_TOLERANCE = 2e-2  # bfloat16 keeps 8 bits of mantissa: ~3 decimal digits


def float32_network(clf: DNN, n_features: int) -> tuple[keras.Model, bool]:
    """The fitted network computing in float32, and whether it had to be rebuilt for that."""
    network = clf.network_
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in network.layers):
        return network, False
    rebuilt = build_network(n_features, clf.validated_params(), "float32", len(clf.classes_))
    rebuilt.set_weights(network.get_weights())
    return rebuilt, True


def to_graph(clf: DNN, n_features: int) -> ClassifierGraph:
    """Graph: x -> network logits -> double -> Sigmoid -> mean over towers -> ``ensemble_score``
    [N, 1]; for K > 2 classes Softmax per tower -> mean -> ``probabilities`` [N, K]."""
    network, rebuilt = float32_network(clf, n_features)
    model = keras_to_onnx(network, n_features)
    graph = model.graph
    if len(graph.output) != 1:
        raise ValueError(f"Keras export has {len(graph.output)} outputs, expected 1")
    logits = graph.output[0].name
    multi = len(clf.classes_) > 2
    output = "probabilities" if multi else "ensemble_score"
    head = (
        helper.make_node("Softmax", ["hepclf_logits64"], ["hepclf_tower_p"], axis=2)
        if multi
        else helper.make_node("Sigmoid", ["hepclf_logits64"], ["hepclf_tower_p"])
    )
    graph.node.extend(
        [
            helper.make_node("Cast", [logits], ["hepclf_logits64"], to=TensorProto.DOUBLE),
            head,
            helper.make_node(
                "ReduceMean", ["hepclf_tower_p"], ["hepclf_mean"], axes=[1], keepdims=int(not multi)
            ),
            helper.make_node("Cast", ["hepclf_mean"], [output], to=TensorProto.FLOAT),
        ]
    )
    del graph.output[:]
    width = len(clf.classes_) if multi else 1
    graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", width]))
    if rebuilt:
        return ClassifierGraph(model, output, 0, MIXED_PRECISION_TOLERANCE)
    return ClassifierGraph(model, output, 0)
