"""Wrap a classifier's ONNX graph so it takes raw feature columns and returns one score.

Every converter yields a graph on *normalised* features with some probability-like output;
this module puts the fitted normaliser in front of it and a score head after it, so the
exported file is self-contained: input ``features`` float32 [N, n_columns] of raw columns,
output ``score`` float32 [N], and the column names in ``metadata_props``.

The normalisation is computed in double precision, as :class:`hepclf.training.normalize.Normalizer`
does, so tree cuts see bit-identical inputs and the exported scores match the Python ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hepclf.runtime.version import __version__
from hepclf.training.normalize import Normalizer

INPUT = "features"
OUTPUT = "score"
PROBABILITIES = "probabilities"  # the output of a K > 2 class model: [N, K], classes_ order
TARGET_OPSET = 15  # the newest opset every converter used here (onnxmltools) can target
ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleRegressor with double thresholds and weights
MIN_OPSET = 11  # the normaliser's Clip takes its bounds as inputs from opset 11 on
TOLERANCE = 1e-4  # largest |score difference| to the Python model accepted by default
_PREFIX = "hepclf/"
_INNER = "classifier/"


@dataclass
class ClassifierGraph:
    """A converted classifier: one float32 [N, n] input of normalised features.

    ``output`` is the graph output holding the signal score in column ``column`` (a 2-D
    tensor, e.g. probabilities [N, 2] -> column 1, a sigmoid [N, 1] -> column 0); for a
    model of K > 2 classes it holds the class probabilities [N, K] (``column`` unused).
    ``tolerance`` is the score difference to the Python model the graph may show: float32
    rounding, unless the Python model computes in lower precision than the graph.
    """

    model: onnx.ModelProto
    output: str
    column: int
    tolerance: float = TOLERANCE


def classifier_model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    n_features: int,
    output: str,
    n_outputs: int = 1,
    ml: bool = False,
) -> ClassifierGraph:
    """A hand-built classifier graph: input ``x`` float32 [N, n], score in column 0 of
    ``output`` [N, n_outputs]."""
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", n_outputs])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", TARGET_OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return ClassifierGraph(model, output, 0)


def const(name: str, value: object, dtype: type = np.float64) -> onnx.TensorProto:
    """An initializer from a Python or NumPy value."""
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _normaliser_nodes(normalizer: Normalizer, out: str) -> tuple[list, list]:
    """Cast to double, (x - center) / scale, back to float32, clip: the Normalizer's steps."""
    p = _PREFIX
    inits = [
        numpy_helper.from_array(np.asarray(normalizer.center, np.float64), p + "center"),
        numpy_helper.from_array(np.asarray(normalizer.scale, np.float64), p + "scale"),
    ]
    scaled = p + "scaled" if normalizer.clip is not None else out
    nodes = [
        helper.make_node("Cast", [INPUT], [p + "x64"], to=TensorProto.DOUBLE, name=p + "Cast"),
        helper.make_node("Sub", [p + "x64", p + "center"], [p + "shifted"], name=p + "Sub"),
        helper.make_node("Div", [p + "shifted", p + "scale"], [p + "z64"], name=p + "Div"),
        helper.make_node("Cast", [p + "z64"], [scaled], to=TensorProto.FLOAT, name=p + "Cast32"),
    ]
    if normalizer.clip is not None:
        clip = float(normalizer.clip)
        inits += [
            numpy_helper.from_array(np.asarray(-clip, np.float32), p + "clip_min"),
            numpy_helper.from_array(np.asarray(clip, np.float32), p + "clip_max"),
        ]
        nodes.append(
            helper.make_node(
                "Clip", [scaled, p + "clip_min", p + "clip_max"], [out], name=p + "Clip"
            )
        )
    return nodes, inits


def _score_nodes(source: str, column: int) -> tuple[list, list]:
    """Take the signal column of a 2-D output as float32 [N]."""
    p = _PREFIX
    inits = [numpy_helper.from_array(np.asarray(column, np.int64), p + "signal_column")]
    nodes = [
        helper.make_node(
            "Gather", [source, p + "signal_column"], [p + "signal"], axis=1, name=p + "Gather"
        ),
        helper.make_node("Cast", [p + "signal"], [OUTPUT], to=TensorProto.FLOAT, name=p + "Score"),
    ]
    return nodes, inits


def _opsets(model: onnx.ModelProto) -> list:
    """The classifier's opset imports; the default domain's must allow the nodes added here."""
    versions = {o.domain: o.version for o in model.opset_import}
    if versions.get("", MIN_OPSET) < MIN_OPSET:
        raise ValueError(f"classifier graph uses opset {versions['']}, below {MIN_OPSET}")
    versions.setdefault("", MIN_OPSET)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


def _probability_nodes(source: str) -> tuple[list, list]:
    """The class probabilities [N, K] of a multi-class classifier, as float32."""
    node = helper.make_node(
        "Cast", [source], [PROBABILITIES], to=TensorProto.FLOAT, name=_PREFIX + "Probabilities"
    )
    return [node], []


def wrap(
    graph: ClassifierGraph,
    normalizer: Normalizer,
    columns: list[str],
    metadata: dict[str, str],
    n_classes: int = 2,
) -> onnx.ModelProto:
    """The exported model: raw ``features`` -> normaliser -> classifier -> ``score`` [N]
    (two classes) or ``probabilities`` [N, K] (K > 2 classes, ``classes_`` order)."""
    inner = onnx.compose.add_prefix(graph.model, _INNER)
    if len(inner.graph.input) != 1:
        raise ValueError(f"classifier graph has {len(inner.graph.input)} inputs, expected 1")
    normalised = inner.graph.input[0].name
    pre_nodes, pre_inits = _normaliser_nodes(normalizer, normalised)
    n = len(columns)
    if n_classes == 2:
        post_nodes, post_inits = _score_nodes(_INNER + graph.output, graph.column)
        output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N"])
        doc = "Signal score in [0, 1] from raw feature columns (normalisation inside)."
        described = f"output {OUTPUT!r} float32 [N] signal score"
    else:
        post_nodes, post_inits = _probability_nodes(_INNER + graph.output)
        output = helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", n_classes])
        doc = "Class probabilities from raw feature columns (normalisation inside)."
        described = (
            f"output {PROBABILITIES!r} float32 [N, {n_classes}] class probabilities in the "
            "order of metadata 'classes'"
        )
    body = helper.make_graph(
        [*pre_nodes, *inner.graph.node, *post_nodes],
        "hepclf_classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", n])],
        [output],
        initializer=[*pre_inits, *inner.graph.initializer, *post_inits],
        value_info=list(inner.graph.value_info),
        doc_string=doc,
    )
    body.sparse_initializer.extend(inner.graph.sparse_initializer)
    model = helper.make_model(
        body,
        opset_imports=_opsets(inner),
        producer_name="hepclf",
        producer_version=__version__,
        doc_string=f"hepclf model {metadata.get('model_name', '')}: input {INPUT!r} float32 "
        f"[N, {n}] raw columns {columns}; {described}.",
    )
    model.ir_version = inner.ir_version
    model.functions.extend(inner.functions)
    props = {"features": json.dumps(columns), "n_features": str(n), **metadata}
    onnx.helper.set_model_props(model, props)
    return model
