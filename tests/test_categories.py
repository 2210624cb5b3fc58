"""Categories (TMVA's Category method): per-category training, routing, evaluation, outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
import yaml
from sklearn.metrics import roc_auc_score

from hepclf.config import load_pipeline, parse_pipeline
from hepclf.config.training import CategoryConfig
from hepclf.ingest.events.categories import CategoryModel, assign
from hepclf.runtime.errors import ConfigError
from hepclf.training.categories import CategoryReport, category_scores
from tests.conftest import REPO, demo_pipeline_dict, shared_file

CUT = 1.3  # TMVA's example: |eta| <= 1.3 and > 1.3


def test_categories_config_is_checked() -> None:
    base = demo_pipeline_dict(Path("/nowhere"))
    with pytest.raises(ConfigError, match=r"categories\[0\]\.name: String should match"):
        parse_pipeline({**base, "categories": [{"name": "a b", "selection": "met > 1"}]})
    with pytest.raises(ConfigError, match=r"category 'x': the expression 'met >' is not valid"):
        parse_pipeline({**base, "categories": [{"name": "x", "selection": "met >"}]})
    with pytest.raises(ConfigError, match=r"unique names"):
        parse_pipeline({**base, "categories": [{"name": "x", "selection": "met > 1"}] * 2})
    kfold = {**base, "categories": [{"name": "x", "selection": "met > 1"}]}
    assert parse_pipeline({**kfold, "split": {"method": "kfold"}}).split.folds == 5  # allowed
    config = load_pipeline(REPO / "pipelines" / "categories.yaml")
    assert [c.name for c in config.categories] == ["central", "forward"]


def test_assign_marks_no_and_several_categories() -> None:
    categories = [
        CategoryConfig(name="a", selection="x < 1"),
        CategoryConfig(name="b", selection="x > 0"),
    ]
    x = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(assign(categories, {"x": x}, 3), [0, -2, 1])
    lone = [CategoryConfig(name="a", selection="x < 0")]
    np.testing.assert_array_equal(assign(lone, {"x": x}, 3), [0, -1, -1])


def _toy_config(tmp_path: Path, categories: list[dict] | None = None) -> Path:
    toy = shared_file("toy_sigbkg_categ_offset.root")
    config = yaml.safe_load((REPO / "pipelines" / "categories.yaml").read_text())
    for sample in config["samples"]:
        sample["files"] = [str(toy)]
    config["event_id"] = None
    if categories is not None:
        config["categories"] = categories
    path = tmp_path / "categories.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_overlapping_categories_are_a_config_error_with_counts(tmp_path: Path) -> None:
    from hepclf.ingest import ingest

    toy = shared_file("toy_sigbkg_categ_offset.root")
    eta = uproot.open(toy)["TreeS"]["eta"].array(library="np")
    overlap = int(((np.abs(eta) <= 1.5) & (np.abs(eta) > CUT)).sum())
    path = _toy_config(
        tmp_path,
        [
            {"name": "central", "selection": "abs(eta) <= 1.5"},
            {"name": "forward", "selection": f"abs(eta) > {CUT}"},
        ],
    )
    with pytest.raises(
        ConfigError,
        match=rf"sample 'sig': 0 event\(s\) pass no category .* {overlap} pass more than one, "
        "out of 10000",
    ):
        ingest(load_pipeline(path), use_cache=False)


@pytest.fixture(scope="module")
def toy_training(tmp_path_factory: pytest.TempPathFactory):
    """Per-category and inclusive linear models on TMVA's category toy."""
    from hepclf.ingest import ingest
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare
    from hepclf.workflows.train import bundle_of

    folder = tmp_path_factory.mktemp("categories")
    config = load_pipeline(_toy_config(folder))
    data = prepare(config, ingest(config, use_cache=False))
    result = train_model("linear", {}, config, data)
    inclusive = train_model("linear", {}, config.model_copy(update={"categories": None}), data)
    bundle = bundle_of(result, config, data)
    bundle.save(folder / "bundle")
    return config, data, result, inclusive, folder


def _toy_events(toy: Path) -> dict[int, dict[str, np.ndarray]]:
    with uproot.open(toy) as file:
        return {i: file[tree].arrays(library="np") for i, tree in enumerate(("TreeS", "TreeB"))}


def test_combined_and_per_category_auc_match_scikit_learn(toy_training) -> None:
    _, data, result, inclusive, _ = toy_training
    report = result.report
    assert isinstance(report, CategoryReport) and isinstance(result.classifier, CategoryModel)
    # independent routing: |eta| from the ROOT file, each event scored by its own model
    events = _toy_events(shared_file("toy_sigbkg_categ_offset.root"))
    rows = data.split.test
    sample, entry = data.table.sample[rows], data.table.event_id[rows]
    eta = np.array([events[s]["eta"][e] for s, e in zip(sample, entry, strict=True)])
    forward = (np.abs(eta) > CUT).astype(int)
    X = data.normalizer.transform(data.table.X[rows])
    score = np.empty(len(rows))
    for k, model in enumerate(result.classifier.models):
        score[forward == k] = model.predict_proba(X[forward == k])[:, 1]
    y = data.table.label[rows]
    np.testing.assert_allclose(result.scores["test"], score)
    assert report.auc_test == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    for k, name in enumerate(["central", "forward"]):
        expected = roc_auc_score(y[forward == k], score[forward == k])
        assert report.per_category[name].auc_test == pytest.approx(expected, abs=1e-12)
    summary = report.to_summary()
    assert summary["auc_test"] == report.auc_test
    assert set(summary["categories"]) == {"central", "forward"}
    assert "category_forward_auc_test" in report.to_flat_dict()
    # the point of categories: a linear model per region beats one inclusive linear model
    assert report.auc_test > 0.90 and report.auc_test > inclusive.report.auc_test + 0.08


def test_scoring_routes_events_as_training_did(toy_training, tmp_path: Path) -> None:
    from hepclf.scoring.file_job import ScoreSettings, score_file
    from hepclf.scoring.scorers import load_scoring_models

    _, data, result, _, folder = toy_training
    toy = shared_file("toy_sigbkg_categ_offset.root")
    models = load_scoring_models([str(folder / "bundle")])
    out = tmp_path / "sig.root"
    outcome = score_file(str(toy), out, models, ScoreSettings(tree="TreeS"))
    assert outcome.status == "scored" and outcome.nan_scores == 0
    with uproot.open(out) as file:
        written = file["TreeS"]["score_linear"].array(library="np")
    scores, category = category_scores(result.classifier, data, "test")
    signal = data.table.sample[data.split.test] == 0
    entries = data.table.event_id[data.split.test][signal]
    np.testing.assert_allclose(written[entries], scores[signal], rtol=1e-6)
    eta = uproot.open(toy)["TreeS"]["eta"].array(library="np")
    np.testing.assert_array_equal(category[signal], (np.abs(eta[entries]) > CUT).astype(int))


def test_unrouted_events_get_nan_and_a_logged_count(toy_training, caplog) -> None:
    from hepclf.training.bundle import ModelBundle

    _, _, result, _, folder = toy_training
    bundle = ModelBundle.load(folder / "bundle")
    gap = [
        CategoryConfig(name="central", selection="abs(eta) <= 1.0"),
        CategoryConfig(name="forward", selection=f"abs(eta) > {CUT}"),
    ]
    bundle.classifier = CategoryModel("linear", gap, result.classifier.models)
    events = _toy_events(shared_file("toy_sigbkg_categ_offset.root"))[0]
    X = bundle.features_from_branches(events, len(events["eta"]))
    with caplog.at_level(logging.WARNING, logger="hepclf.ingest.events.categories"):
        scores = bundle.score_features(X)
    lost = (np.abs(events["eta"]) > 1.0) & (np.abs(events["eta"]) <= CUT)
    np.testing.assert_array_equal(np.isnan(scores), lost)
    assert f"{int(lost.sum())} event(s) in no category and 0 in several" in caplog.text


def test_category_bundle_round_trip_and_pyfunc(toy_training, mlflow_server: str) -> None:
    import mlflow

    from hepclf.tracking.pyfunc import log_bundle
    from hepclf.training.bundle import ModelBundle
    from tests.conftest import tracking_uri

    _, data, result, _, folder = toy_training
    bundle = ModelBundle.load(folder / "bundle")
    assert bundle.routing_columns == ["eta"] and bundle.required_branches[0] == "eta"
    events = _toy_events(shared_file("toy_sigbkg_categ_offset.root"))[1]
    frame = pd.DataFrame({k: events[k][:300] for k in ("var1", "var2", "var3", "var4", "eta")})
    expected = bundle.score_features(bundle.features_from_frame(frame))
    scores, _ = category_scores(result.classifier, data, "test")
    assert np.isfinite(expected).all() and np.isfinite(scores).all()
    with tracking_uri(mlflow_server):
        mlflow.set_experiment("hepclf-category-tests")
        with mlflow.start_run():
            uri = log_bundle(bundle)
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_allclose(loaded.predict(frame), expected, rtol=1e-6)
        with pytest.raises(Exception, match=r"missing inputs \['eta'\]"):  # the signature
            loaded.predict(frame.drop(columns="eta"))


def test_service_columns_need_the_routing_branch(toy_training) -> None:
    from hepclf.scoring.service.payloads import PayloadError, features_from_columns
    from hepclf.training.bundle import ModelBundle

    _, _, _, _, folder = toy_training
    bundle = ModelBundle.load(folder / "bundle")
    columns = {"var1": [0.1, 2.0], "var2": [0.0, 1.0], "var3": [0.3, 1.0], "var4": [0.2, 2.0]}
    with pytest.raises(PayloadError, match=r"missing column\(s\) \['eta'\]"):
        features_from_columns(columns, bundle)
    X = features_from_columns({**columns, "eta": [0.5, -2.0]}, bundle)
    np.testing.assert_array_equal(X[:, -1], [0, 1])
    proba = bundle.probabilities(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_onnx_export_writes_one_file_per_category(toy_training, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import json

    import onnx

    from hepclf.scoring.onnx_export.export import export_onnx_categories, onnx_scores
    from hepclf.training.bundle import ModelBundle

    _, data, result, _, folder = toy_training
    bundle = ModelBundle.load(folder / "bundle")
    written = export_onnx_categories(bundle, tmp_path / "toy.onnx")
    assert {n: r.path.name for n, r in written.items()} == {
        "central": "toy_central.onnx",
        "forward": "toy_forward.onnx",
    }
    scores, category = category_scores(result.classifier, data, "test")
    X = data.table.X[data.split.test]
    for k, name in enumerate(["central", "forward"]):
        model = onnx.load(str(written[name].path))
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["category"] == name
        assert json.loads(meta["categories"])[k]["selection"] == meta["category_selection"]
        rows = category == k
        np.testing.assert_allclose(onnx_scores(model, X[rows]), scores[rows], atol=1e-5)


def test_multiclass_model_per_category(tmp_path: Path) -> None:
    from hepclf.evaluation.multiclass import MulticlassReport
    from hepclf.ingest import ingest
    from hepclf.ingest.demo_data import write_demo_data
    from hepclf.scoring.scorers import ModelSpec, ScoringModel
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare
    from hepclf.workflows.train import bundle_of

    processes = ["ttH", "ttbb", "ttlf"]
    write_demo_data(tmp_path, events=1500, seed=9, processes=processes)
    config = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    config.pop("result")
    config["samples"] = [
        {**s, "files": [str(tmp_path / f"{s['name']}.root")]}
        for s in config["samples"]
        if s["name"] in processes
    ]
    config["classes"] = processes
    config["features"].append("lep_eta")
    config["categories"] = [
        {"name": "central", "selection": "abs(lep_eta) <= 1"},
        {"name": "forward", "selection": "abs(lep_eta) > 1"},
    ]
    pipeline = parse_pipeline(config, base_dir=tmp_path)
    data = prepare(pipeline, ingest(pipeline, use_cache=False))
    result = train_model("linear", {}, pipeline, data)
    report = result.report
    assert isinstance(report.combined, MulticlassReport)
    assert set(report.per_category) == {"central", "forward"}
    assert list(report.per_category["forward"].auc_test_per_class) == processes
    assert report.to_summary()["auc_test_per_class"] == report.combined.auc_test_per_class
    bundle: ModelBundle = bundle_of(result, pipeline, data)
    events = uproot.open(tmp_path / "ttbb.root")["Events"].arrays()
    X = bundle.features_from_branches(events, len(events))
    outputs = ScoringModel(ModelSpec("x", "score_mc"), bundle).outputs(bundle.probabilities(X))
    proba = np.column_stack([outputs[f"score_mc_{c}"] for c in processes])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    central = np.abs(np.asarray(events["lep_eta"])) <= 1
    direct = result.classifier.models[0].predict_proba(data.normalizer.transform(X[central, :-1]))
    np.testing.assert_allclose(proba[central], direct)


def test_the_example_pipeline_runs_from_a_clone(tmp_path: Path, cache_dir: Path) -> None:
    """`hepclf demo-data --categories` makes the file pipelines/categories.yaml reads, where
    the YAML says, with no ../shared folder: every event lands in its |eta| category."""
    import subprocess
    import sys

    from hepclf.ingest import ingest

    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "categories.yaml").write_bytes(
        (REPO / "pipelines" / "categories.yaml").read_bytes()
    )
    command = "hepclf demo-data --categories --out demo/categories --events 10000"
    assert command in (REPO / "pipelines" / "categories.yaml").read_text()
    args = command.replace("10000", "3000").split()[1:]
    done = subprocess.run(
        [sys.executable, "-m", "hepclf", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    table = ingest(load_pipeline(tmp_path / "pipelines" / "categories.yaml"))
    eta = np.concatenate(
        [
            uproot.open(tmp_path / "demo" / "categories" / "categories.root")[tree]["eta"].array(
                library="np"
            )
            for tree in ("TreeS", "TreeB")
        ]
    )
    np.testing.assert_array_equal(table.category, np.where(np.abs(eta) <= CUT, 0, 1))
    forward = table.X[table.category == 1]
    central = table.X[table.category == 0]
    var4 = table.columns.index("var4")
    assert forward[:, var4].mean() > central[:, var4].mean() + 0.5  # shapes differ by region
