"""ONNX export of a k-fold model: one graph that averages the signal scores of its folds
(the class probabilities [N, K] for more than two classes).

An ONNX file has only the feature columns as input, so it cannot pick each event's fold
model from an event id; it gives the fold average, which is what hepclf itself gives an
event without an id. For cross-validated application (each training event scored by the
model that did not train on it) score with hepclf (``hepclf score``, the pyfunc or the
service), which reads the event id.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from hepclf.models.registry import ONNX_CONVERTERS
from hepclf.scoring.onnx_export.graph import ClassifierGraph, const

OUTPUT = "fold_mean"


def to_graph(ensemble: Any, n_features: int) -> ClassifierGraph:
    """Input ``x`` float32 [N, n] (normalised); output ``fold_mean``: the mean over the fold
    models of each one's signal score [N, 1] (class probabilities [N, K] for K > 2 classes),
    converted by the fold models' own exporter."""
    n_classes = len(ensemble.classes_)
    converter = importlib.import_module(ONNX_CONVERTERS[ensemble.name])
    parts = [converter.to_graph(m, n_features) for m in ensemble.estimators_]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    value_info: list[onnx.ValueInfoProto] = []
    functions: list[onnx.FunctionProto] = []
    scores = []
    for k, part in enumerate(parts):
        prefix = f"fold{k}/"
        inner = onnx.compose.add_prefix(part.model, prefix)
        if len(inner.graph.input) != 1:
            raise ValueError(f"fold {k} graph has {len(inner.graph.input)} inputs, expected 1")
        nodes.append(helper.make_node("Identity", ["x"], [inner.graph.input[0].name]))
        nodes.extend(inner.graph.node)
        inits.extend(inner.graph.initializer)
        value_info.extend(inner.graph.value_info)
        functions.extend(f for f in inner.functions if f.name not in {g.name for g in functions})
        score = f"{prefix}signal"
        if n_classes > 2:  # the fold's class probabilities [N, K], averaged as they are
            nodes.append(
                helper.make_node("Cast", [prefix + part.output], [score], to=TensorProto.FLOAT)
            )
        else:
            column, cast = f"{prefix}column", f"{prefix}signal_any"
            inits.append(const(column, [part.column], np.int64))
            nodes.append(helper.make_node("Gather", [prefix + part.output, column], [cast], axis=1))
            nodes.append(helper.make_node("Cast", [cast], [score], to=TensorProto.FLOAT))
        scores.append(score)
    nodes.append(helper.make_node("Mean", scores, [OUTPUT]))
    graph = helper.make_graph(
        nodes,
        "fold_ensemble",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info(
                OUTPUT, TensorProto.FLOAT, ["N", n_classes if n_classes > 2 else 1]
            )
        ],
        initializer=inits,
        value_info=value_info,
    )
    first = parts[0].model
    model = helper.make_model(graph, opset_imports=list(first.opset_import))
    model.ir_version = first.ir_version
    model.functions.extend(functions)
    return ClassifierGraph(model, OUTPUT, 0, tolerance=max(p.tolerance for p in parts))
