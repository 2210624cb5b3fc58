"""Multi-class: config classes, per-class weights, evaluation against scikit-learn, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot
import yaml
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import roc_auc_score

from hepclf.config import load_pipeline, parse_pipeline
from hepclf.evaluation.multiclass import (
    confusion_matrix,
    evaluate_multiclass,
    row_normalised,
)
from hepclf.evaluation.multiclass_plots import plot_multiclass
from hepclf.runtime.errors import ConfigError
from hepclf.training.weights import training_weights
from tests.conftest import REPO, TWO_CLASS_METRIC_KEYS

PROCESSES = ["ttH", "ttbb", "ttcc", "ttlf"]


def _samples(*labels: str) -> list[dict]:
    return [{"name": f"s{i}", "files": [f"{i}.root"], "label": x} for i, x in enumerate(labels)]


def _probabilities(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba, rng.uniform(0.2, 3.0, n)


# -- config ----------------------------------------------------------------------------------
def test_two_class_labels_keep_signal_as_one() -> None:
    config = parse_pipeline(
        {"name": "t", "samples": _samples("background", "signal"), "features": ["x"]}
    )
    assert config.class_names == ["background", "signal"]
    assert not config.multiclass and config.signal_classes == ["signal"]
    named = parse_pipeline(
        {"name": "t", "samples": _samples("ttH", "ttbar"), "features": ["x"], "signal": "ttH"}
    )
    assert named.class_names == ["ttbar", "ttH"]  # the signal is label 1 / column 1


def test_classes_key_fixes_the_order_and_signal_may_be_several() -> None:
    config = parse_pipeline(
        {
            "name": "t",
            "samples": _samples("ttlf", "ttH", "ttbb", "ttH"),
            "features": ["x"],
            "classes": ["ttH", "ttbb", "ttlf"],
            "signal": ["ttH", "ttbb"],
        }
    )
    assert config.class_names == ["ttH", "ttbb", "ttlf"] and config.multiclass
    assert config.signal_classes == ["ttH", "ttbb"]
    default = parse_pipeline({"name": "t", "samples": _samples("b", "a", "c"), "features": ["x"]})
    assert default.class_names == ["b", "a", "c"] and default.signal_classes == ["b"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"classes": ["ttH", "ttbb"]}, r"must list exactly the sample labels.*missing \['ttlf'\]"),
        ({"classes": ["ttH", "ttbb", "ttlf", "tt2b"]}, r"no sample has \['tt2b'\]"),
        ({"signal": "ttW"}, r"'signal' names \['ttW'\], which no sample has"),
        ({"signal": ["ttH", "ttbb", "ttlf"]}, r"'signal' names every class"),
    ],
)
def test_bad_classes_are_config_errors(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(
            {"name": "t", "samples": _samples("ttH", "ttbb", "ttlf"), "features": ["x"], **extra}
        )


def test_multiclass_demo_pipeline_loads() -> None:
    config = load_pipeline(REPO / "pipelines" / "multiclass.yaml")
    assert config.class_names == PROCESSES and config.signal_classes == ["ttH"]


# -- weights ---------------------------------------------------------------------------------
def test_equal_weight_gives_every_class_the_same_total() -> None:
    rng = np.random.default_rng(1)
    label = np.repeat([0, 1, 2], [100, 700, 200])
    weight = rng.uniform(0.1, 2.0, label.size)
    rows, w = training_weights(label, weight, "equal_weight", "keep")
    totals = np.bincount(label[rows], weights=w)
    np.testing.assert_allclose(totals, totals[0])
    assert w.mean() == pytest.approx(1.0)


def test_two_class_equal_weight_is_unchanged() -> None:
    rng = np.random.default_rng(2)
    label = rng.integers(0, 2, 500)
    weight = rng.uniform(-0.2, 2.0, 500)
    rows, w = training_weights(label, weight, "equal_weight", "drop")
    expected = weight[rows].copy()
    kept = label[rows]
    for cls in (0, 1):  # the two-class rule as it always was
        expected[kept == cls] *= 0.5 * len(rows) / expected[kept == cls].sum()
    np.testing.assert_array_equal(w, expected)


# -- evaluation ------------------------------------------------------------------------------
def test_per_class_auc_and_confusion_match_scikit_learn() -> None:
    y, proba, w = _probabilities(4000, 4, seed=3)
    report = evaluate_multiclass(y, proba, w, y[:2000], proba[:2000], w[:2000], PROCESSES, ["ttH"])
    expected = roc_auc_score(y, proba, multi_class="ovr", average=None, sample_weight=w)
    np.testing.assert_allclose(list(report.auc_test_per_class.values()), expected, rtol=1e-12)
    assert report.auc_test == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro", sample_weight=w), rel=1e-12
    )
    sk = sk_confusion(y, proba.argmax(axis=1), sample_weight=w)
    np.testing.assert_allclose(report.confusion_test, sk)
    np.testing.assert_allclose(row_normalised(report.confusion_test).sum(axis=1), 1.0)
    assert report.accuracy_test == pytest.approx(np.trace(sk) / w.sum())
    summary = report.to_summary()
    assert summary["auc_test_per_class"] == report.auc_test_per_class
    np.testing.assert_allclose(summary["confusion_test"]["weighted"], sk)
    json.dumps(summary)  # JSON-ready


def test_node_yields_split_signal_and_background() -> None:
    y, proba, w = _probabilities(3000, 3, seed=4)
    report = evaluate_multiclass(
        y, proba, w, y, proba, w, ["ttH", "ttbb", "ttlf"], ["ttH"], yield_scale=2.0
    )
    node = proba.argmax(axis=1)
    for j, name in enumerate(["ttH", "ttbb", "ttlf"]):
        sb = report.signal_background_yields()[name]
        assert sb["signal"] == pytest.approx(2.0 * w[(node == j) & (y == 0)].sum())
        assert sb["background"] == pytest.approx(2.0 * w[(node == j) & (y != 0)].sum())


def test_ks_per_node_flags_a_train_test_difference() -> None:
    y, proba, w = _probabilities(4000, 3, seed=5)
    same = evaluate_multiclass(
        y[:2000], proba[:2000], w[:2000], y[2000:], proba[2000:], w[2000:], list("abc")
    )
    assert not same.overtrained and set(same.ks) == {"a", "b", "c"}
    sharper = proba[2000:] ** 4 / (proba[2000:] ** 4).sum(axis=1, keepdims=True)
    over = evaluate_multiclass(
        y[:2000], proba[:2000], w[:2000], y[2000:], sharper, w[2000:], list("abc")
    )
    assert over.overtrained and over.ks_pvalue_min < 1e-6


def test_bad_probabilities_name_the_problem() -> None:
    y, proba, w = _probabilities(100, 3, seed=6)
    with pytest.raises(ValueError, match=r"shape \(events, 4\)"):
        confusion_matrix(y, proba, w, 4)
    with pytest.raises(ValueError, match=r"classes \[2\] have a total weight <= 0"):
        confusion_matrix(np.where(y == 2, 0, y), proba, w, 3)


def test_plots_are_written(tmp_path: Path) -> None:
    y, proba, w = _probabilities(1500, 3, seed=7)
    report = evaluate_multiclass(y, proba, w, y, proba, w, ["ttH", "ttbb", "ttlf"], ["ttH"])
    paths = plot_multiclass(report, {"train": (y, proba, w), "test": (y, proba, w)}, tmp_path, "m")
    assert set(paths) == {"roc", "confusion", "nodes", "overtraining"}
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- demo data, training and outputs ----------------------------------------------------------
@pytest.fixture(scope="module")
def multiclass_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hepclf.ingest.demo_data import write_demo_data

    out = tmp_path_factory.mktemp("multiclass")
    write_demo_data(out, events=2500, seed=5, processes=PROCESSES)
    config = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    config.pop("result")  # the physics result of this pipeline: tests/test_physics_channels.py
    config["samples"] = [s for s in config["samples"] if s["label"] != "data"]
    for sample in config["samples"]:
        sample["files"] = [str(out / f"{sample['name']}.root")]
    (out / "mc.yaml").write_text(yaml.safe_dump(config))
    return out


def test_demo_processes_differ_in_flavour(multiclass_dir: Path) -> None:
    def tagged(name: str) -> float:
        btag = uproot.open(multiclass_dir / f"{name}.root")["Events"]["Jet_btag"].array()
        return float(np.mean(ak.to_numpy(ak.flatten(btag)) > 0.6))

    assert tagged("ttH") > tagged("ttbb") > tagged("ttcc") > tagged("ttlf")


def test_unknown_demo_process_is_a_config_error(tmp_path: Path) -> None:
    from hepclf.ingest.demo_data import write_demo_data

    with pytest.raises(ConfigError, match=r"unknown demo process\(es\) \['ttZ'\]"):
        write_demo_data(tmp_path, events=10, processes=["ttH", "ttZ"])


@pytest.fixture(scope="module")
def trained_bundle(multiclass_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from hepclf.ingest import ingest
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.fit import fit_model
    from hepclf.training.prepare import prepare

    config = load_pipeline(multiclass_dir / "mc.yaml")
    data = prepare(config, ingest(config, use_cache=False))
    model, _ = fit_model("xgb", {"n_estimators": 60}, config, data)
    bundle = ModelBundle(
        "xgb", list(config.features), data.normalizer, model, config.name, config.class_names
    )
    folder = tmp_path_factory.mktemp("bundle") / "xgb"
    bundle.save(folder)
    return config, data, folder


def test_bundle_keeps_the_class_order(trained_bundle) -> None:
    from hepclf.training.bundle import ModelBundle

    _, data, folder = trained_bundle
    bundle = ModelBundle.load(folder)
    assert bundle.classes == PROCESSES and bundle.multiclass
    X = data.table.X[data.split.test]
    proba = bundle.probabilities(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["root", "parquet"])
def test_scoring_writes_per_class_branches_and_node(
    trained_bundle, multiclass_dir, tmp_path, fmt
) -> None:
    from hepclf.scoring.file_job import ScoreSettings, score_file
    from hepclf.scoring.outputs import META_KEY
    from hepclf.scoring.scorers import load_scoring_models
    from hepclf.training.bundle import ModelBundle

    _, _, folder = trained_bundle
    models = load_scoring_models([f"mc={folder}"])
    out = tmp_path / f"ttcc_scores.{fmt}"
    result = score_file(str(multiclass_dir / "ttcc.root"), out, models, ScoreSettings(fmt=fmt))
    assert result.status == "scored", result.error
    branches = [f"score_mc_{c}" for c in PROCESSES]
    if fmt == "root":
        with uproot.open(out) as file:
            arrays = file["Events"].arrays(library="np")
            meta = json.loads(str(file[META_KEY]))
    else:
        table = pq.read_table(out)
        arrays = {c: table[c].to_numpy() for c in table.column_names}
        meta = json.loads(table.schema.metadata[META_KEY.encode()])
    assert list(arrays) == [*branches, "node_mc"]
    proba = np.column_stack([arrays[b] for b in branches])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(arrays["node_mc"], proba.argmax(axis=1))
    assert meta["classes"] == {"score_mc": PROCESSES}
    # the same numbers as the bundle gives for the same events
    bundle = ModelBundle.load(folder)
    events = uproot.open(multiclass_dir / "ttcc.root")["Events"].arrays()
    expected = bundle.probabilities(bundle.features_from_branches(events, len(events)))
    np.testing.assert_allclose(proba, expected, rtol=1e-6)


def test_pyfunc_returns_one_column_per_class(trained_bundle, mlflow_server: str) -> None:
    import mlflow
    import pandas as pd

    from hepclf.tracking.pyfunc import log_bundle
    from hepclf.training.bundle import ModelBundle
    from tests.conftest import tracking_uri

    _, data, folder = trained_bundle
    bundle = ModelBundle.load(folder)
    frame = pd.DataFrame(data.table.X[data.split.test[:200]], columns=bundle.columns)
    with tracking_uri(mlflow_server):
        mlflow.set_experiment("hepclf-multiclass-tests")
        with mlflow.start_run():
            uri = log_bundle(bundle)
        loaded = mlflow.pyfunc.load_model(uri)
        out = loaded.predict(frame)
        info = mlflow.models.get_model_info(uri)
    assert list(out.columns) == PROCESSES
    np.testing.assert_allclose(out.to_numpy().sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out.to_numpy(), bundle.probabilities(frame.to_numpy()), rtol=1e-6)
    assert [c["name"] for c in info.signature.outputs.to_dict()] == PROCESSES
    assert info.metadata == {"classes": PROCESSES}


def test_onnx_export_gives_the_class_probabilities(trained_bundle, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnx

    from hepclf.scoring.onnx_export.export import export_onnx, onnx_scores
    from hepclf.training.bundle import ModelBundle

    _, data, folder = trained_bundle
    bundle = ModelBundle.load(folder)
    result = export_onnx(bundle, tmp_path / "mc.onnx")
    model = onnx.load(str(result.path))
    X = data.table.X[data.split.test[:300]]
    proba = onnx_scores(model, X)
    assert proba.shape == (300, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba, bundle.probabilities(X), atol=1e-5)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == PROCESSES


@pytest.mark.slow
def test_service_returns_per_class_probabilities(
    trained_bundle, multiclass_dir: Path, mlflow_server: str, tmp_path: Path
) -> None:
    import mlflow

    from hepclf.tracking.pyfunc import log_bundle
    from hepclf.tracking.registry import register_model
    from hepclf.training.bundle import ModelBundle
    from tests.conftest import serve, tracking_uri

    _, _, folder = trained_bundle
    bundle = ModelBundle.load(folder)
    with tracking_uri(mlflow_server):
        mlflow.set_experiment("hepclf-multiclass-tests")
        with mlflow.start_run():
            register_model(log_bundle(bundle), "multiclass-test")
    (tmp_path / "data").mkdir()
    with serve(tmp_path, tmp_path / "data", mlflow_server) as server, server.client() as client:
        events = uproot.open(multiclass_dir / "ttbb.root")["Events"].arrays(entry_stop=50)
        payload = [
            {b: ak.to_list(events[b][i]) for b in bundle.required_branches} for i in range(50)
        ]
        response = client.post("/models/multiclass-test/score", json={"events": payload})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["classes"] == PROCESSES and "scores" not in body
    proba = np.column_stack([body["probabilities"][c] for c in PROCESSES])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    expected = bundle.probabilities(bundle.features_from_branches(events, 50))
    np.testing.assert_allclose(proba, expected, rtol=1e-5)


# -- the two-class path is unchanged ------------------------------------------------------
def test_two_class_metrics_keys_and_branch_names_are_unchanged(demo_dir: Path) -> None:
    from hepclf.ingest import ingest
    from hepclf.scoring.scorers import ModelSpec, ScoringModel
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare
    from hepclf.workflows.train import bundle_of
    from tests.conftest import demo_pipeline_dict

    config = parse_pipeline(demo_pipeline_dict(demo_dir))
    data = prepare(config, ingest(config, use_cache=False))
    assert data.table.label.dtype == np.int8 and set(np.unique(data.table.label)) == {0, 1}
    assert (data.table.label == 1).sum() == data.table.info["samples"][0]["selected"]
    result = train_model("linear", {}, config, data)
    assert list(result.report.to_flat_dict()) == TWO_CLASS_METRIC_KEYS
    assert "auc_test_per_class" not in result.report.to_summary()
    assert result.scores["test"].ndim == 1
    bundle = bundle_of(result, config, data)
    assert bundle.classes == ["background", "signal"] and not bundle.multiclass
    model = ScoringModel(ModelSpec("x", "score_linear"), bundle)
    assert model.columns == ("score_linear",)
    X = data.table.X[data.split.test[:50]]
    outputs = model.outputs(bundle.probabilities(X))
    assert list(outputs) == ["score_linear"]
    np.testing.assert_array_equal(outputs["score_linear"], bundle.score_features(X))
    assert isinstance(bundle, ModelBundle)


@pytest.mark.slow
def test_pipeline_writes_multiclass_metrics_and_plots(
    multiclass_dir: Path, tmp_path: Path, cache_dir: Path
) -> None:
    from hepclf.workflows.train import run_pipeline

    config = load_pipeline(multiclass_dir / "mc.yaml")
    out = tmp_path / "out"
    result = run_pipeline(
        config, models=["linear"], output=out, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    doc = json.loads((out / "metrics.json").read_text())["linear"]
    assert doc["auc_test"] == pytest.approx(np.mean(list(doc["auc_test_per_class"].values())))
    assert list(doc["auc_test_per_class"]) == PROCESSES
    assert doc["confusion_test"]["classes"] == PROCESSES
    assert np.asarray(doc["confusion_test"]["weighted"]).shape == (4, 4)
    assert set(doc["node_signal_background"]) == set(PROCESSES)
    # expected yields per node add up to the test events' weights, each sample's scaled by
    # its events / its test events (as the physics result counts them), computed here
    total = sum(sb["signal"] + sb["background"] for sb in doc["node_signal_background"].values())
    from hepclf.ingest import ingest
    from hepclf.training.prepare import prepare

    data = prepare(config, ingest(config))
    sample, weight, test = data.table.sample, data.table.weight, data.split.test
    expected = sum(
        weight[test][sample[test] == s].sum() * (sample == s).sum() / (sample[test] == s).sum()
        for s in np.unique(sample)
    )
    assert total == pytest.approx(expected, rel=1e-9)
    assert total == pytest.approx(weight.sum(), rel=0.02)  # and the sample's, statistically
    for plot in ("roc_per_class", "confusion", "node_outputs", "overtraining"):
        assert (out / "plots" / f"linear_{plot}.png").is_file()
    assert result.results["linear"].report.auc_test == doc["auc_test"]


def test_tuning_objective_is_the_macro_auc_for_several_classes() -> None:
    from hepclf.models import build_model
    from hepclf.training.split import assign_folds
    from hepclf.training.tuning_cv import cross_validated_auc

    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 1500)
    X = rng.normal(size=(1500, 4)) + 0.8 * np.eye(4)[y % 4]
    fold = assign_folds(len(X), 3, 1)
    aucs = cross_validated_auc("linear", {}, X, y, None, None, fold, 1)
    for k, auc in enumerate(aucs):
        model = build_model("linear", {}, 1).fit(X[fold != k], y[fold != k])
        proba = model.predict_proba(X[fold == k])
        assert auc == pytest.approx(roc_auc_score(y[fold == k], proba, multi_class="ovr"))


@pytest.mark.slow
def test_kfold_multiclass_pipeline_scores_training_files_exactly_out_of_fold(
    multiclass_dir: Path, tmp_path: Path, cache_dir: Path
) -> None:
    """k-fold with four classes: out-of-fold macro AUC in metrics.json, and the registered
    fold ensemble scores every training event with the fold model that did not train on it
    (pyfunc and batch scoring, one branch per class)."""
    import mlflow
    import pandas as pd

    from hepclf.ingest import ingest
    from hepclf.scoring.file_job import ScoreSettings
    from hepclf.scoring.runner import score_files
    from hepclf.scoring.scorers import load_scoring_models
    from hepclf.workflows.train import run_pipeline

    raw = yaml.safe_load((multiclass_dir / "mc.yaml").read_text())
    raw |= {
        "split": {"method": "kfold", "folds": 3},
        "event_id": "event",
        "models": {"xgb": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1}},
    }
    config = parse_pipeline(raw, base_dir=tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_pipeline(
        config, models=["xgb"], output=tmp_path / "out", tracking_uri=uri, register="mckf"
    )
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())["xgb"]
    model = result.results["xgb"]
    table = ingest(config)
    oof = model.scores["test"]
    assert oof.shape == (len(table), 4)
    # every event out-of-fold is the test sample (genWeight has negative weights, which
    # scikit-learn's AUC refuses: tests/test_crossval.py compares with it on positive ones)
    report = evaluate_multiclass(
        table.label, oof, table.weight, table.label, oof, table.weight, PROCESSES
    )
    assert doc["auc_test_per_class"] == pytest.approx(report.auc_test_per_class, abs=1e-12)
    assert doc["auc_test"] == pytest.approx(np.mean(list(doc["auc_test_per_class"].values())))
    assert len(doc["auc_folds"]) == 3
    assert doc["auc_folds_mean"] == pytest.approx(np.mean(doc["auc_folds"]))
    assert (tmp_path / "out" / "plots" / "xgb_roc_folds.png").is_file()

    mlflow.set_tracking_uri(uri)
    frame = pd.DataFrame(table.X, columns=table.columns).assign(event=table.event_id)
    pyfunc = mlflow.pyfunc.load_model("models:/mckf@champion")
    got = pyfunc.predict(frame)
    assert list(got.columns) == PROCESSES
    assert np.array_equal(got.to_numpy().astype(oof.dtype), oof)  # exactly (scores: float32)
    models = load_scoring_models(["models:/mckf@champion"])
    files = [str(multiclass_dir / f"{p}.root") for p in PROCESSES]
    settings = ScoreSettings(out_dir=tmp_path / "scored", keep_branches=("event",))
    summary = score_files(files, models, settings)
    assert [r.status for r in summary.results] == ["scored"] * 4
    branches = [f"{models[0].branch}_{c}" for c in PROCESSES]
    for sample, name in enumerate(PROCESSES):
        with uproot.open(tmp_path / "scored" / f"{name}_scores.root") as f:
            scored = f["Events"].arrays([*branches, "event"], library="np")
        rows = np.flatnonzero(table.sample == sample)
        position = {e: i for i, e in enumerate(scored["event"].tolist())}
        pick = [position[e] for e in table.event_id[rows].tolist()]
        proba = np.column_stack([scored[b][pick] for b in branches])
        np.testing.assert_array_equal(proba.astype(oof.dtype), oof[rows])
