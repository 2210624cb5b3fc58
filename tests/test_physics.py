"""The physics result (pyhf): Z0 and the CLs limit checked against formulas and pyhf's CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyhf
import pytest
import uproot

if TYPE_CHECKING:
    from hepclf.physics import PhysicsResult
    from hepclf.workflows.result import RecomputedResult

from hepclf.config import PipelineConfig
from hepclf.config.result import ResultConfig
from hepclf.physics import (
    EvaluatedEvents,
    build_templates,
    evaluated_fractions,
    expected_yields,
    physics_result,
)
from hepclf.physics.binning import choose_bins
from hepclf.physics.io import write_result
from hepclf.runtime.errors import ConfigError, InputDataError

PYHF = Path(sys.executable).with_name("pyhf")
NAMES = ["ttH", "ttbb", "ttlf"]


def toy_events(
    n: int = 60_000, seed: int = 0, weights: tuple[float, float, float] = (0.01, 0.2, 0.1)
) -> EvaluatedEvents:
    """Signal peaking at high score, two backgrounds at low score, ~±5 % event weights."""
    rng = np.random.default_rng(seed)
    sample = rng.integers(0, 3, n)
    score = np.where(sample == 0, rng.beta(5, 2, n), rng.beta(2, 4 + sample, n))
    per_sample = np.array(weights)
    weight = per_sample[sample] * rng.normal(1.0, 0.05, n)
    return EvaluatedEvents(score, weight, sample, NAMES, ["ttH"])


def binned(events: EvaluatedEvents, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal and background yields per bin, with numpy's histogram (independent of hepclf)."""
    signal = events.sample == 0
    s, _ = np.histogram(events.score[signal], edges, weights=events.expected[signal])
    b, _ = np.histogram(events.score[~signal], edges, weights=events.expected[~signal])
    return s, b


EDGES = [0.0, 0.4, 0.6, 0.75, 0.85, 1.0]


def test_z0_equals_binned_asimov_formula_without_systematics() -> None:
    # 600k MC events with weights << 1: MC statistical nuisances (always on) are negligible
    events = toy_events(n=600_000, weights=(0.0002, 0.004, 0.002))
    result = physics_result(events, ResultConfig(binning={"edges": EDGES}))
    s, b = binned(events, np.array(EDGES))
    formula = np.sqrt(2.0 * np.sum((s + b) * np.log1p(s / b) - s))
    assert 2.0 < formula < 20.0
    assert result.z0_expected == pytest.approx(formula, rel=0.01)
    limit = result.mu_up_expected.to_dict()
    assert limit["-2"] < limit["-1"] < limit["median"] < limit["+1"] < limit["+2"]


def test_background_normalisation_lowers_z0_and_raises_limit() -> None:
    # Two signal-rich bins: no background-only bin constrains the normalisation
    events = toy_events(n=20_000, weights=(0.002, 0.2, 0.1))
    binning = {"edges": [0.5, 0.75, 1.0]}
    plain = physics_result(events, ResultConfig(binning=binning))
    for systematics in ({"background": 0.1}, {"normsys": {"ttbb": 0.2}}):
        with_syst = physics_result(events, ResultConfig(binning=binning, systematics=systematics))
        assert with_syst.z0_expected < 0.97 * plain.z0_expected
        assert with_syst.mu_up_expected.median > 1.03 * plain.mu_up_expected.median


def test_workspace_validates_and_pyhf_cls_reproduces_the_limit(tmp_path: Path) -> None:
    events = toy_events()
    config = ResultConfig(binning={"bins": 6}, systematics={"background": 0.05})
    result = physics_result(events, config)
    files = write_result(result, tmp_path / "results" / "bdt", "bdt")
    spec = json.loads(files["workspace"].read_text())
    pyhf.schema.validate(spec, "workspace.json")
    workspace = pyhf.Workspace(spec)
    assert workspace.get_measurement()["config"]["poi"] == "mu"
    assert [s["name"] for s in spec["channels"][0]["samples"]] == NAMES
    limit = result.mu_up_expected
    for key, index in (("median", 2), ("+2", 4)):
        value = limit.median if key == "median" else limit.band[key]
        out = subprocess.run(
            [str(PYHF), "cls", "--test-poi", repr(value), str(files["workspace"])],
            capture_output=True,
            text=True,
            check=True,
        )
        cls = json.loads(out.stdout)
        # CLs at the reported limit is 5 %: the observed (Asimov) and the expected band entry
        assert cls["CLs_exp"][index] == pytest.approx(0.05, abs=5e-4)
        if key == "median":
            assert cls["CLs_obs"] == pytest.approx(0.05, abs=5e-4)


def test_limit_band_equals_pyhf_upper_limit() -> None:
    events = toy_events(n=20_000)
    result = physics_result(events, ResultConfig(binning={"edges": [0.0, 0.5, 0.7, 1.0]}))
    model = pyhf.Workspace(result.workspace).model()
    data = pyhf.Workspace(result.workspace).data(model)
    _, expected = pyhf.infer.intervals.upper_limits.upper_limit(data, model, level=0.05)
    mine = result.mu_up_expected.to_dict()
    for key, theirs in zip(("-2", "-1", "median", "+1", "+2"), expected, strict=True):
        assert mine[key] == pytest.approx(float(theirs), rel=2e-3)


def test_limit_when_mc_statistics_dominate() -> None:
    # 3000 MC events standing for ~10^6 background events: staterror drives the limit far
    # above the data-statistics estimate 2/sqrt(Σ s²/b), and the POI range must still hold it
    events = toy_events(n=3000, weights=(0.3, 600.0, 600.0))
    result = physics_result(events, ResultConfig())
    s, b = result.templates.signal_yield, result.templates.background_yield
    assert result.mu_up_expected.median > 50.0 / np.sqrt(np.sum(s * s / b))
    model = pyhf.Workspace(result.workspace).model()
    data = pyhf.Workspace(result.workspace).data(model)
    cls = pyhf.infer.hypotest(result.mu_up_expected.median, data, model)
    assert float(cls) == pytest.approx(0.05, abs=5e-4)


def test_templates_read_back_equal_binned_weights(tmp_path: Path) -> None:
    events = toy_events(n=20_000)
    result = physics_result(events, ResultConfig(binning={"bins": 5}))
    files = write_result(result, tmp_path, "xgb")
    edges = result.templates.edges
    with uproot.open(files["templates"]) as file:
        for code, name in enumerate(NAMES):
            hist = file[name]
            mine = events.sample == code
            w = events.expected[mine]
            sumw, _ = np.histogram(events.score[mine], edges, weights=w)
            sumw2, _ = np.histogram(events.score[mine], edges, weights=w * w)
            np.testing.assert_allclose(hist.axis().edges(), edges)
            np.testing.assert_allclose(hist.values(), sumw, rtol=1e-12)
            np.testing.assert_allclose(hist.variances(), sumw2, rtol=1e-12)
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(files["summary"].read_text())
    assert summary["z0_expected"] == result.z0_expected
    assert set(summary["mu_up_expected"]) == {"median", "-2", "-1", "+1", "+2"}


def test_automatic_bins_keep_background_statistics() -> None:
    events = toy_events(n=30_000)
    rules = ResultConfig(binning={"bins": 20, "min_background_events": 50}).binning
    templates = choose_bins(events, rules)
    background = templates.background_yield
    assert 1 < templates.n_bins <= 20
    assert (templates.background_entries >= 50).all()
    assert (np.sqrt(templates.background_sumw2) / background <= rules.max_background_stat).all()
    s, _ = binned(events, templates.edges)
    np.testing.assert_allclose(templates.signal_yield, s)


def test_yield_rule_scales_the_evaluated_part_to_the_full_sample() -> None:
    sample_all = np.array([0, 0, 0, 0, 1, 1])
    fractions = evaluated_fractions(sample_all, np.array([0, 4, 5]), 2)
    np.testing.assert_allclose(fractions, [0.25, 1.0])
    np.testing.assert_allclose(evaluated_fractions(sample_all, None, 2), [1.0, 1.0])
    yields = expected_yields(np.array([2.0, 1.0, 1.0]), np.array([0, 1, 1]), fractions, 10.0)
    np.testing.assert_allclose(yields, [80.0, 10.0, 10.0])


def test_signal_absent_is_an_error_naming_the_samples() -> None:
    events = toy_events(n=2000)
    keep = events.sample != 0
    with pytest.raises(InputDataError, match=r"no evaluated event belongs to the signal .*ttH"):
        EvaluatedEvents(
            events.score[keep], events.expected[keep], events.sample[keep], NAMES, ["ttH"]
        )
    with pytest.raises(ConfigError, match=r"'tth'.*not among the samples"):
        EvaluatedEvents(events.score, events.expected, events.sample, NAMES, ["tth"])


def test_bin_without_background_is_an_error_naming_the_bin() -> None:
    events = toy_events(n=5000)
    top = float(events.score[events.sample != 0].max())
    config = ResultConfig(binning={"edges": [0.0, 0.5, top + 1e-6, 1.0]})
    with pytest.raises(InputDataError, match=r"bin 2 \[.*, 1\]: the expected background is 0"):
        physics_result(events, config)


def test_negative_yield_is_an_error_naming_sample_and_bin() -> None:
    events = toy_events(n=5000)
    weight = events.expected.copy()
    weight[(events.sample == 2) & (events.score < 0.5)] *= -1.0
    negative = EvaluatedEvents(events.score, weight, events.sample, NAMES, ["ttH"])
    with pytest.raises(InputDataError, match=r"bin 0 \[0, 0.5\): negative .* 'ttlf'"):
        physics_result(negative, ResultConfig(binning={"edges": [0.0, 0.5, 1.0]}))
    # the whole 'ttlf' sample is negative: merging cannot help, and the error says why
    with pytest.raises(InputDataError, match=r"automatic binning.*negative .* 'ttlf'"):
        physics_result(negative, ResultConfig())
    # a few negative weights: automatic binning merges bins until no yield is negative
    rng = np.random.default_rng(1)
    weight = np.where((events.sample == 2) & (rng.random(weight.size) < 0.2), -1.0, 1.0)
    some = EvaluatedEvents(events.score, weight * events.expected, events.sample, NAMES, ["ttH"])
    rules = ResultConfig(binning={"bins": 20, "min_background_events": 1, "max_background_stat": 1})
    templates = choose_bins(some, rules.binning)
    assert templates.n_bins > 2
    assert (templates.sumw >= 0).all()


def test_result_config_names_unknown_samples(demo_dir: Path) -> None:
    from hepclf.config import parse_pipeline
    from tests.conftest import demo_pipeline_dict

    config = demo_pipeline_dict(demo_dir, result={"systematics": {"normsys": {"ttbarr": 0.1}}})
    with pytest.raises(ConfigError, match=r"normsys names \['ttbarr'\]"):
        parse_pipeline(config)
    config = demo_pipeline_dict(demo_dir, result={"signal": "Higgs"})
    with pytest.raises(ConfigError, match=r"result.signal names 'Higgs', which is neither"):
        parse_pipeline(config)
    config = demo_pipeline_dict(demo_dir, result={"signal": "tth"})
    with pytest.raises(ConfigError, match=r"result.signal names 'tth' \(did you mean 'ttH'\?\)"):
        parse_pipeline(config)


@pytest.mark.parametrize("signal", ["ttbar", "background", ["ttH", "ttbar"]])
def test_result_signal_must_be_of_the_signal_class(demo_dir: Path, signal: object) -> None:
    """mu scales what the models were trained to find: a background sample is refused."""
    from hepclf.config import parse_pipeline
    from tests.conftest import demo_pipeline_dict

    config = demo_pipeline_dict(demo_dir, result={"signal": signal})
    with pytest.raises(
        ConfigError,
        match=r"result.signal scales 'ttbar' \(class 'background'\) by mu.*signal class\(es\) "
        r"\['signal'\]; name samples of those classes \['ttH'\]",
    ):
        parse_pipeline(config)
    for fine in (["ttH"], ["signal"], ["ttH", "signal"]):
        config = demo_pipeline_dict(demo_dir, result={"signal": fine})
        assert parse_pipeline(config).result.signal_names == fine


def test_binning_templates_match_numpy_histogram() -> None:
    events = toy_events(n=3000)
    edges = np.array([0.0, 0.3, 0.7, 1.0])
    templates = build_templates(events, edges)
    s, b = binned(events, edges)
    np.testing.assert_allclose(templates.signal_yield, s)
    np.testing.assert_allclose(templates.background_yield, b)


@pytest.mark.slow
def test_pipeline_and_result_command_end_to_end(demo_dir: Path, tmp_path: Path) -> None:
    """Train with the demo's result block, then recompute with `hepclf result` (no training)."""
    import mlflow

    from hepclf.config import parse_pipeline
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import demo_pipeline_dict, tracking_uri, write_pipeline

    config = demo_pipeline_dict(
        demo_dir,
        models={"linear": {}, "bdt": {"n_trees": 40}},
        evaluation={"select_metric": "mu_up_expected"},
    )
    assert config["result"]["luminosity"] > 0  # the demo pipeline has its result block on
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking_uri(store):
        run = run_pipeline(parse_pipeline(config), output=tmp_path / "out", tracking_uri=store)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    limits = {}
    for name in ("linear", "bdt"):
        entry = metrics[name]
        assert entry["z0_expected"] > 0
        assert set(entry["mu_up_expected"]) == {"median", "-2", "-1", "+1", "+2"}
        limits[name] = entry["mu_up_expected"]["median"]
        folder = tmp_path / "out" / "results" / name
        pyhf.schema.validate(json.loads((folder / "workspace.json").read_text()), "workspace.json")
        assert (folder / "templates.root").is_file() and (folder / "templates.png").is_file()
        logged = mlflow.MlflowClient(store).get_run(run.results[name].run_id)
        assert logged.data.metrics["z0_expected"] == pytest.approx(entry["z0_expected"])
    fine = [n for n in limits if not metrics[n]["overtrained"]] or list(limits)
    assert run.best == min(fine, key=limits.get)  # lower expected limit is better
    assert "Z0 exp" in (tmp_path / "out" / "summary.md").read_text()

    # Same pipeline, no training: the logged models reproduce the numbers
    pipeline = write_pipeline(tmp_path / "p.yaml", config)
    command = ["result", run.run_id, "--config", str(pipeline), "--output", str(tmp_path / "again")]
    done = subprocess.run(
        [sys.executable, "-m", "hepclf", *command, "--tracking-uri", store],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("linear", "bdt"):
        again = json.loads((tmp_path / "again" / "results" / name / "result.json").read_text())
        assert again["z0_expected"] == pytest.approx(metrics[name]["z0_expected"], rel=1e-6)
    client = mlflow.MlflowClient(store)
    (result_run,) = client.search_runs(
        [client.get_run(run.run_id).info.experiment_id], "tags.`hepclf.kind` = 'result'"
    )
    assert result_run.data.tags["hepclf.source_run"] == run.run_id
    assert "linear.mu_up_expected" in result_run.data.metrics


def test_multiclass_discriminant_is_the_summed_signal_probability() -> None:
    """Multi-class: one channel on P(signal classes); per-sample templates of all processes."""
    import yaml

    from hepclf.config import parse_pipeline
    from hepclf.ingest import FeatureTable
    from hepclf.physics.step import discriminant, model_physics
    from tests.conftest import REPO

    config = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    config["result"] = {"luminosity": 10.0, "binning": {"bins": 4}}
    config = parse_pipeline(config)
    rng = np.random.default_rng(5)
    n = 8000
    sample = rng.integers(0, 4, n)  # samples in config order: ttH, ttbb, ttcc, ttlf
    proba = rng.dirichlet(np.ones(4), n)
    proba[sample == 0, 0] += 1.0  # signal events lean to the ttH node
    proba /= proba.sum(axis=1, keepdims=True)
    table = FeatureTable(
        X=np.zeros((n, 1), np.float32),
        columns=["x"],
        label=sample,  # class order equals sample order here
        weight=np.full(n, 0.5),
        sample=sample,
        sample_names=["ttH", "ttbb", "ttcc", "ttlf"],
        event_id=np.arange(n),
    )
    np.testing.assert_allclose(
        discriminant(proba, config.class_names, config.signal_classes),
        proba[:, config.class_names.index("ttH")],
    )
    rows = np.arange(0, n, 2)  # half the events evaluated: yields count twice
    result = model_physics(config, table, rows, proba[rows])
    assert result.templates.names == ["ttH", "ttbb", "ttcc", "ttlf"]
    assert result.templates.signal == ["ttH"]
    # luminosity x weight ÷ evaluated fraction of each sample: the full samples' yields
    expected = [10.0 * 0.5 * np.count_nonzero(sample == k) for k in range(4)]
    np.testing.assert_allclose(result.templates.sumw.sum(axis=1), expected, rtol=1e-9)
    assert result.z0_expected > 0


@pytest.mark.slow
def test_kfold_result_uses_every_event_unscaled(demo_dir: Path, tmp_path: Path) -> None:
    """Out-of-fold scores cover every event: yields are the full samples', and `hepclf result`
    (fold model by event id) reproduces the training run's numbers."""
    from hepclf.config import parse_pipeline
    from hepclf.ingest import ingest
    from tests.conftest import demo_pipeline_dict

    config = parse_pipeline(
        demo_pipeline_dict(
            demo_dir, models={"linear": {}}, split={"method": "kfold", "folds": 3, "seed": 4}
        )
    )
    physics, again = train_then_recompute(config, tmp_path)
    table = ingest(config)
    luminosity = config.result.luminosity
    for k, name in enumerate(table.sample_names):
        full = luminosity * table.weight[table.sample == k].sum()
        row = physics.templates.names.index(name)
        assert physics.templates.sumw[row].sum() == pytest.approx(full, rel=1e-9)
    assert again.results["linear"].z0_expected == pytest.approx(physics.z0_expected, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("split", [{"method": "random"}, {"method": "kfold", "folds": 3}])
def test_result_of_category_models_reproduces_training(
    split: dict, demo_dir: Path, tmp_path: Path
) -> None:
    """`hepclf result` on per-category models whose routing branch (nJet) is no feature:
    the table's categories route the events, as in training."""
    from hepclf.config import parse_pipeline
    from tests.conftest import demo_pipeline_dict

    raw = demo_pipeline_dict(demo_dir, models={"linear": {}}, split=split)
    raw["features"] = [f for f in raw["features"] if f != "nJet"]
    raw["categories"] = [
        {"name": "many_jets", "selection": "nJet >= 4"},
        {"name": "few_jets", "selection": "nJet < 4"},
    ]
    config = parse_pipeline(raw)
    physics, again = train_then_recompute(config, tmp_path)
    rerun = again.results["linear"]
    assert rerun.z0_expected == pytest.approx(physics.z0_expected, rel=1e-6)
    np.testing.assert_allclose(rerun.templates.sumw, physics.templates.sumw, rtol=1e-9)


def train_then_recompute(
    config: PipelineConfig, tmp_path: Path
) -> tuple[PhysicsResult, RecomputedResult]:
    """Train the pipeline's linear model into a fresh store, then run `hepclf result` on that
    run; returns the training run's physics result and the recomputed results."""
    from hepclf.workflows.result import recompute_results
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import tracking_uri

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking_uri(store):
        run = run_pipeline(config, output=tmp_path / "out", tracking_uri=store)
        again = recompute_results(run.run_id, config, tmp_path / "again", log=False)
    physics = run.results["linear"].physics
    assert physics is not None
    return physics, again


def test_result_leaves_the_users_pyhf_backend_alone() -> None:
    """hepclf fits with 64-bit NumPy, then gives a notebook its own backend back, also after
    an error inside the fits."""
    from hepclf.physics.inference import numpy_backend

    events = toy_events(n=20_000)
    config = ResultConfig(binning={"edges": [0.0, 0.5, 0.7, 1.0]})
    before = pyhf.get_backend()
    reference = physics_result(events, config)
    try:
        pyhf.set_backend("numpy", precision="32b")
        user = pyhf.get_backend()
        result = physics_result(events, config)
        assert (pyhf.tensorlib.name, pyhf.tensorlib.precision) == ("numpy", "32b")
        assert pyhf.get_backend()[0] is user[0] and pyhf.get_backend()[1] is user[1]
        with pytest.raises(InputDataError, match="inside"), numpy_backend():
            assert pyhf.tensorlib.precision == "64b"
            raise InputDataError("inside the fits")
        assert pyhf.tensorlib.precision == "32b"
    finally:
        pyhf.set_backend(*before)
    # the user's 32-bit setting did not reach hepclf's fits: same numbers as in 64 bits
    assert result.z0_expected == reference.z0_expected
    assert result.mu_up_expected.to_dict() == reference.mu_up_expected.to_dict()
