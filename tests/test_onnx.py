"""ONNX export: every model type of the zoo, scored by ONNX Runtime on real demo events.

Each model is trained (small settings) on the ingested demo data, exported with
``hepclf export`` / ``export_onnx``, read back from the file and run with ONNX Runtime on
raw feature columns; the scores must equal the Python model's (bundle and pyfunc).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hepclf.config import PipelineConfig, parse_pipeline
from hepclf.ingest import ingest
from hepclf.models import MODEL_TYPES, build_model
from hepclf.runtime.errors import HepclfError
from hepclf.scoring.onnx_export.export import CONVERTERS, compare, export_onnx, write_atomic
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer
from hepclf.workflows.train import prepare
from tests.conftest import demo_pipeline_dict, tracking_uri

TOLERANCE = 1e-4
BDT_TOLERANCE = 1e-6  # the bdt's forest sums in double in both; only the float32 output rounds
HEPCLF = str(Path(sys.executable).with_name("hepclf"))

# Small but real settings: enough trees/epochs that every code path (early stopping,
# several towers, kernel machine) is exercised, fast enough for 2 cores.
FAST_PARAMS = {
    "dnn": {"layers": [16, 16], "epochs": 4, "ensemble": 2, "patience": 2},
    "bdt": {"n_trees": 40},
    "xgb": {"n_estimators": 150, "early_stopping_rounds": 10},
    "rf": {"n_estimators": 30},
    "svm": {"max_train_events": 800},
    "linear": {},
}


@dataclass
class Prepared:
    config: PipelineConfig
    data: object
    X_test_raw: np.ndarray


def _prepare(demo_dir: Path, tmp: Path, normalization: object) -> Prepared:
    raw = demo_pipeline_dict(demo_dir, normalization=normalization)
    config = parse_pipeline(raw, base_dir=tmp)
    table = ingest(config, use_cache=False)
    data = prepare(config, table)
    return Prepared(config, data, table.X[data.split.test])


@pytest.fixture(scope="module")
def standard(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return _prepare(demo_dir, tmp_path_factory.mktemp("onnx-std"), "standard")


@pytest.fixture(scope="module")
def clipped(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return _prepare(
        demo_dir, tmp_path_factory.mktemp("onnx-clip"), {"method": "robust", "clip": 2.0}
    )


def train_bundle(prep: Prepared, model_type: str, params: dict | None = None) -> ModelBundle:
    d = prep.data
    model = build_model(model_type, params or FAST_PARAMS[model_type], seed=7)
    model.fit(d.X_fit, d.y_fit, d.w_fit, d.X_val, d.y_val, d.w_val)
    return ModelBundle(model_type, list(prep.config.features), d.normalizer, model, "demo")


def run_file(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["score"], {"features": X.astype(np.float32)})[0]


def test_every_model_type_has_a_converter() -> None:
    assert set(CONVERTERS) == set(MODEL_TYPES)


@pytest.mark.parametrize("model_type", sorted(FAST_PARAMS))
def test_export_matches_python_scores(model_type: str, standard: Prepared, tmp_path: Path) -> None:
    bundle = train_bundle(standard, model_type)
    out = tmp_path / f"{model_type}.onnx"
    result = export_onnx(bundle, out)
    assert result.path == out and result.max_abs_diff is not None

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    (outp,) = model.graph.output
    assert inp.name == "features" and outp.name == "score"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim][1] == len(bundle.columns)
    assert len(outp.type.tensor_type.shape.dim) == 1
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["features"]) == bundle.columns
    assert meta["model_type"] == model_type
    ops = [n.op_type for n in model.graph.node]
    assert "Sub" in ops and "Div" in ops  # the normalisation is inside the graph

    X = standard.X_test_raw
    onnx_scores = run_file(out, X)
    assert onnx_scores.dtype == np.float32 and onnx_scores.shape == (len(X),)
    python_scores = bundle.score_features(X)
    atol = BDT_TOLERANCE if model_type == "bdt" else TOLERANCE
    np.testing.assert_allclose(onnx_scores, python_scores, rtol=0, atol=atol)
    assert python_scores.std() > 0.01  # a real classifier, not a constant


@pytest.mark.parametrize(
    ("model_type", "params"),
    [
        ("bdt", {"n_trees": 20, "max_depth": 6, "min_node_size": 0.0, "n_cuts": 254}),
        ("svm", {"approximate": True, "n_components": 60}),
        ("linear", {"method": "logistic"}),
        ("dnn", {"layers": [8], "epochs": 2, "ensemble": 1, "batch_norm": True}),
    ],
)
def test_export_with_clipped_normalisation_and_variants(
    model_type: str, params: dict, clipped: Prepared, tmp_path: Path
) -> None:
    bundle = train_bundle(clipped, model_type, params)
    out = export_onnx(bundle, tmp_path / "m.onnx").path
    assert "Clip" in [n.op_type for n in onnx.load(str(out)).graph.node]
    X = clipped.X_test_raw
    X_far = X * 50.0  # far outside the training range: the clip must act as in Python
    atol = BDT_TOLERANCE if model_type == "bdt" else TOLERANCE
    for rows in (X, X_far):
        np.testing.assert_allclose(run_file(out, rows), bundle.score_features(rows), atol=atol)


def three_class_bundle(prep: Prepared, model_type: str, params: dict) -> ModelBundle:
    """A three-class model on the demo features: signal, and background cut in two by its
    first feature (classes_ order: bkg_high, bkg_low, signal)."""
    d = prep.data
    names = np.where(d.y_fit == 1, "signal", np.where(d.X_fit[:, 0] < 0, "bkg_low", "bkg_high"))
    model = build_model(model_type, params, seed=7).fit(d.X_fit, names, d.w_fit)
    return ModelBundle(model_type, list(prep.config.features), d.normalizer, model, "demo")


@pytest.mark.parametrize(
    ("model_type", "params"),
    [
        ("bdt", {"n_trees": 30}),
        ("xgb", {"n_estimators": 60, "early_stopping_rounds": 10, "n_jobs": 1}),
        ("rf", {"n_estimators": 20}),
        ("svm", {"n_components": 200}),
        ("linear", {"method": "logistic"}),
        ("linear", {"method": "fisher"}),
        ("dnn", {"layers": [16], "epochs": 2, "ensemble": 2}),
    ],
)
def test_multiclass_export_has_per_class_probabilities(
    model_type: str, params: dict, standard: Prepared, tmp_path: Path
) -> None:
    bundle = three_class_bundle(standard, model_type, params)
    result = export_onnx(bundle, tmp_path / "multi.onnx")
    model = onnx.load(str(result.path))
    (outp,) = model.graph.output
    assert outp.name == "probabilities"
    assert [d.dim_value for d in outp.type.tensor_type.shape.dim][1] == 3
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["bkg_high", "bkg_low", "signal"] == bundle.classes

    X = standard.X_test_raw
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    onnx_proba = session.run(["probabilities"], {"features": X.astype(np.float32)})[0]
    python_proba = bundle.classifier.predict_proba(bundle.normalizer.transform(X))
    assert onnx_proba.shape == python_proba.shape == (len(X), 3)
    atol = BDT_TOLERANCE if model_type == "bdt" else TOLERANCE
    np.testing.assert_allclose(onnx_proba, python_proba, rtol=0, atol=atol)
    np.testing.assert_allclose(onnx_proba.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    assert np.all(python_proba.std(axis=0) > 0.01)  # real class probabilities, not constants


def test_two_class_export_keeps_the_single_score_output(standard: Prepared) -> None:
    from hepclf.scoring.onnx_export.export import build_onnx

    model, _ = build_onnx(train_bundle(standard, "bdt", {"n_trees": 10}))
    assert [o.name for o in model.graph.output] == ["score"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["0", "1"] and "signal score" in meta["score"]


def test_mixed_precision_dnn_is_exported_in_float32(standard: Prepared, tmp_path: Path) -> None:
    """A bfloat16 network, as ``mixed_precision`` trains on a GPU (built here on the CPU)."""
    from hepclf.models.dnn_network import build_network

    bundle = train_bundle(standard, "dnn", {"layers": [16], "epochs": 2, "ensemble": 2})
    clf = bundle.classifier
    float32_network = clf.network_
    clf.network_ = build_network(
        len(bundle.columns), clf.validated_params(), "mixed_bfloat16", len(clf.classes_)
    )
    clf.network_.set_weights(float32_network.get_weights())

    result = export_onnx(bundle, tmp_path / "bf16.onnx")
    assert result.tolerance == 2e-2
    X = standard.X_test_raw
    scores = run_file(result.path, X)
    np.testing.assert_allclose(scores, bundle.score_features(X), rtol=0, atol=2e-2)
    clf.network_ = float32_network  # the graph is the same network computing in float32
    np.testing.assert_allclose(scores, bundle.score_features(X), rtol=0, atol=TOLERANCE)


def test_cli_export_from_mlflow_registry_matches_pyfunc(standard: Prepared, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    from hepclf.tracking.pyfunc import log_bundle
    from hepclf.tracking.registry import register_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bundle = train_bundle(standard, "xgb")
    with tracking_uri(uri):
        mlflow.set_experiment("onnx-export")
        with mlflow.start_run():
            model_uri = log_bundle(bundle)
        register_model(model_uri, "onnx-demo")

    out = tmp_path / "exported" / "xgb.onnx"
    done = subprocess.run(
        [HEPCLF, "export", "--model", "models:/onnx-demo@champion", "--format", "onnx",
         "--out", str(out), "--tracking-uri", uri],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ONNX Runtime agrees" in done.stdout

    X = standard.X_test_raw
    with tracking_uri(uri):
        pyfunc = mlflow.pyfunc.load_model("models:/onnx-demo@champion")
    expected = np.asarray(pyfunc.predict(pd.DataFrame(X, columns=bundle.columns)))
    np.testing.assert_allclose(run_file(out, X), expected, rtol=0, atol=TOLERANCE)
    assert [p.name for p in out.parent.iterdir()] == ["xgb.onnx"]  # no temporary files left


def test_cli_export_from_folder_and_user_errors(standard: Prepared, tmp_path: Path) -> None:
    bundle = train_bundle(standard, "linear")
    folder = bundle.save(tmp_path / "linear-model")
    out = tmp_path / "linear.onnx"
    done = subprocess.run(
        [HEPCLF, "export", "--model", str(folder), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    X = standard.X_test_raw
    np.testing.assert_allclose(run_file(out, X), bundle.score_features(X), atol=TOLERANCE)

    missing = subprocess.run(
        [HEPCLF, "export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "x.onnx")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "nope" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "x.onnx").exists()

    wrong_format = subprocess.run(
        [HEPCLF, "export", "--model", str(folder), "--format", "pmml", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # a usage error naming the one format there is (its exit status and the absence of a
    # traceback are up to hepclf.cli.main's handling of click errors)
    assert wrong_format.returncode != 0 and "'onnx'" in wrong_format.stderr
    assert not out.with_suffix(".pmml").exists()


def test_disagreeing_graph_is_refused_and_nothing_written(
    standard: Prepared, tmp_path: Path
) -> None:
    from hepclf.scoring.onnx_export.export import build_onnx

    bundle = train_bundle(standard, "linear")
    model, tolerance = build_onnx(bundle)
    assert tolerance == TOLERANCE
    # the same graph, but with another normaliser centre: must not pass the check
    shifted = ModelBundle(
        bundle.name,
        bundle.features,
        Normalizer("standard", bundle.normalizer.center + bundle.normalizer.scale,
                   bundle.normalizer.scale),
        bundle.classifier,
    )  # fmt: skip
    with pytest.raises(HepclfError, match="disagrees"):
        compare(model, shifted, standard.X_test_raw)


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "model.onnx"
    write_atomic(b"first version", out)
    write_atomic(b"second", out)
    assert out.read_bytes() == b"second"
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]
