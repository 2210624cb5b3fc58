"""Each plot writes a readable PNG, returns its path and leaves matplotlib's state alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from hepclf.evaluation import ks_test, plots, roc_curve
from hepclf.evaluation.feature_plots import feature_edges, plot_feature_distributions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["m_jj", "pt_lead", "delta_eta", "n_jets"]


def assert_png(path: Path, min_width: int = 300, min_height: int = 300) -> np.ndarray:
    """The file is a PNG that matplotlib reads back, of a sensible size, with a drawing."""
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert min_width <= width <= 6000
    assert min_height <= height <= 6000
    assert image[..., :3].std() > 0.01, "the image is blank"
    return image


@pytest.fixture(scope="module")
def events() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 20_000
    y = rng.integers(0, 2, n)
    x = np.column_stack(
        [
            rng.normal(y, 1.0),
            rng.exponential(1.0 + y),
            rng.normal(0.5 * y, 1.0),
            rng.integers(0, 8, n).astype(float),
        ]
    )
    x[:, 2] += 0.6 * x[:, 0]
    score = 1.0 / (1.0 + np.exp(-(x[:, 0] + 0.3 * x[:, 1])))
    return x, y, rng.exponential(1.0, n), score


def test_roc_overlay(tmp_path: Path, events) -> None:
    _, y, w, score = events
    bdt, dnn = roc_curve(y, score, w), roc_curve(y, score**3 + 0.1 * y, w)
    curves = {"bdt": (bdt.eff_s, bdt.eff_b), "dnn": (dnn.eff_s, dnn.eff_b)}
    log_path = tmp_path / "roc" / "log.png"
    assert plots.plot_roc_overlay(curves, log_path, aucs={"bdt": bdt.auc}) == log_path
    linear_path = tmp_path / "roc" / "linear.png"
    plots.plot_roc_overlay(curves, linear_path, log_rejection=False)
    assert not np.array_equal(assert_png(log_path), assert_png(linear_path))
    with pytest.raises(ValueError, match="no ROC curves"):
        plots.plot_roc_overlay({}, tmp_path / "empty.png")


def test_roc_overlay_thins_long_curves() -> None:
    shown = plots._thin(1_000_000)
    assert shown.size <= 2 * plots.MAX_CURVE_POINTS
    assert shown[0] == 0 and shown[-1] == 999_999
    assert np.all(np.diff(shown) > 0)
    np.testing.assert_array_equal(plots._thin(50), np.arange(50))


def test_overtraining(tmp_path: Path, events) -> None:
    _, y, w, score = events
    train = np.arange(y.size) < y.size // 2
    s, b = y == 1, y == 0
    ks_s = ks_test(score[train & s], score[~train & s], w[train & s], w[~train & s])
    ks_b = ks_test(score[train & b], score[~train & b], w[train & b], w[~train & b])
    path = tmp_path / "overtraining.png"
    result = plots.plot_overtraining(
        score[train & s],
        w[train & s],
        score[train & b],
        w[train & b],
        score[~train & s],
        w[~train & s],
        score[~train & b],
        w[~train & b],
        ks_s.pvalue,
        ks_b.pvalue,
        path,
        "bdt",
    )
    assert result == path
    assert_png(path)


def test_overtraining_without_weights(tmp_path: Path, events) -> None:
    _, y, _, score = events
    s, b = score[y == 1], score[y == 0]
    path = tmp_path / "unweighted.png"
    plots.plot_overtraining(s, None, b, None, s, None, b, None, 1.0, 1.0, path, "dnn", bins=10)
    assert_png(path)


def test_learning_curves(tmp_path: Path) -> None:
    epochs = np.arange(50)
    history = {"loss": list(np.exp(-epochs / 10) + 0.3), "val_loss": list(np.exp(-epochs / 10))}
    path = tmp_path / "learning.png"
    assert plots.plot_learning_curves(history, path, "dnn") == path
    single = assert_png(path)
    with pytest.raises(ValueError, match="no values"):
        plots.plot_learning_curves({"loss": []}, tmp_path / "none.png", "dnn")
    # loss and AUC have their own panel and axis: the figure is two panels wide
    history |= {"auc": list(0.8 - 0.1 * np.exp(-epochs / 10)), "val_auc": [0.75] * 50}
    both = assert_png(plots.plot_learning_curves(history, tmp_path / "both.png", "dnn"))
    assert both.shape[1] == 2 * single.shape[1] and both.shape[0] == single.shape[0]
    assert plots._loss_label({"train_error": np.ones(2)}) == "Misclassification rate (weighted)"
    assert plots._loss_label({"train_logloss": np.ones(2)}) == "Loss"


def test_correlation_matrices(tmp_path: Path, events) -> None:
    x, y, w, _ = events
    paths = (tmp_path / "corr_s.png", tmp_path / "corr_b.png")
    assert plots.plot_correlation_matrices(x, NAMES, y, w, *paths) == paths
    signal, background = (assert_png(p) for p in paths)
    assert not np.array_equal(signal, background)


def test_correlation_matrix_of_many_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 30))
    names = [f"var_{i}" for i in range(30)]
    paths = (tmp_path / "s.png", tmp_path / "b.png")
    plots.plot_correlation_matrices(x, names, rng.integers(0, 2, 500), None, *paths)
    assert_png(paths[0], min_width=1000, min_height=1000)


def test_feature_distributions(tmp_path: Path, events) -> None:
    x, y, w, _ = events
    path = tmp_path / "features.png"
    assert plot_feature_distributions(x, NAMES, y, w, path) == path
    assert_png(path, min_width=1000, min_height=200)
    with pytest.raises(ValueError, match="3 feature names given for 4 features"):
        plot_feature_distributions(x, NAMES[:3], y, w, path)
    with pytest.raises(ValueError, match="non-finite"):
        plot_feature_distributions(np.where(x > 3, np.nan, x), NAMES, y, w, path)


def test_feature_panel_counts_overflow_and_padding_apart() -> None:
    """Padding values are left out of the bins and events outside the range are not piled
    into the end bins: both are written in the panel as shares of each class."""
    from matplotlib.figure import Figure

    from hepclf.evaluation.feature_plots import _panel

    rng = np.random.default_rng(3)
    n = 20_000
    is_signal = rng.random(n) < 0.5
    eta = rng.normal(0.0, 1.0, n)
    padded = rng.random(n) < np.where(is_signal, 0.1, 0.3)
    eta[padded] = 0.0  # inside the physical range: must not make a spike at 0
    w = rng.uniform(0.5, 1.5, n)
    ax = Figure().subplots()
    _panel(ax, "jet_eta_3", eta, is_signal, w, 40, 0.0)
    (signal, background) = [p for p in ax.patches if hasattr(p, "get_data")][:2]
    fractions, edges, _ = signal.get_data()  # StepPatch: values, edges, baseline
    real = ~padded & is_signal
    inside = real & (eta >= edges[0]) & (eta <= edges[-1])
    expected, _ = np.histogram(eta[inside], edges, weights=w[inside])
    np.testing.assert_allclose(fractions, expected / w[is_signal].sum())
    assert fractions.max() < 0.1  # no padding spike
    text = ax.texts[0].get_text()
    pad_b = w[padded & ~is_signal].sum() / w[~is_signal].sum()
    over_s = w[real & (eta > edges[-1])].sum() / w[is_signal].sum()
    assert f"pad 0: S {w[padded & is_signal].sum() / w[is_signal].sum():.1%}" in text
    assert f"B {pad_b:.1%}" in text and f"> {edges[-1]:.3g}: S {over_s:.1%}" in text
    assert ax.get_ylabel() == "Fraction of events / bin" and ax.get_xlabel() == "jet_eta_3"
    # every event of a class is in a bin, outside the range or padding: the shares add up
    under_s = w[real & (eta < edges[0])].sum() / w[is_signal].sum()
    pad_s = w[padded & is_signal].sum() / w[is_signal].sum()
    assert fractions.sum() + under_s + over_s + pad_s == pytest.approx(1.0)
    assert background.get_data()[0].max() < 0.1


def test_units_are_guessed_from_feature_names() -> None:
    from hepclf.evaluation.feature_plots import feature_unit

    for name in ("lep_pt", "jet_pt_0", "m_jj", "ht", "met", "jet_e_2", "mass_bb", "MET"):
        assert feature_unit(name) == "GeV", name
    for name in ("lep_eta", "nJet", "max_btag", "n_btag", "delta_phi", "empty"):
        assert feature_unit(name) == "", name


def test_feature_edges_give_one_bin_per_count() -> None:
    counts = np.array([0.0, 1.0, 1.0, 3.0, 7.0])
    np.testing.assert_array_equal(feature_edges(counts, 0.0, 7.0, 40), np.arange(-0.5, 8.0, 1.0))
    np.testing.assert_allclose(feature_edges(counts + 0.5, 0.5, 7.5, 40)[[0, -1]], [0.5, 7.5])
    assert feature_edges(counts + 0.5, 0.5, 7.5, 40).size == 41


def test_feature_importance(tmp_path: Path) -> None:
    path = tmp_path / "importance.png"
    assert plots.plot_feature_importance([0.1, 0.5, 0.05, 0.35], NAMES, path, "bdt") == path
    plain = assert_png(path)
    named = tmp_path / "named.png"
    plots.plot_feature_importance([0.1, 0.5, 0.05, 0.35], NAMES, named, "bdt", "total gain")
    assert not np.array_equal(assert_png(named), plain)  # the axis says which importance
    with pytest.raises(ValueError, match="feature names"):
        plots.plot_feature_importance([0.1, 0.5], NAMES, path, "bdt")


def test_plots_leave_no_figures_and_no_style_behind(tmp_path: Path, events) -> None:
    _, y, w, score = events
    roc = roc_curve(y, score, w)
    before = dict(matplotlib.rcParams)
    plots.plot_roc_overlay({"bdt": (roc.eff_s, roc.eff_b)}, tmp_path / "r.png")
    plots.plot_feature_importance([1.0, 2.0, 3.0, 4.0], NAMES, tmp_path / "i.png", "bdt")
    assert plt.get_fignums() == []
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()
