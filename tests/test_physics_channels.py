"""Channels per node and category, shape systematics, data and toys (issue 20), checked
against workspaces built here with pyhf from NumPy histograms of the same events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf
import pytest
import yaml
from scipy.stats import norm

from hepclf.config import parse_pipeline
from hepclf.config.result import ResultConfig
from hepclf.ingest import FeatureTable
from hepclf.physics import EvaluatedEvents, physics_result
from hepclf.physics.channels import Routing
from hepclf.physics.step import model_physics
from hepclf.physics.yields import VariedEvents
from tests.conftest import REPO

CLASSES = ["ttH", "ttbb", "ttcc", "ttlf"]
EDGES = [0.0, 0.4, 0.5, 1.0]


def multiclass_events(n: int = 12_000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Samples (= classes, in order) and Dirichlet probabilities leaning to the true node."""
    rng = np.random.default_rng(seed)
    sample = rng.integers(0, 4, n)
    proba = rng.dirichlet(np.ones(4), n)
    proba[np.arange(n), sample] += 0.4
    return sample, proba / proba.sum(axis=1, keepdims=True)


def weights(sample: np.ndarray) -> np.ndarray:
    """A small signal (ttH) on large backgrounds."""
    return np.where(sample == 0, 0.01, 0.5)


def table_of(sample: np.ndarray, category: np.ndarray | None = None) -> FeatureTable:
    return FeatureTable(
        X=np.zeros((sample.size, 1), np.float32),
        columns=["x"],
        label=sample,
        weight=weights(sample),
        sample=sample,
        sample_names=CLASSES,
        event_id=np.arange(sample.size),
        category=category,
    )


def pipeline(result: dict[str, Any], categories: bool = False) -> Any:
    raw = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    raw["samples"] = [s for s in raw["samples"] if s["label"] != "data"]
    raw["result"] = result
    if categories:
        raw["categories"] = [
            {"name": "low", "selection": "nJet < 6"},
            {"name": "high", "selection": "nJet >= 6"},
        ]
    return parse_pipeline(raw)


def independent_spec(channels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """A workspace written here: per channel, numpy histograms per sample (mu on ttH, one
    staterror per channel), Asimov background-only observation."""
    specs, observations = [], []
    for name, (score, weight, sample) in channels.items():
        samples, background = [], np.zeros(len(EDGES) - 1)
        for k, process in enumerate(CLASSES):
            mine = sample == k
            sumw, _ = np.histogram(score[mine], EDGES, weights=weight[mine])
            sumw2, _ = np.histogram(score[mine], EDGES, weights=weight[mine] ** 2)
            modifiers = [
                {"name": f"stat_{name}", "type": "staterror", "data": list(np.sqrt(sumw2))}
            ]
            if k == 0:
                modifiers.append({"name": "mu", "type": "normfactor", "data": None})
            else:
                background += sumw
            samples.append({"name": process, "data": list(sumw), "modifiers": modifiers})
        specs.append({"name": name, "samples": samples})
        observations.append({"name": name, "data": list(background)})
    return {
        "channels": specs,
        "observations": observations,
        "measurements": [
            {
                "name": "m",
                "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[0, 1e3]]}]},
            }
        ],
        "version": "1.0.0",
    }


def check_against_pyhf(spec: dict, z0: float, limit: float) -> None:
    """Z0 from pyhf's q0 hypotest and CLs = 5 % at our limit, on the independent spec."""
    model = pyhf.Workspace(spec).model()
    pars = np.asarray(model.config.suggested_init(), float)
    pars[model.config.poi_index] = 1.0
    asimov = model.expected_data(pars)
    p0 = pyhf.infer.hypotest(0.0, asimov, model, test_stat="q0")
    assert z0 == pytest.approx(norm.isf(float(p0)), rel=1e-3)
    pars[model.config.poi_index] = 0.0
    cls = pyhf.infer.hypotest(limit, model.expected_data(pars), model)
    assert float(cls) == pytest.approx(0.05, abs=1e-3)


@pytest.fixture(scope="module")
def node_result() -> tuple[Any, dict]:
    """Per-node result of half the generated events, and the spec written here for them."""
    config = pipeline({"luminosity": 10.0, "channels": "nodes", "binning": {"edges": EDGES}})
    sample, proba = multiclass_events()
    rows = np.arange(0, sample.size, 2)  # half evaluated: yields count twice
    result = model_physics(config, table_of(sample), rows, proba[rows])
    node = np.argmax(proba[rows], axis=1)
    fraction = np.bincount(sample[rows]) / np.bincount(sample)  # evaluated part per sample
    weight = weights(sample[rows]) * 10.0 / fraction[sample[rows]]
    channels = {
        f"node_{c}": (proba[rows][node == k, k], weight[node == k], sample[rows][node == k])
        for k, c in enumerate(CLASSES)
    }
    return result, independent_spec(channels)


def alone(spec: dict, name: str) -> dict:
    """The channel ``name`` of ``spec`` as a workspace of its own."""
    return {
        **spec,
        "channels": [c for c in spec["channels"] if c["name"] == name],
        "observations": [o for o in spec["observations"] if o["name"] == name],
    }


def pyhf_z0(spec: dict) -> float:
    """Z0 from pyhf's q0 hypotest on the Asimov data for mu = 1."""
    model = pyhf.Workspace(spec).model()
    pars = np.asarray(model.config.suggested_init(), float)
    pars[model.config.poi_index] = 1.0
    p0 = pyhf.infer.hypotest(0.0, model.expected_data(pars), model, test_stat="q0")
    return float(norm.isf(float(p0)))


def test_node_channels_equal_an_independent_pyhf_workspace(node_result: tuple) -> None:
    result, spec = node_result
    assert list(result.channels) == [f"node_{c}" for c in CLASSES]
    for name, channel in result.channels.items():
        check_against_pyhf(alone(spec, name), channel.z0_expected, channel.mu_up_expected.median)
        assert result.mu_up_expected.median <= channel.mu_up_expected.median
        assert result.z0_expected >= channel.z0_expected
    check_against_pyhf(spec, result.z0_expected, result.mu_up_expected.median)
    assert result.to_flat_dict()["z0_expected_node_ttH"] == result.channels["node_ttH"].z0_expected


def test_comparison_table_shows_every_channel_beside_the_combined_result(
    node_result: tuple,
) -> None:
    """The per-node Z0/mu95 columns of the comparison table hold what pyhf gives for that
    node alone; a model without channels shows '-'; a narrow terminal drops channels first."""
    from rich.console import Console

    from hepclf.cli.render import comparison_table
    from hepclf.training.report import comparison

    result, spec = node_result
    metrics = {"nodes": result.to_flat_dict(), "plain": {"z0_expected": 1.0, "auc_test": 0.7}}
    table = comparison(metrics, "nodes", "Model comparison")
    titles = table.titles
    assert titles[titles.index("mu95 exp") + 1 :][:4] == [f"node_{c} Z0/mu95" for c in CLASSES]
    row = dict(zip(titles, table.rows[0], strict=True))
    assert float(row["Z0 exp"]) == pytest.approx(pyhf_z0(spec), abs=0.006)
    for name, channel in result.channels.items():
        z0, mu = row[f"{name} Z0/mu95"].split("/")
        assert float(z0) == pytest.approx(pyhf_z0(alone(spec, name)), abs=0.006)
        assert float(mu) == pytest.approx(channel.mu_up_expected.median, rel=2e-3)
    assert dict(zip(titles, table.rows[1], strict=True))["node_ttH Z0/mu95"] == "-/-"
    for width in (80, 60):
        console = Console(width=width, record=True)
        console.print(comparison_table(table, width))
        text = console.export_text()
        assert max(map(len, text.splitlines())) <= width and "…" not in text
        assert f"{result.channels['node_ttH'].z0_expected:.2f}" in text  # signal node stays
        assert f"{result.mu_up_expected.median:.3g}" in text  # the combined limit stays
    dropped = "left out at 60 columns: train s, node_ttlf Z0/mu95, node_ttcc Z0/mu95"
    assert dropped in " ".join(text.split())


def test_category_channels_and_categories_by_nodes() -> None:
    sample, proba = multiclass_events(seed=7)
    category = (np.arange(sample.size) % 3 == 0).astype(np.int16)  # 'low' = 0, 'high' = 1
    table = table_of(sample, category)
    config = pipeline({"channels": "categories", "binning": {"edges": EDGES}}, categories=True)
    result = model_physics(config, table, None, proba)
    assert list(result.channels) == ["cat_low", "cat_high"]
    signal = proba[:, 0]
    spec = independent_spec(
        {
            f"cat_{c}": (
                signal[category == k],
                weights(sample)[category == k],
                sample[category == k],
            )
            for k, c in enumerate(["low", "high"])
        }
    )
    check_against_pyhf(spec, result.z0_expected, result.mu_up_expected.median)
    for channel in result.channels.values():
        assert result.mu_up_expected.median <= channel.mu_up_expected.median
    both = pipeline(
        {"channels": ["categories", "nodes"], "binning": {"edges": EDGES}}, categories=True
    )
    routing = Routing.of(both)
    masks = routing.split(proba, category)
    assert list(masks)[:2] == ["cat_low_node_ttH", "cat_low_node_ttbb"] and len(masks) == 8
    low_tth, score = masks["cat_low_node_ttH"]
    np.testing.assert_array_equal(low_tth, (category == 0) & (np.argmax(proba, axis=1) == 0))
    np.testing.assert_array_equal(score, proba[:, 0])


def shifted_events(shift: float, n: int = 40_000) -> EvaluatedEvents:
    """A generated discriminant; background 'ttbb' varied by shifting its score by +shift."""
    rng = np.random.default_rng(3)
    sample = rng.integers(0, 2, n)
    score = np.where(sample == 0, rng.beta(5, 2, n), rng.beta(2, 4, n))
    weight = np.where(sample == 0, 0.01, 0.2)
    bkg = sample == 1
    up = VariedEvents(np.clip(score[bkg] * (1 + shift), 0, 1), weight[bkg])
    down = VariedEvents(score[bkg] * (1 - shift), weight[bkg])
    return EvaluatedEvents(
        score, weight, sample, ["ttH", "ttbb"], ["ttH"], varied={"jes": {"ttbb": (up, down)}}
    )


def test_shifted_input_gives_histosys_that_moves_up_and_worsens_the_limit() -> None:
    shapes = {"jes": {"inputs": {"ttbb": {"up": {"files": ["up.root"]}}}}}
    binning = {"edges": [0.0, 0.3, 0.5, 0.7, 1.0]}
    plain = physics_result(shifted_events(0.1), ResultConfig(binning=binning))
    varied = physics_result(
        shifted_events(0.1), ResultConfig(binning=binning, systematics={"shapes": shapes})
    )
    (bkg,) = [s for s in varied.workspace["channels"][0]["samples"] if s["name"] == "ttbb"]
    histosys = next(m for m in bkg["modifiers"] if m["type"] == "histosys")
    nominal = np.array(bkg["data"])
    hi, lo = np.array(histosys["data"]["hi_data"]), np.array(histosys["data"]["lo_data"])
    assert (hi[-2:] > nominal[-2:]).all() and (lo[-2:] < nominal[-2:]).all()  # up moves up
    assert hi.sum() == pytest.approx(nominal.sum())  # shape only: the norm is the normsys
    assert varied.mu_up_expected.median > 1.05 * plain.mu_up_expected.median
    variation = varied.templates.variations["jes"]["ttbb"]
    assert variation.up[-1] > nominal[-1]
    # a 0.01 % shift is MC noise for these bins: pruned, only its tiny norm part would stay
    noise = physics_result(
        shifted_events(1e-4), ResultConfig(binning=binning, systematics={"shapes": shapes})
    )
    (decision,) = noise.channels["discriminant"].shapes
    assert not decision.histosys


def test_pruning_keeps_five_percent_of_pure_noise_and_every_real_shape() -> None:
    """The pruning rule is a 5 % test: variations whose shape is MC noise alone (random
    per-event weight factors around 1.2; an independent sample of the same distribution
    with 10 % more yield as varied files) keep their histosys in about 5 % of 200
    pseudo-samples (binomial ±3σ; before the noise was scaled with the normalisation they
    kept it in 0 % and 3 % of 3000); a real slope of the factor with the score is kept, a
    constant factor is a pure normsys of that size."""
    from hepclf.config.result import ShapeConfig
    from hepclf.physics.shapes import shape_modifiers
    from hepclf.physics.templates import build_templates

    rng = np.random.default_rng(1)
    edges = np.linspace(0.0, 1.0, 6)
    varied_files = ShapeConfig(inputs={"ttbb": {"up": {"files": ["up.root"]}}})
    shapes = {"noise": ShapeConfig(up="f"), "files": varied_files, "slope": ShapeConfig(up="g")}
    shapes["scale"] = ShapeConfig(up="h")
    kept = dict.fromkeys(shapes, 0)
    repeats, n = 200, 2000
    for _ in range(repeats):
        sample = rng.integers(0, 2, n)
        score, weight = rng.beta(2, 3, n), rng.uniform(0.5, 1.5, n)
        other = VariedEvents(rng.beta(2, 3, n // 2), 1.1 * rng.uniform(0.5, 1.5, n // 2))
        factors = {
            "noise": (1.2 + 0.2 * rng.normal(size=n), None),
            "slope": (1.0 + 0.6 * (score - 0.4), None),
            "scale": (np.full(n, 1.1), None),
        }
        events = EvaluatedEvents(
            score, weight, sample, ["ttH", "ttbb"], ["ttH"], factors=factors,
            varied={"files": {"ttbb": (other, None)}},
        )  # fmt: skip
        modifiers, decisions = shape_modifiers(build_templates(events, edges), shapes)
        for d in decisions:
            if d.sample == "ttbb":
                kept[d.shape] += d.histosys
    noise = np.sqrt(0.05 * 0.95 / repeats)
    for shape in ("noise", "files"):
        assert abs(kept[shape] / repeats - 0.05) < 3 * noise, (shape, kept[shape])
    assert kept["slope"] == repeats and kept["scale"] == 0
    (scale,) = [m for m in modifiers["ttbb"] if m["name"] == "scale"]
    assert scale["data"] == pytest.approx({"hi": 1.1, "lo": 0.9})  # mirrored: 2 - 1.1


@pytest.mark.parametrize("split", ["kfold", "random"])
def test_varied_files_without_event_id_are_refused_naming_the_fix(split: str) -> None:
    """Without event ids the copies of training events in varied files can be neither left
    out nor scored by the fold model that did not see them: an error, before training."""
    from hepclf.runtime.errors import ConfigError

    raw = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    raw["split"] = {"method": split}
    assert parse_pipeline(raw).event_id == "event"  # as shipped
    raw.pop("event_id")
    with pytest.raises(ConfigError) as refused:
        parse_pipeline(raw)
    message = " ".join(str(refused.value).split())
    assert (
        "result.systematics.shapes ['jes']: varied files need the pipeline's 'event_id:" in message
    )
    assert "Add 'event_id:' and train again" in message
    assert ("average of all fold models" in message) == (split == "kfold")
    raw["result"]["systematics"]["shapes"] = {"btag": {"up": "1.1"}}  # weights: no files
    assert parse_pipeline(raw).event_id is None


def test_one_sided_weight_variation_is_mirrored() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    sample = rng.integers(0, 2, n)
    score = np.where(sample == 0, rng.beta(5, 2, n), rng.beta(2, 4, n))
    up = np.where(sample == 1, 1.0 + 0.3 * score, 1.0)
    events = EvaluatedEvents(
        score, np.full(n, 0.05), sample, ["ttH", "ttbb"], ["ttH"], factors={"sf": (up, None)}
    )
    config = ResultConfig(
        binning={"edges": [0.0, 0.5, 1.0]}, systematics={"shapes": {"sf": {"up": "sf_up"}}}
    )
    result = physics_result(events, config)
    v = result.templates.variations["sf"]["ttbb"]
    nominal = result.templates.sumw[1]
    np.testing.assert_allclose(v.down, 2 * nominal - v.up)
    assert v.mirrored and list(result.templates.variations["sf"]) == ["ttbb"]


def two_channel_result(config: ResultConfig) -> Any:
    events = shifted_events(0.05, n=20_000)
    plain = EvaluatedEvents(events.score, events.expected, events.sample, ["ttH", "ttbb"], ["ttH"])
    half = plain.score < 0.5
    channels = {
        name: EvaluatedEvents(
            plain.score[m], plain.expected[m], plain.sample[m], ["ttH", "ttbb"], ["ttH"]
        )
        for name, m in (("low", half), ("high", ~half))
    }
    return physics_result(channels, config)


CHAMPION = ResultConfig(
    binning={"bins": 3}, unblind=True, impacts=True, systematics={"normsys": {"ttbb": 0.05}}
)


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict, dict]:
    """The champion's fits on data with the signal injected at mu = 1 (observed, impacts):
    the result, the data per channel and the plots."""
    from hepclf.physics.champion import fit_champion, set_observation

    result = two_channel_result(CHAMPION)
    observed = {
        n: c.templates.background_yield + c.templates.signal_yield
        for n, c in result.channels.items()
    }
    folder = tmp_path_factory.mktemp("champion")
    files = fit_champion(result, set_observation(result, observed), CHAMPION, 1, folder, "m")
    return result, observed, files


def test_observed_on_asimov_data_reproduces_the_expected_results(
    tmp_path: Any, injected: tuple
) -> None:
    from hepclf.physics.champion import fit_champion, set_observation

    # background-only Asimov data: observed limit = expected median, observed Z0 = 0
    config = CHAMPION.model_copy(update={"impacts": False})
    result = two_channel_result(config)
    observed = {n: c.templates.background_yield for n, c in result.channels.items()}
    fit_champion(result, set_observation(result, observed), config, 1, tmp_path, "m")
    numbers = result.extra["observed"]
    assert numbers["mu_up"] == pytest.approx(result.mu_up_expected.median, rel=0.02)
    assert numbers["z0"] == pytest.approx(0.0, abs=0.05)
    assert numbers["mu_hat"] == pytest.approx(0.0, abs=0.05)
    # signal injected at mu = 1: observed Z0 near the expected one (within 2 %)
    injected, observed, files = injected
    numbers = injected.extra["observed"]
    assert numbers["z0"] == pytest.approx(injected.z0_expected, rel=0.02)
    assert numbers["mu_hat"] == pytest.approx(1.0, abs=0.02)
    post = injected.extra["postfit"]["high"]["samples"]
    np.testing.assert_allclose(np.add(post["ttH"], post["ttbb"]), observed["high"], rtol=0.02)
    assert {"postfit_low", "postfit_high"} <= set(files)


def hand_ranking(spec: dict, prefit: dict[str, float]) -> dict[str, list[float]]:
    """Impacts on mu by pyhf fits written here: each parameter fixed at its best fit
    ± ``prefit[label]`` and ± its post-fit uncertainty, everything else refitted."""
    backend, optimizer = pyhf.get_backend()
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-3))
    try:
        model = pyhf.Workspace(spec).model()
        data = pyhf.Workspace(spec).data(model)
        fit = pyhf.infer.mle.fit(data, model, return_uncertainties=True)
        best, sigma = fit[:, 0], fit[:, 1]
        poi = model.config.poi_index
        out = {}
        for label, size in prefit.items():
            i = model.config.par_names.index(label)
            fixed = list(model.config.suggested_fixed())
            fixed[i] = True
            deltas = []
            for width in (size, sigma[i]):
                for sign in (-1.0, 1.0):
                    init = list(model.config.suggested_init())
                    init[i] = best[i] + sign * width
                    refit = pyhf.infer.mle.fit(data, model, init_pars=init, fixed_params=fixed)
                    deltas.append(float(refit[poi] - best[poi]))
            out[label] = deltas
        return out
    finally:
        pyhf.set_backend(backend, optimizer)


def test_impacts_rank_mc_statistics_as_a_hand_pyhf_computation(injected: tuple) -> None:
    """Every constrained parameter is ranked, the per-bin MC statistical ones too (their
    pre-fit width: the bin's relative MC uncertainty, from the templates here), with the
    impacts of fits done by hand with pyhf."""
    result, _, files = injected
    prefit = {"norm_ttbb": 1.0}
    for name, channel in result.channels.items():
        t = channel.templates
        relative = np.sqrt(t.sumw2.sum(axis=0)) / t.sumw.sum(axis=0)
        prefit |= {f"staterror_{name}[{j}]": float(r) for j, r in enumerate(relative)}
    impacts = {r["parameter"]: r for r in result.extra["impacts"]}
    assert set(impacts) == set(prefit)
    hand = hand_ranking(result.extra["observed_workspace"], prefit)
    scale = max(abs(v) for deltas in hand.values() for v in deltas)
    for label, deltas in hand.items():
        row = impacts[label]
        assert row["prefit_uncertainty"] == pytest.approx(prefit[label], rel=1e-6)
        ours = [*row["prefit"], *row["postfit"]]
        np.testing.assert_allclose(ours, deltas, rtol=0.02, atol=0.002 * scale, err_msg=label)
    ranked = [max(map(abs, r["postfit"])) for r in result.extra["impacts"]]
    assert ranked == sorted(ranked, reverse=True)
    assert files["impacts_plot"].read_bytes()[:4] == b"\x89PNG"


def counting(signal: float, background: float) -> Any:
    """One bin, signal and background from many MC events (negligible MC uncertainty)."""
    n = 4000
    sample = np.repeat([0, 1], n)
    score = np.full(2 * n, 0.9)
    weight = np.where(sample == 0, signal / n, background / n)
    events = EvaluatedEvents(score, weight, sample, ["ttH", "ttbb"], ["ttH"])
    return physics_result(
        events,
        ResultConfig(binning={"edges": [0.0, 1.0], "min_background_yield": 0.0}, impacts=False),
    )


def test_champion_fits_print_no_minuit_warnings_and_a_failed_fit_is_an_error(
    tmp_path: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """MINUIT's harmless warnings at a boundary ('W VariableMetricBuilder No improvement in
    line search' on this counting experiment, printed on stdout by cabinetry's fits) stay
    off the terminal; a fit with no valid minimum still stops with the fit named."""
    from hepclf.physics.champion import fit_champion
    from hepclf.physics.fits import best_fit
    from hepclf.physics.inference import asimov_data, model_of, numpy_backend
    from hepclf.runtime.errors import InputDataError

    result = counting(3.0, 0.2)
    config = ResultConfig(binning={"edges": [0.0, 1.0]}, impacts=True)
    capfd.readouterr()
    fit_champion(result, result.workspace, config, 1, tmp_path, "m")
    out, err = capfd.readouterr()
    assert "MnPosDef" not in out + err and "VariableMetricBuilder" not in out + err
    (impact,) = result.extra["impacts"]  # the one bin's MC statistics
    assert impact["parameter"] == "staterror_discriminant[0]"
    with numpy_backend():
        model = model_of(result.workspace)
        data = asimov_data(model, 1.0)
        data[0] = np.nan
        with pytest.raises(InputDataError, match="fit of m to the data failed"):
            best_fit(model, data, "of m to the data")


def test_toys_agree_at_large_counts_and_show_the_bias_at_small_background() -> None:
    """Median CLs from toys at the asymptotic limit: 5 % where counts are large (± 2 %, 400
    toys). Where b = 0.2 the median background-only experiment sees no event; the exact
    counting limit is then mu s = ln 20, the asymptotic one is clearly lower (optimistic),
    and the toys' CLs there is above 5 % (7 % with this seed)."""
    from hepclf.physics.inference import model_of, numpy_backend
    from hepclf.physics.toys import cls_band

    median, limit = {}, {}
    for label, (s, b) in {"large": (30.0, 400.0), "small": (3.0, 0.2)}.items():
        asymptotic = counting(s, b)
        limit[label] = asymptotic.mu_up_expected.median
        np.random.seed(4)
        with numpy_backend():
            model = model_of(asymptotic.workspace)
            median[label] = cls_band(model, limit[label], 400)[2]
    assert median["large"] == pytest.approx(0.05, abs=0.02)
    exact = np.log(20.0) / 3.0  # exp(-mu s) = 5 % for n = 0
    assert limit["small"] < 0.95 * exact
    assert median["small"] > 0.06


@pytest.mark.slow
def test_multiclass_demo_nodes_jes_and_data_end_to_end(tmp_path: Any) -> None:
    """pipelines/multiclass.yaml as shipped (per-node channels, a JES shape from varied
    files, pseudo-data, unblinded, impacts), on small demo files and the linear model."""
    import json

    import uproot

    from hepclf.ingest.demo_data import write_demo_data
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import tracking_uri

    folder = tmp_path / "demo" / "multiclass"
    write_demo_data(folder, events=1500, seed=3, processes=CLASSES, jes=0.05, data=True)
    (tmp_path / "pipelines").mkdir()
    raw = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
    raw["models"] = {"linear": {}}
    config = parse_pipeline(raw, base_dir=tmp_path / "pipelines")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking_uri(store):
        run = run_pipeline(config, output=tmp_path / "out", tracking_uri=store)
    entry = json.loads((tmp_path / "out" / "metrics.json").read_text())["linear"]
    assert set(entry["channels"]) == {f"node_{c}" for c in CLASSES}
    assert entry["observed"]["mu_up"] > 0 and np.isfinite(entry["observed"]["z0"])
    for channel in entry["channels"].values():
        assert entry["mu_up_expected"]["median"] <= channel["mu_up_expected"]["median"]
    folder = tmp_path / "out" / "results" / "linear"
    with uproot.open(folder / "templates.root") as file:
        assert {"node_ttH/ttbb_jesUp", "node_ttH/ttbb_jesDown", "node_ttH/data_obs"} <= {
            k.split(";")[0] for k in file.keys(recursive=True)
        }
        observed = file["node_ttH/data_obs"].values()
    summary = json.loads((folder / "result.json").read_text())
    np.testing.assert_allclose(observed, summary["channels"]["node_ttH"]["templates"]["observed"])
    ranked = [r["parameter"] for r in summary["impacts"]]
    assert "jes" in ranked and "staterror_node_ttH[0]" in ranked  # MC statistics ranked too
    table = (tmp_path / "out" / "summary.md").read_text()
    header, _, row = table[table.index("| model |") :].splitlines()[:3]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    node = entry["channels"]["node_ttbb"]
    assert cells["node_ttbb Z0/mu95"] == (
        f"{node['z0_expected']:.2f}/{node['mu_up_expected']['median']:.3g}"
    )
    assert (folder / "impacts.png").is_file() and (folder / "postfit_node_ttH.png").is_file()
    assert run.results["linear"].physics.extra["observed"]["mu_hat"] == pytest.approx(
        summary["observed"]["mu_hat"]
    )
