"""k-fold cross-validated training and application, checked against independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from hepclf.config.training import SplitConfig
from hepclf.ingest.table import FeatureTable
from hepclf.models import build_model, load_model
from hepclf.models.folds import RULE_EVENT_ID, RULE_RANDOM, FoldEnsemble
from hepclf.training.crossval import evaluate_folds, fold_scores
from hepclf.training.split import assign_folds, split_table

TINY_XGB = {"n_estimators": 40, "n_jobs": 1, "early_stopping_rounds": 5, "max_depth": 3}


def events(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two Gaussian classes in 6 features, positive weights and sparse 64-bit event ids."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6)) + 0.6 * y[:, None] * np.array([1, 0.5, 0, 0, 0.3, 0])
    w = rng.uniform(0.5, 1.5, n)
    ids = rng.choice(10**12, size=n, replace=False)
    return X.astype(np.float32), y, w, ids


def test_folds_follow_event_id_modulo() -> None:
    ids = np.array([0, 1, 2, 3, 4, 5, 17, 10**12 + 3])
    assert assign_folds(len(ids), 5, seed=1, event_id=ids).tolist() == [0, 1, 2, 3, 4, 0, 2, 3]
    # the seed plays no part with event ids: the rule must be recoverable from the id alone
    assert np.array_equal(
        assign_folds(len(ids), 3, seed=1, event_id=ids), assign_folds(len(ids), 3, 99, ids)
    )


def test_random_folds_are_seeded_and_balanced() -> None:
    a = assign_folds(1003, 5, seed=7)
    assert np.array_equal(a, assign_folds(1003, 5, seed=7))
    assert not np.array_equal(a, assign_folds(1003, 5, seed=8))
    counts = np.bincount(a, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1003
    # not simply row order: neighbouring rows land in different folds
    assert (np.diff(a) != 1).mean() > 0.5


def test_split_table_kfold_uses_event_id_only_when_asked() -> None:
    X, y, w, ids = events(500)
    table = FeatureTable(X, [f"x{i}" for i in range(6)], y, w, np.zeros(500, int), ["s"], ids)
    config = SplitConfig(method="kfold", seed=3)
    assert config.folds == 5  # k-fold's own default
    by_id = split_table(table, config, use_event_id=True)
    assert np.array_equal(by_id.folds, ids % 5)
    assert len(by_id.train) == len(by_id.test) == 500 and len(by_id.validation) == 0
    seeded = split_table(table, config)
    assert np.array_equal(seeded.folds, assign_folds(500, 5, 3))


def test_no_event_is_scored_by_a_model_that_trained_on_it() -> None:
    """A 1-nearest-neighbour model memorises its training events: with labels that carry no
    information, any event scored by a model that saw it would get its own label back."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 3))
    y = rng.integers(0, 2, 1000)
    ids = rng.choice(10**9, size=1000, replace=False)
    ensemble = FoldEnsemble(KNeighborsClassifier(n_neighbors=1), folds=4).fit(X, y, event_id=ids)
    scores = fold_scores(ensemble, X)
    for k in range(4):  # in-fold: the model recalls its training events perfectly
        assert np.array_equal(scores.in_fold[k], y[scores.fold != k])
    assert np.array_equal(scores.in_fold_per_event(), y)
    recalled = np.mean(scores.out_of_fold == y)
    assert 0.4 < recalled < 0.6, recalled
    assert 0.44 < roc_auc_score(y, scores.out_of_fold) < 0.56
    applied = ensemble.predict_proba(X, event_id=ids)[:, 1]
    assert np.array_equal(applied, scores.out_of_fold)


def test_fold_model_is_the_model_trained_on_the_other_folds() -> None:
    X, y, w, ids = events(2000)
    base = build_model("xgb", TINY_XGB, seed=1)
    ensemble = FoldEnsemble(base, folds=3).fit(X, y, w, event_id=ids)
    assert ensemble.fold_rule_ == RULE_EVENT_ID
    for k in range(3):
        train = ids % 3 != k
        again = clone(base).fit(X[train], y[train], w[train])
        test = ~train
        assert np.array_equal(
            again.predict_proba(X[test]), ensemble.estimators_[k].predict_proba(X[test])
        )


def test_out_of_fold_auc_matches_scikit_learn() -> None:
    X, y, w, ids = events(3000, seed=2)
    ensemble = FoldEnsemble(build_model("linear", {}, seed=1), folds=5).fit(X, y, w, ids)
    scores = fold_scores(ensemble, X)
    result = evaluate_folds(scores, y, w)
    order = np.concatenate([np.flatnonzero(scores.fold == k) for k in range(5)])
    expected = roc_auc_score(y[order], scores.out_of_fold[order], sample_weight=w[order])
    assert result.report.auc_test == pytest.approx(expected, abs=1e-12)
    for k in range(5):
        rows = scores.fold == k
        assert result.auc_folds[k] == pytest.approx(
            roc_auc_score(y[rows], scores.out_of_fold[rows], sample_weight=w[rows]), abs=1e-12
        )
    assert result.auc_folds_mean == pytest.approx(np.mean(result.auc_folds))
    assert result.auc_folds_std == pytest.approx(np.std(result.auc_folds, ddof=1))
    summary = result.summary()
    assert len(summary["auc_folds"]) == 5
    assert not result.report.overtrained  # a linear model has nothing to memorise


@pytest.mark.parametrize(("name", "params"), [("xgb", TINY_XGB), ("bdt", {"n_trees": 20})])
def test_scoring_training_events_reproduces_out_of_fold_scores_exactly(
    name: str, params: dict, tmp_path: Path
) -> None:
    X, y, w, ids = events(2000, seed=4)
    ensemble = FoldEnsemble(build_model(name, params, seed=2), folds=5).fit(X, y, w, ids)
    oof = fold_scores(ensemble, X).out_of_fold
    ensemble.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, FoldEnsemble) and loaded.name == name
    shuffled = np.random.default_rng(0).permutation(len(X))
    scored = loaded.predict_proba(X[shuffled], event_id=ids[shuffled])[:, 1]
    assert np.array_equal(scored, oof[shuffled])
    # without ids every fold model scores and the probabilities are averaged
    average = np.mean([m.predict_proba(X)[:, 1] for m in ensemble.estimators_], axis=0)
    assert np.allclose(loaded.predict_proba(X)[:, 1], average, rtol=0, atol=1e-12)
    mixed = np.where(np.arange(len(X)) % 2 == 0, ids % 5, -1)  # fold -1: id unknown
    proba = loaded.predict_proba_folds(X, mixed)[:, 1]
    assert np.array_equal(proba[::2], oof[::2])
    assert np.allclose(proba[1::2], average[1::2], rtol=0, atol=1e-12)


def test_random_folds_average_when_applied() -> None:
    X, y, w, ids = events(800, seed=6)
    ensemble = FoldEnsemble(build_model("linear", {}, seed=1), folds=4, seed=3).fit(X, y, w)
    assert ensemble.fold_rule_ == RULE_RANDOM
    assert np.array_equal(ensemble.folds_, assign_folds(800, 4, 3))
    average = np.mean([m.predict_proba(X) for m in ensemble.estimators_], axis=0)
    assert np.allclose(ensemble.predict_proba(X, event_id=ids), average)


def test_over_trained_bdt_is_still_flagged_out_of_fold() -> None:
    X, y, w, ids = events(3000, seed=8)
    bdt = build_model("bdt", {"max_depth": 8, "min_node_size": 0, "n_trees": 60}, seed=1)
    ensemble = FoldEnsemble(bdt, folds=3).fit(X, y, w, ids)
    result = evaluate_folds(fold_scores(ensemble, X), y, w)
    assert result.report.overtrained
    assert result.report.auc_train > result.report.auc_test + 0.05
    assert all(min(s.pvalue, b.pvalue) < 0.05 for s, b in result.ks_folds)


def test_fold_roc_plot_is_written(tmp_path: Path) -> None:
    from PIL import Image

    from hepclf.evaluation.figures import plot_fold_roc

    X, y, w, ids = events(1500, seed=9)
    ensemble = FoldEnsemble(build_model("linear", {}, seed=1), folds=3).fit(X, y, w, ids)
    result = evaluate_folds(fold_scores(ensemble, X), y, w)
    path = plot_fold_roc(result, tmp_path / "roc_folds.png", "linear")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 500


@pytest.mark.slow
def test_kfold_pipeline_scores_training_files_exactly_out_of_fold(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """k-fold pipeline -> registered fold ensemble -> score the training ROOT files with the
    batch scorer and with the pyfunc: every event gets exactly its out-of-fold score."""
    import json

    import mlflow
    import pandas as pd

    from hepclf.config import parse_pipeline
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import demo_pipeline_dict

    raw = demo_pipeline_dict(  # trees: bit-identical per event whatever the batch (BLAS-based
        demo_dir,  # models agree to ~1e-16, as matrix products depend on the batch shape)
        split={"method": "kfold", "folds": 3, "seed": 5},
        models={"xgb": TINY_XGB},
    )
    config = parse_pipeline(raw, base_dir=tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_pipeline(config, output=tmp_path / "out", tracking_uri=uri, register="kf")
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    table_rows = result.results[result.best]
    oof = table_rows.scores["test"]
    entry = doc[result.best]
    assert len(entry["auc_folds"]) == 3
    assert entry["auc_test"] == pytest.approx(table_rows.report.auc_test)
    assert (tmp_path / "out" / "plots" / f"{result.best}_roc_folds.png").is_file()

    from hepclf.ingest import ingest

    table = ingest(config)
    mlflow.set_tracking_uri(uri)
    scored = batch_scores_by_event("models:/kf@champion", demo_dir, table, tmp_path / "scored")
    assert np.array_equal(scored, oof)  # exactly, not approximately
    frame = pd.DataFrame(table.X, columns=table.columns)
    pyfunc = mlflow.pyfunc.load_model("models:/kf@champion")
    assert np.array_equal(pyfunc.predict(frame.assign(event=table.event_id)), oof)
    averaged = pyfunc.predict(frame)  # no event id: the average of the fold models
    assert not np.array_equal(averaged, oof)
    assert abs(roc_auc_score(table.label, averaged) - roc_auc_score(table.label, oof)) < 0.05


@pytest.mark.parametrize("name", ["xgb", "linear"])
def test_onnx_export_of_a_fold_ensemble_averages_the_folds(name: str, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from hepclf.config.features import FeatureConfig
    from hepclf.config.training import NormalizationConfig
    from hepclf.scoring.onnx_export.export import export_onnx
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    X, y, w, ids = events(1500, seed=11)
    X = X * 3.0 + 1.0  # raw columns: the exported graph normalises them itself
    columns = [f"x{i}" for i in range(X.shape[1])]
    normalizer = Normalizer.fit(X, NormalizationConfig())
    params = TINY_XGB if name == "xgb" else {}
    ensemble = FoldEnsemble(build_model(name, params, seed=1), folds=3).fit(
        normalizer.transform(X), y, w, ids
    )
    bundle = ModelBundle(
        name, [FeatureConfig(name=c, branch=c) for c in columns], normalizer, ensemble,
        event_id="event",
    )  # fmt: skip
    result = export_onnx(bundle, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(["score"], {"features": X.astype(np.float32)})[0]
    Z = normalizer.transform(X)
    average = np.mean([m.predict_proba(Z)[:, 1] for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(got, average, atol=1e-5)


def test_service_columns_with_event_ids_score_each_event_out_of_fold() -> None:
    from hepclf.config.features import FeatureConfig
    from hepclf.config.training import NormalizationConfig
    from hepclf.scoring.service.payloads import PayloadError, features_from_columns
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    X, y, w, ids = events(900, seed=4)
    normalizer = Normalizer.fit(X, NormalizationConfig())
    ensemble = FoldEnsemble(build_model("linear", {}, seed=1), folds=3)
    ensemble.fit(normalizer.transform(X), y, w, ids)
    columns = [f"x{i}" for i in range(X.shape[1])]
    bundle = ModelBundle(
        "linear", [FeatureConfig(name=c, branch=c) for c in columns], normalizer, ensemble,
        event_id="event",
    )  # fmt: skip
    payload = {c: X[:, j].tolist() for j, c in enumerate(columns)}
    with_ids = bundle.score_features(
        features_from_columns({**payload, "event": [int(i) for i in ids]}, bundle)
    )
    Z = normalizer.transform(X).astype(np.float32)
    oof = ensemble.predict_proba_folds(Z, ensemble.folds_)[:, 1]
    np.testing.assert_allclose(with_ids, oof, rtol=0, atol=1e-12)
    averaged = bundle.score_features(features_from_columns(payload, bundle))
    mean = np.mean([m.predict_proba(Z)[:, 1] for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(averaged, mean, rtol=0, atol=1e-12)
    with pytest.raises(PayloadError, match=r"columns.event\[0\]: event ids must be 64-bit"):
        features_from_columns({**payload, "event": [1.5] * len(ids)}, bundle)


def test_onnx_export_of_a_multiclass_fold_ensemble_averages_probabilities(
    tmp_path: Path,
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from hepclf.config.features import FeatureConfig
    from hepclf.config.training import NormalizationConfig
    from hepclf.scoring.onnx_export.export import export_onnx
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 1200)
    X = rng.normal(size=(1200, 4)) + y[:, None] * np.array([1.0, -0.5, 0.3, 0.0])
    ids = rng.permutation(10**6)[:1200]
    normalizer = Normalizer.fit(X, NormalizationConfig())
    ensemble = FoldEnsemble(build_model("linear", {"method": "logistic"}, seed=1), folds=3)
    ensemble.fit(normalizer.transform(X), y, None, ids)
    columns = [f"x{i}" for i in range(X.shape[1])]
    bundle = ModelBundle(
        "linear", [FeatureConfig(name=c, branch=c) for c in columns], normalizer, ensemble,
        event_id="event", class_names=["a", "b", "c"],
    )  # fmt: skip
    result = export_onnx(bundle, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"features": X.astype(np.float32)})[0]
    Z = normalizer.transform(X)
    average = np.mean([m.predict_proba(Z) for m in ensemble.estimators_], axis=0)
    assert got.shape == (1200, 3)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, average, atol=1e-5)


@pytest.mark.slow
def test_kfold_with_categories_routes_by_category_then_by_fold(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """categories + k-fold: one fold ensemble per category; every event is scored, in the
    out-of-fold evaluation and later by the registered model, by its own category's fold
    model that did not train on it."""
    import json

    import mlflow
    import pandas as pd

    from hepclf.config import parse_pipeline
    from hepclf.ingest import ingest
    from hepclf.ingest.events.categories import CategoryModel
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import demo_pipeline_dict

    raw = demo_pipeline_dict(
        demo_dir,
        split={"method": "kfold", "folds": 3, "seed": 5},
        models={"xgb": TINY_XGB},
        categories=[
            {"name": "many", "selection": "nJet >= 4"},
            {"name": "few", "selection": "nJet < 4"},
        ],
    )
    for sample in raw["samples"]:  # positive weights, so scikit-learn's AUC can check ours
        sample.pop("weight", None)
    config = parse_pipeline(raw, base_dir=tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_pipeline(config, output=tmp_path / "out", tracking_uri=uri, register="kfc")
    entry = json.loads((tmp_path / "out" / "metrics.json").read_text())["xgb"]
    trained = result.results["xgb"]
    model = trained.classifier
    assert isinstance(model, CategoryModel)
    assert all(isinstance(m, FoldEnsemble) and m.fold_rule_ == RULE_EVENT_ID for m in model.models)
    table = ingest(config)
    oof = trained.scores["test"]
    fold = table.event_id % 3
    njet = table.X[:, table.columns.index("nJet")]
    assert np.array_equal(table.category, np.where(njet >= 4, 0, 1))
    for i, name in enumerate(("many", "few")):
        rows = np.flatnonzero(table.category == i)
        expected = roc_auc_score(table.label[rows], oof[rows], sample_weight=table.weight[rows])
        assert entry["categories"][name]["auc_test"] == pytest.approx(expected, abs=1e-9)
        for k in range(3):
            assert len(np.flatnonzero(fold[rows] == k)) > 0
    assert entry["auc_test"] == pytest.approx(
        roc_auc_score(table.label, oof, sample_weight=table.weight), abs=1e-9
    )
    assert len(entry["auc_folds"]) == 3
    for k in range(3):
        rows = fold == k
        assert entry["auc_folds"][k] == pytest.approx(
            roc_auc_score(table.label[rows], oof[rows], sample_weight=table.weight[rows]),
            abs=1e-9,
        )

    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/kfc@champion")
    frame = pd.DataFrame(table.X, columns=table.columns).assign(event=table.event_id)
    got = pyfunc.predict(frame)
    assert np.array_equal(np.asarray(got, dtype=np.float64).ravel(), oof)  # exactly
    scored = batch_scores_by_event("models:/kfc@champion", demo_dir, table, tmp_path / "scored")
    assert np.array_equal(scored, oof)  # routed by category, then by fold


# -- more than two classes ---------------------------------------------------------------------
def three_classes(
    n: int = 2400, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three Gaussian classes in 5 features, positive weights and sparse event ids."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 5)) + 0.9 * np.eye(5)[y]
    w = rng.uniform(0.5, 1.5, n)
    ids = rng.choice(10**12, size=n, replace=False)
    return X.astype(np.float32), y, w, ids


def test_multiclass_out_of_fold_auc_matches_scikit_learn() -> None:
    X, y, w, ids = three_classes(seed=12)
    ensemble = FoldEnsemble(build_model("linear", {}, seed=1), folds=4).fit(X, y, w, ids)
    scores = fold_scores(ensemble, X)
    assert scores.out_of_fold.shape == (len(X), 3)
    result = evaluate_folds(scores, y, w, classes=["a", "b", "c"], signal_classes=["b"])
    order = np.concatenate([np.flatnonzero(scores.fold == k) for k in range(4)])
    oof = np.concatenate([scores.out_of_fold[scores.fold == k] for k in range(4)])
    for i, name in enumerate("abc"):
        expected = roc_auc_score(y[order] == i, oof[:, i], sample_weight=w[order])
        assert result.report.auc_test_per_class[name] == pytest.approx(expected, abs=1e-12)
    assert result.report.auc_test == pytest.approx(
        np.mean(
            [roc_auc_score(y == i, scores.out_of_fold[:, i], sample_weight=w) for i in range(3)]
        )
    )
    for k in range(4):
        rows = scores.fold == k
        per_class = [
            roc_auc_score(y[rows] == i, scores.out_of_fold[rows, i], sample_weight=w[rows])
            for i in range(3)
        ]
        assert result.auc_folds[k] == pytest.approx(np.mean(per_class), abs=1e-12)
        # the band plot's curve is the signal node's ROC in that fold
        assert result.roc_folds[k].auc == pytest.approx(per_class[1], abs=1e-12)
    assert result.auc_folds_std == pytest.approx(np.std(result.auc_folds, ddof=1))
    summary = result.summary()
    assert len(summary["auc_folds"]) == 4 and len(summary["ks_pvalue_min_folds"]) == 4
    assert [set(row) for row in result.per_fold()] == [{"auc_fold", "ks_pvalue_min_fold"}] * 4
    # KS per node and class: the per-fold tests combined (largest D, Bonferroni p)
    folds = result.fold_reports
    ks = result.report.ks["a"]["c"]
    assert ks.statistic == max(r.ks["a"]["c"].statistic for r in folds)
    assert ks.pvalue == pytest.approx(min(1.0, 4 * min(r.ks["a"]["c"].pvalue for r in folds)))
    assert not result.report.overtrained  # a linear model has nothing to memorise


def test_multiclass_scoring_with_event_ids_reproduces_out_of_fold_exactly(tmp_path: Path) -> None:
    import pandas as pd

    from hepclf.config.features import FeatureConfig
    from hepclf.config.training import NormalizationConfig
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    X, y, w, ids = three_classes(1800, seed=13)
    normalizer = Normalizer.fit(X, NormalizationConfig())
    Z = normalizer.transform(X)
    ensemble = FoldEnsemble(build_model("xgb", TINY_XGB, seed=2), folds=3).fit(Z, y, w, ids)
    oof = fold_scores(ensemble, Z).out_of_fold
    columns = [f"x{i}" for i in range(X.shape[1])]
    bundle = ModelBundle(
        "xgb", [FeatureConfig(name=c, branch=c) for c in columns], normalizer, ensemble,
        class_names=["a", "b", "c"], event_id="event",
    )  # fmt: skip
    bundle.save(tmp_path / "bundle")
    loaded = ModelBundle.load(tmp_path / "bundle")
    assert loaded.multiclass and loaded.classes == ["a", "b", "c"] and loaded.event_id == "event"
    shuffled = np.random.default_rng(1).permutation(len(X))
    frame = pd.DataFrame(X[shuffled], columns=columns).assign(event=ids[shuffled])
    proba = loaded.probabilities(loaded.features_from_frame(frame))
    assert proba.shape == (len(X), 3)
    assert np.array_equal(proba, oof[shuffled])  # exactly: each event by its own fold model
    by_branches = loaded.probabilities(
        loaded.features_from_branches(
            {c: X[:, i] for i, c in enumerate(columns)} | {"event": ids}, len(X)
        )
    )
    assert np.array_equal(by_branches, oof)
    # without ids: the average of the fold models, still K probabilities summing to one
    average = loaded.probabilities(loaded.features_from_frame(frame.drop(columns="event")))
    expected = np.mean([m.predict_proba(Z[shuffled]) for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(average, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(average.sum(axis=1), 1.0, atol=1e-6)


def batch_scores_by_event(model: str, demo_dir: Path, table: FeatureTable, out: Path) -> np.ndarray:
    """Score the demo files with ``hepclf``'s batch scoring and return each table row's score,
    found in the friend files by event number."""
    import uproot

    from hepclf.scoring.file_job import ScoreSettings
    from hepclf.scoring.runner import score_files
    from hepclf.scoring.scorers import load_scoring_models

    models = load_scoring_models([model])
    summary = score_files(
        [str(demo_dir / "signal.root"), str(demo_dir / "background.root")],
        models,
        ScoreSettings(out_dir=out, keep_branches=("event",)),
    )
    assert [r.status for r in summary.results] == ["scored", "scored"]
    branch = models[0].branch
    scores = np.empty(len(table))
    for sample, stem in enumerate(("signal", "background")):
        with uproot.open(out / f"{stem}_scores.root") as f:
            scored = f["Events"].arrays([branch, "event"], library="np")
        rows = np.flatnonzero(table.sample == sample)
        by_event = dict(zip(scored["event"].tolist(), scored[branch].tolist(), strict=True))
        scores[rows] = [by_event[e] for e in table.event_id[rows].tolist()]
    return scores
