"""The tracked pipeline end to end against a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepclf.config import parse_pipeline
from hepclf.evaluation import evaluate_classifier
from hepclf.ingest import ingest
from hepclf.runtime.errors import ConfigError
from hepclf.training.report import select_champion
from hepclf.training.results import ModelResult
from hepclf.training.split import split_table
from tests.conftest import REPO, WIDEST_METRICS, demo_pipeline_dict, write_pipeline

FAST_MODELS = {"linear": {}, "bdt": {"n_trees": 40}}


@pytest.fixture(scope="module")
def trained(demo_dir: Path, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `hepclf train` run (a real process) with registration, shared by the tests below."""
    work = tmp_path_factory.mktemp("train")
    config = demo_pipeline_dict(demo_dir, models=FAST_MODELS, experiment="pipeline-test")
    for sample in config["samples"]:  # positive weights: scikit-learn's AUC refuses negative ones
        sample["weight"] = "abs(genWeight)"
    pipeline = write_pipeline(work / "p.yaml", config)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepclf",
            "train",
            str(pipeline),
            "--output",
            str(work / "out"),
            "--tracking-uri",
            mlflow_server,
            "--register",
            "test-clf",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=600,
        env={**os.environ, "HEPCLF_CACHE_DIR": str(work / "cache"), "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "work": work,
        "out": work / "out",
        "config": config,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "metrics": json.loads((work / "out" / "metrics.json").read_text()),
    }


def test_outputs_and_comparison_table(trained: dict) -> None:
    metrics, out = trained["metrics"], trained["out"]
    assert set(metrics) == {"mlflow_run_id", "wall_seconds", "champion", *FAST_MODELS}
    champion = metrics["champion"]
    assert champion["metric"] == "auc_test" and champion["skip_flagged"] is True
    assert champion["value"] == metrics[champion["model"]]["auc_test"]
    assert champion["flagged"] == [n for n in FAST_MODELS if metrics[n]["overtrained"]]
    timed = sum(metrics[n]["train_seconds"] + metrics[n]["predict_seconds"] for n in FAST_MODELS)
    assert 0 < timed < metrics["wall_seconds"]
    for name in FAST_MODELS:
        m = metrics[name]
        for key in (
            "auc_test",
            "auc_train",
            "accuracy_test",
            "ks_pvalue_signal",
            "ks_pvalue_background",
            "overtrained",
            "train_seconds",
            "predict_seconds",
            "model_uri",
        ):
            assert key in m, key
        assert set(m["eff_s_at_eff_b"]) == {"0.01", "0.1", "0.3"}
        assert set(m["eff_s_at_eff_b"]["0.1"]) == {"test", "train"}
        assert 0.6 < m["auc_test"] < 0.99
    for plot in (
        "roc.png",
        "bdt_overtraining.png",
        "linear_overtraining.png",
        "correlation_signal.png",
        "features.png",
        "bdt_learning_curve.png",
    ):
        assert (out / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert "Model comparison" in trained["stdout"] and "over-" in trained["stdout"]
    lines = trained["stdout"].splitlines()
    table = lines[next(i for i, line in enumerate(lines) if "Model comparison" in line) :]
    table = table[: next(i for i, line in enumerate(table) if line.startswith("MLflow run"))]
    assert max(len(line) for line in table) <= 80  # COLUMNS=80, also when piped
    assert "…" not in trained["stdout"]
    rows = [line for line in table if line.split()[:1] in (["linear"], ["bdt"])]
    assert len(rows) == 2
    for row in rows:  # the champion, the full test AUC and the overtraining flag
        name = row.split()[0]
        assert (" * " in row) == (name == champion["model"])
        assert f"{metrics[name]['auc_test']:.4f}" in row
        assert row.split()[-2] == ("YES" if trained["metrics"][name]["overtrained"] else "no")
    assert "Successfully registered" not in trained["stderr"]  # MLflow's own lines stay quiet
    assert "Created version" not in trained["stderr"]
    assert (
        "| bdt" in (out / "summary.md").read_text() or "**bdt**" in (out / "summary.md").read_text()
    )


def test_auc_matches_sklearn_on_the_same_split(trained: dict, mlflow_server: str) -> None:
    """Recompute the test AUC independently: pyfunc scores on the test split vs scikit-learn."""
    config = parse_pipeline(trained["config"])
    table = ingest(config, use_cache=False)
    test = table.subset(split_table(table, config.split).test)
    mlflow.set_tracking_uri(mlflow_server)
    for name in FAST_MODELS:
        model = mlflow.pyfunc.load_model(trained["metrics"][name]["model_uri"])
        scores = np.asarray(model.predict(test.features_frame()))
        expected = roc_auc_score(test.label, scores, sample_weight=test.weight)
        assert trained["metrics"][name]["auc_test"] == pytest.approx(expected, abs=1e-9)


def test_runs_read_back_from_the_server(trained: dict, mlflow_server: str) -> None:
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    parent = client.get_run(trained["metrics"]["mlflow_run_id"])
    columns = parse_pipeline(trained["config"]).feature_columns
    assert parent.data.tags["hepclf.kind"] == "pipeline"
    assert parent.data.tags["version.mlflow"] == mlflow.__version__
    assert parent.data.params["split.test_fraction"] == "0.5"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the commit of the code that ran is logged
        assert parent.data.tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert parent.inputs.dataset_inputs, "the input dataset is logged"
    dataset = parent.inputs.dataset_inputs[0].dataset
    assert json.loads(dataset.profile)["num_rows"] == parent.data.metrics["events_total"]
    schema = [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]]
    assert schema == [*columns, "label", "weight", "sample", "event_id"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "pipeline.yaml",
        "data_summary.json",
        "metrics.json",
        "summary.md",
        "plots",
    } <= artifacts
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.tags["hepclf.model"] for c in children} == set(FAST_MODELS)
    for child in children:
        name = child.data.tags["hepclf.model"]
        assert child.data.metrics["auc_test"] == pytest.approx(trained["metrics"][name]["auc_test"])
        assert "eff_s_at_eff_b_0.01_train" in child.data.metrics
        assert child.data.tags["hepclf.device"].startswith("CPU")
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert f"plots/{name}_overtraining.png" in plots
        mlflow.set_tracking_uri(mlflow_server)
        info = mlflow.models.get_model_info(trained["metrics"][name]["model_uri"])
        assert info.name == name  # logged models are named after their type
        assert [c.name for c in info.signature.inputs] == list(columns)
        example = mlflow.models.Model.load(info.model_uri).load_input_example(
            mlflow.artifacts.download_artifacts(info.model_uri)
        )
        assert list(example.columns) == list(columns) and len(example) == 5
    bdt = next(c for c in children if c.data.tags["hepclf.model"] == "bdt")
    assert bdt.data.params["n_trees"] == "40"
    per_tree = client.get_metric_history(bdt.info.run_id, "curve_tree_error")
    assert len(per_tree) == 40  # one point per boosted tree, before validation pruning
    assert [m.step for m in per_tree] == list(range(40))


def test_champion_alias_points_at_best_model(trained: dict, mlflow_server: str) -> None:
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    version = client.get_model_version_by_alias("test-clf", "champion")
    metrics = trained["metrics"]
    fine = [n for n in FAST_MODELS if not metrics[n]["overtrained"]] or list(FAST_MODELS)
    best = max(fine, key=lambda n: metrics[n]["auc_test"])  # over-trained models passed over
    assert version.run_id == metrics[best]["run_id"]
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model("models:/test-clf@champion")
    frame = ingest(parse_pipeline(trained["config"])).features_frame()
    reference = mlflow.pyfunc.load_model(metrics[best]["model_uri"]).predict(frame.head(200))
    np.testing.assert_allclose(model.predict(frame.head(200)), reference)


def test_compare_lists_models_of_recent_runs(trained: dict, mlflow_server: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepclf",
            "compare",
            "--experiment",
            "pipeline-test",
            "--tracking-uri",
            mlflow_server,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert trained["metrics"]["mlflow_run_id"][:8] in done.stdout
    assert "linear" in done.stdout and "bdt" in done.stdout


def test_unknown_model_and_parameter_are_named(demo_dir: Path, tmp_path: Path) -> None:
    """Bad model parameters are refused when the YAML is loaded: before ingest, no store."""
    bad = write_pipeline(
        tmp_path / "bad.yaml", demo_pipeline_dict(demo_dir, models={"bdt": {"n_treez": 3}})
    )
    good = write_pipeline(
        tmp_path / "good.yaml", demo_pipeline_dict(demo_dir, models={"linear": {}})
    )
    for pipeline, args, message in (
        (bad, [], "models: Model 'bdt': unknown parameter 'n_treez'"),
        (good, ["--models", "cnn"], "unknown model(s) ['cnn']"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hepclf",
                "train",
                str(pipeline),
                "--tracking-uri",
                f"sqlite:///{tmp_path / 'm.db'}",
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "m.db").exists()  # refused before any store was created


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c.update(evaluaton={}),
            "evaluaton: Extra inputs are not permitted; did you mean 'evaluation'?",
        ),
        (
            lambda c: c["samples"][0].update(weigth="w"),
            "samples[0].weigth: Extra inputs are not permitted (got 'w'); did you mean 'weight'?",
        ),
        (lambda c: c.update(split={"tst_fraction": 0.3}), "did you mean 'test_fraction'?"),
        (
            lambda c: c.update(models={"xgb": {"max_depht": 3}}),
            "unknown parameter 'max_depht' (did you mean 'max_depth'?)",
        ),
        (lambda c: c.update(models={"cnn": {}}), "Unknown model type 'cnn'"),
    ],
)
def test_yaml_errors_say_what_was_meant(demo_dir: Path, mutate, message: str) -> None:
    config = demo_pipeline_dict(demo_dir)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        parse_pipeline(config, source="p.yaml")
    assert message in str(err.value) and str(err.value).startswith("p.yaml: ")


def _result(name: str, overtrained: bool, auc_shift: float) -> ModelResult:
    """A model result evaluated for real on drawn scores: test scores separate with
    ``auc_shift``; an over-trained model's training scores separate far better."""
    rng = np.random.default_rng(len(name))
    y = rng.integers(0, 2, 4000)
    test = rng.normal(auc_shift * y, 1.0)
    train = rng.normal((4.0 if overtrained else auc_shift) * y, 1.0)
    report = evaluate_classifier(y, test, None, y, train, None)
    assert report.overtrained == overtrained
    return ModelResult(name, None, report, 0.1, {"train": train, "test": test})


def test_champion_passes_over_overtrained_models() -> None:
    results = {r.name: r for r in (_result("xgb", True, 1.5), _result("bdt", False, 1.0))}
    assert results["xgb"].report.auc_test > results["bdt"].report.auc_test
    selection = select_champion(results, "auc_test")
    assert selection.best == "bdt" and selection.passed_over == ["xgb"]
    assert "xgb" in selection.note and "over-trained" in selection.note
    assert not selection.warning


def test_champion_when_every_model_is_overtrained_warns_why() -> None:
    results = {r.name: r for r in (_result("xgb", True, 1.5), _result("rf", True, 1.0))}
    selection = select_champion(results, "auc_test")
    assert selection.best == "xgb"
    assert "every model is flagged over-trained" in selection.warning
    assert "KS p-value" in selection.warning


def test_comparison_table_fits_100_columns_with_every_column() -> None:
    """Worst case: physics columns, tiny KS p-values, long trainings; nothing cut."""
    from rich.console import Console

    from hepclf.cli.render import comparison_table
    from hepclf.training.report import comparison

    names = ["linear", "bdt", "xgb", "dnn", "rf", "svm"]
    table = comparison(
        {n: WIDEST_METRICS for n in names}, "linear", "Model comparison (best: linear)"
    )
    console = Console(width=100, record=True)
    console.print(comparison_table(table))
    text = console.export_text()
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 100
    row = next(line for line in text.splitlines() if line.split()[:1] == ["linear"]).split()
    assert row == [
        "linear", "*", "0.7752", "0.7904", "0.129/0.181", "0.449/0.485",
        "3e-15", "0.0036", "2.35", "0.123", "YES", "1234.4",
    ]  # fmt: skip
