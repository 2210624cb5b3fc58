"""HEP classifier metrics against independent computations (sklearn, scipy, analytic, by hand)."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest
from scipy.stats import ks_2samp, kstwobign, norm
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from hepclf.evaluation import (
    CutScan,
    RocCurve,
    accuracy,
    ams,
    asimov_significance,
    effective_entries,
    evaluate_classifier,
    ks_test,
    roc_auc,
    roc_curve,
    separation,
    simple_significance,
    weighted_correlation,
)
from tests.conftest import TWO_CLASS_METRIC_KEYS


def _sample(rng: np.random.Generator, n: int, shift: float = 1.0, *, ties: bool = False):
    """Labels, scores from two unit Gaussians ``shift`` apart, and positive weights."""
    y = rng.integers(0, 2, n)
    score = rng.normal(shift * y, 1.0)
    if ties:
        score = np.round(score, 1)
    return y, score, rng.exponential(1.0, n)


WEIGHTINGS = ["none", "positive", "with_zeros"]


def _weights(kind: str, w: np.ndarray) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "with_zeros":
        return np.where(np.arange(w.size) % 7 == 0, 0.0, w)
    return w


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_roc_curve_and_auc_match_sklearn(weighting: str, ties: bool) -> None:
    y, score, w = _sample(np.random.default_rng(1), 3000, ties=ties)
    weight = _weights(weighting, w)
    fpr, tpr, thresholds = sklearn_roc_curve(
        y, score, sample_weight=weight, drop_intermediate=False
    )
    roc = roc_curve(y, score, weight)
    np.testing.assert_allclose(roc.eff_b, fpr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(roc.eff_s, tpr, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(roc.thresholds, thresholds)
    assert roc_auc(y, score, weight) == pytest.approx(
        roc_auc_score(y, score, sample_weight=weight), rel=1e-12
    )
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(roc.rejection, 1.0 / fpr)


def test_auc_with_negative_weights_is_the_weighted_pair_probability() -> None:
    rng = np.random.default_rng(2)
    y, score, w = _sample(rng, 400, ties=True)
    w = np.where(rng.random(400) < 0.2, -0.5 * w, w)
    sig, bkg = y == 1, y == 0
    above = score[sig][:, None] > score[bkg][None, :]
    tied = score[sig][:, None] == score[bkg][None, :]
    pair_w = w[sig][:, None] * w[bkg][None, :]
    expected = np.sum(pair_w * (above + 0.5 * tied)) / (w[sig].sum() * w[bkg].sum())
    assert roc_auc(y, score, w) == pytest.approx(expected, rel=1e-10)


SHIFT = 1.5


N_PER_CLASS = 100_000


@pytest.fixture(scope="module")
def gaussians() -> RocCurve:
    """Background N(0,1) and signal N(SHIFT,1), as evenly spaced quantiles: no sampling noise."""
    quantiles = norm.ppf((np.arange(N_PER_CLASS) + 0.5) / N_PER_CLASS)
    y = np.repeat([0, 1], N_PER_CLASS)
    return roc_curve(y, np.concatenate([quantiles, quantiles + SHIFT]))


def test_auc_of_two_gaussians_is_analytic(gaussians: RocCurve) -> None:
    assert gaussians.auc == pytest.approx(norm.cdf(SHIFT / math.sqrt(2)), abs=1e-4)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_accuracy_matches_sklearn(weighting: str) -> None:
    y, score, w = _sample(np.random.default_rng(4), 2000, ties=True)
    prob = 1.0 / (1.0 + np.exp(-score))
    weight = _weights(weighting, w)
    expected = accuracy_score(y, prob >= 0.5, sample_weight=weight)
    assert accuracy(y, prob, weight) == pytest.approx(expected, rel=1e-12)
    assert accuracy(y, prob, weight, cut=0.7) == pytest.approx(
        accuracy_score(y, prob >= 0.7, sample_weight=weight), rel=1e-12
    )


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_best_accuracy_is_the_maximum_over_all_cuts(weighting: str) -> None:
    y, score, w = _sample(np.random.default_rng(5), 300, ties=True)
    weight = _weights(weighting, w)
    by_cut = {
        cut: accuracy_score(y, score >= cut, sample_weight=weight) for cut in np.unique(score)
    }
    best = CutScan.from_arrays(y, score, weight).best_accuracy()
    assert best.value == pytest.approx(max(by_cut.values()), rel=1e-12)
    assert by_cut[best.cut] == pytest.approx(best.value, rel=1e-12)


@pytest.mark.parametrize("eff_b", [0.01, 0.1, 0.3])
def test_eff_s_at_eff_b_of_two_gaussians_is_analytic(gaussians: RocCurve, eff_b: float) -> None:
    # A cut at t has eff_b = Φ(-t) and eff_s = Φ(SHIFT - t), so eff_s = Φ(Φ⁻¹(eff_b) + SHIFT).
    expected = norm.cdf(norm.ppf(eff_b) + SHIFT)
    assert float(gaussians.eff_s_at(eff_b)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("eff_s", [0.5, 0.7, 0.9])
def test_background_rejection_of_two_gaussians_is_analytic(
    gaussians: RocCurve, eff_s: float
) -> None:
    eff_b = norm.cdf(norm.ppf(eff_s) - SHIFT)
    rejection, error = gaussians.rejection_at(eff_s)
    assert float(rejection) == pytest.approx(1.0 / eff_b, rel=1e-3)
    binomial = math.sqrt(eff_b * (1 - eff_b) / N_PER_CLASS) / eff_b**2
    assert float(error) == pytest.approx(binomial, rel=1e-3)


def test_interpolation_takes_the_best_point_at_vertical_and_horizontal_segments() -> None:
    # Signal at 0.9 and 0.5, background at 0.7 and 0.1: the curve through
    # (eff_b, eff_s) = (0,0), (0,.5), (.5,.5), (.5,1), (1,1).
    roc = roc_curve([1, 0, 1, 0], [0.9, 0.7, 0.5, 0.1])
    np.testing.assert_allclose(roc.eff_s_at([0.0, 0.25, 0.5, 0.75]), [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(roc.eff_b_at([0.25, 0.5, 0.75, 1.0]), [0.0, 0.0, 0.5, 0.5])
    rejection, error = roc.rejection_at([0.5, 0.75])
    np.testing.assert_allclose(rejection, [np.inf, 2.0])
    np.testing.assert_allclose(error[1], math.sqrt(0.25 / 2) / 0.25)


def test_interpolation_is_linear_between_points() -> None:
    # Cuts 0.9, 0.5, 0.1 give points (0,0), (1/3,1/2), (2/3,1), (1,1).
    roc = roc_curve([1, 0, 1, 0, 0], [0.9, 0.9, 0.5, 0.5, 0.1])
    np.testing.assert_allclose(roc.eff_s_at([1 / 6, 0.5, 0.9]), [0.25, 0.75, 1.0])
    np.testing.assert_allclose(roc.eff_b_at([0.25, 0.75]), [1 / 6, 0.5])


def test_effective_entries() -> None:
    assert effective_entries(np.ones(10)) == pytest.approx(10.0)
    assert effective_entries(np.full(10, 3.5)) == pytest.approx(10.0)
    assert effective_entries([1.0, 1.0, 2.0]) == pytest.approx(16.0 / 6.0)
    assert effective_entries([2.0, -1.0]) == pytest.approx(1.0 / 5.0)


def test_rejection_error_uses_effective_background_count() -> None:
    y, score, w = _sample(np.random.default_rng(8), 20_000)
    unweighted = roc_curve(y, score).rejection_at([0.5, 0.7])
    scaled = roc_curve(y, score, np.full(y.size, 2.5)).rejection_at([0.5, 0.7])
    np.testing.assert_allclose(scaled, unweighted, rtol=1e-12)
    roc = roc_curve(y, score, w)
    eps = roc.eff_b_at([0.5])
    _, error = roc.rejection_at([0.5])
    n_eff = effective_entries(w[y == 0])
    np.testing.assert_allclose(error, np.sqrt(eps * (1 - eps) / n_eff) / eps**2, rtol=1e-12)


def test_separation_by_hand_and_limits() -> None:
    # Two equal bins over [0, 1]: signal (3, 1)/4, background (1, 3)/4:
    # <S²> = ½ (0.5²/1 + 0.5²/1) = 0.25.
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    score = np.array([0.0, 0.1, 0.2, 0.9, 0.1, 0.8, 0.9, 1.0])
    assert separation(y, score, bins=2) == pytest.approx(0.25)
    # Weights do the same as repeating events.
    assert separation([1, 1, 0, 0], [0.0, 0.9, 0.1, 1.0], [3, 1, 1, 3], bins=2) == pytest.approx(
        0.25
    )
    same = np.linspace(0, 1, 50)
    assert separation(np.r_[np.ones(50), np.zeros(50)], np.r_[same, same]) == pytest.approx(0.0)
    assert separation([1, 1, 0, 0], [0.9, 1.0, 0.0, 0.1]) == pytest.approx(1.0)


@pytest.mark.parametrize(("n_a", "n_b"), [(500, 700), (3000, 1200), (40, 40)])
@pytest.mark.parametrize("ties", [False, True])
def test_ks_unweighted_matches_scipy_asymptotic(n_a: int, n_b: int, ties: bool) -> None:
    rng = np.random.default_rng(n_a + n_b)
    a, b = rng.normal(0.0, 1.0, n_a), rng.normal(0.1, 1.1, n_b)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    expected = ks_2samp(a, b, method="asymp")
    result = ks_test(a, b)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_weighted() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(0.0, 1.0, 800), rng.normal(0.2, 1.0, 600)
    # Equal weights change nothing: the effective sizes are the event counts.
    assert ks_test(a, b, np.full(800, 0.3), np.full(600, 7.0)) == pytest.approx(ks_test(a, b))
    # Integer weights move the CDF like repeated events; the effective size is smaller.
    w_a = rng.integers(1, 4, 800).astype(float)
    repeated = ks_2samp(np.repeat(a, w_a.astype(int)), b, method="asymp")
    weighted = ks_test(a, b, w_a, None)
    assert weighted.statistic == pytest.approx(repeated.statistic, abs=1e-12)
    assert weighted.pvalue > repeated.pvalue


def test_weighted_ks_pvalues_are_calibrated() -> None:
    # Under the null hypothesis p is uniform. Counting events instead of effective events
    # (here about half as many) would flag ~45% of these pairs at p < 0.1.
    rng = np.random.default_rng(17)
    pvalues = np.array(
        [
            ks_test(
                rng.normal(size=400),
                rng.normal(size=300),
                rng.exponential(1.0, 400),
                rng.exponential(1.0, 300),
            ).pvalue
            for _ in range(400)
        ]
    )
    assert 0.05 < np.mean(pvalues < 0.1) < 0.16
    assert 0.4 < np.mean(pvalues) < 0.6


def _overtraining_samples(rng: np.random.Generator, n: int, train_shift: float):
    y_test, score_test, w_test = _sample(rng, n)
    y_train, score_train, w_train = _sample(rng, n)
    score_train = score_train + train_shift * np.where(y_train == 1, 1.0, -1.0)
    return y_test, score_test, w_test, y_train, score_train, w_train


def test_overtraining_flag() -> None:
    # Train and test drawn from the same distribution: under this null hypothesis each
    # p-value is uniform, so any fixed seed has a 10% chance of a false flag; this one has not.
    rng = np.random.default_rng(0)
    fair = evaluate_classifier(*_overtraining_samples(rng, 20_000, 0.0))
    assert not fair.overtrained
    assert min(fair.ks_signal.pvalue, fair.ks_background.pvalue) > 0.05
    overfit = evaluate_classifier(*_overtraining_samples(rng, 20_000, 0.3))
    assert overfit.overtrained
    assert overfit.ks_signal.pvalue < 1e-6
    assert overfit.ks_background.pvalue < 1e-6
    assert overfit.auc_train > overfit.auc_test


def test_overtraining_threshold_is_configurable() -> None:
    y, score, w = _sample(np.random.default_rng(11), 5000)
    identical = evaluate_classifier(y, score, w, y, score, w, ks_threshold=0.999)
    assert identical.ks_signal.pvalue == pytest.approx(1.0)
    assert not identical.overtrained
    shifted = evaluate_classifier(y, score, w, y, score + 0.1, w)
    p_min = min(shifted.ks_signal.pvalue, shifted.ks_background.pvalue)
    assert 0.0 < p_min < 0.5
    for threshold, flagged in ((0.5 * p_min, False), (2.0 * p_min, True)):
        report = evaluate_classifier(y, score, w, y, score + 0.1, w, ks_threshold=threshold)
        assert report.overtrained is flagged


def test_significances_by_hand() -> None:
    # Signal w=2 at 0.9, background w=1 at 0.8, signal w=1 at 0.7, background w=3 at 0.3.
    # Cuts 0.9, 0.8, 0.7, 0.3 pass (s, b) = (2, 0), (2, 1), (3, 1), (3, 4).
    scan = CutScan.from_arrays([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.3], [2.0, 1.0, 1.0, 3.0])
    np.testing.assert_array_equal(scan.cuts, [0.9, 0.8, 0.7, 0.3])

    simple = scan.best(simple_significance)
    assert simple.value == pytest.approx(3.0 / math.sqrt(4.0))
    assert simple.cut == 0.7

    def z_asimov(s: float, b: float) -> float:
        return math.sqrt(2.0 * ((s + b) * math.log(1.0 + s / b) - s))

    asimov = scan.best(asimov_significance)
    assert asimov.value == pytest.approx(z_asimov(3.0, 1.0))
    assert asimov.cut == 0.7

    # AMS is Z_A with b + 10: 0.613, 0.586, 0.867, 0.776 for the four cuts.
    best_ams = scan.best(ams)
    assert best_ams.value == pytest.approx(z_asimov(3.0, 11.0))
    assert best_ams.value == pytest.approx(0.8674, abs=1e-4)
    assert best_ams.cut == 0.7

    scaled = scan.best(simple_significance, signal_scale=10.0, background_scale=0.5)
    assert scaled.value == pytest.approx(30.0 / math.sqrt(30.5))
    assert scaled.cut == 0.7


def test_significance_formulas_edge_cases() -> None:
    assert np.isnan(simple_significance([1.0], [-1.0])[0])
    assert np.isnan(asimov_significance([1.0], [0.0])[0])
    assert np.isnan(asimov_significance([-1.0], [5.0])[0])
    assert ams([2.0], [0.0])[0] == pytest.approx(asimov_significance([2.0], [10.0])[0])
    # For s << b, Z_A -> s / sqrt(b).
    assert asimov_significance([1e-3], [1e4])[0] == pytest.approx(1e-5, rel=1e-3)
    scan = CutScan.from_arrays([1, 0], [0.2, 0.9])
    assert scan.best(asimov_significance).value == pytest.approx(
        asimov_significance([1.0], [1.0])[0]
    )


def test_report_flat_dict_and_summary() -> None:
    rng = np.random.default_rng(12)
    y_test, s_test, w_test = _sample(rng, 20_000, 1.5)
    y_train, s_train, w_train = _sample(rng, 20_000, 1.5)
    report = evaluate_classifier(y_test, s_test, w_test, y_train, s_train, w_train)
    flat = report.to_flat_dict()
    assert set(flat) == set(TWO_CLASS_METRIC_KEYS)
    assert all(re.fullmatch(r"[A-Za-z0-9_.]+", key) for key in flat)
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat.values())
    assert flat["auc_test"] == pytest.approx(roc_auc_score(y_test, s_test, sample_weight=w_test))
    assert flat["auc_train"] == pytest.approx(
        roc_auc_score(y_train, s_train, sample_weight=w_train)
    )
    assert flat["accuracy_test"] == pytest.approx(
        accuracy_score(y_test, s_test >= 0.5, sample_weight=w_test)
    )
    assert flat["eff_s_at_eff_b_0.1_train"] == pytest.approx(
        float(roc_curve(y_train, s_train, w_train).eff_s_at(0.1))
    )
    assert flat["overtrained"] == 0.0

    summary = json.loads(json.dumps(report.to_summary()))
    assert summary["auc_test"] == flat["auc_test"]
    assert summary["eff_s_at_eff_b"]["0.01"] == {
        "test": flat["eff_s_at_eff_b_0.01_test"],
        "train": flat["eff_s_at_eff_b_0.01_train"],
    }
    assert set(summary["eff_s_at_eff_b"]) == {"0.01", "0.1", "0.3"}
    assert summary["ks_pvalue_signal"] == flat["ks_pvalue_signal"]
    assert summary["overtrained"] is False
    assert summary["significance"]["ams"] == {
        "value": flat["ams_best"],
        "cut": flat["ams_best_cut"],
    }


def test_report_points_and_scales_are_configurable() -> None:
    rng = np.random.default_rng(13)
    y, score, w = _sample(rng, 5000, 1.0)
    report = evaluate_classifier(
        y, score, w, y, score, w, eff_b_points=(0.05,), eff_s_points=(0.8,), signal_scale=4.0
    )
    flat = report.to_flat_dict()
    assert "eff_s_at_eff_b_0.05_test" in flat
    assert "bkg_rejection_at_eff_s_0.8_test_err" in flat
    assert "eff_s_at_eff_b_0.01_test" not in flat
    unscaled = evaluate_classifier(y, score, w, y, score, w)
    assert report.significance_best.value > unscaled.significance_best.value
    with pytest.raises(ValueError, match="eff_b_points"):
        evaluate_classifier(y, score, w, y, score, w, eff_b_points=(0.0,))


def test_negative_weights_give_finite_sensible_metrics() -> None:
    rng = np.random.default_rng(14)
    y, score, w = _sample(rng, 20_000, 1.5)
    w = np.where(rng.random(w.size) < 0.1, -w, w)
    report = evaluate_classifier(y, score, w, y, score, w)
    flat = report.to_flat_dict()
    assert all(math.isfinite(v) for v in flat.values())
    effs = [report.eff_s_at_eff_b[p].test for p in (0.01, 0.1, 0.3)]
    assert effs == sorted(effs)
    assert effs[0] > 0.0 and effs[-1] <= 1.0


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="0 \\(background\\) or 1"):
        roc_curve([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="non-finite"):
        roc_curve([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="signal events have a total weight"):
        roc_curve([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="background events have a total weight"):
        accuracy([0, 1], [0.1, 0.2], [-1.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        roc_curve([0, 1], [0.1, 0.2], [1.0])


def test_weighted_correlation() -> None:
    rng = np.random.default_rng(15)
    x = rng.multivariate_normal([0, 0, 0], [[1, 0.6, 0], [0.6, 1, -0.3], [0, -0.3, 1]], 2000)
    np.testing.assert_allclose(weighted_correlation(x), np.corrcoef(x.T), atol=1e-12)
    w = rng.exponential(1.0, 2000)
    cov = np.cov(x.T, aweights=w)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(weighted_correlation(x, w), cov / np.outer(sd, sd), atol=1e-12)
    constant = weighted_correlation(np.column_stack([x[:, 0], np.ones(2000)]))
    assert np.isnan(constant[1, 1]) and constant[0, 0] == pytest.approx(1.0)


def test_large_sample_is_fast() -> None:
    rng = np.random.default_rng(16)
    y_test, s_test, w_test = _sample(rng, 1_000_000, 1.0)
    y_train, s_train, w_train = _sample(rng, 1_000_000, 1.0)
    start = time.process_time()  # CPU time: robust against a busy machine
    report = evaluate_classifier(y_test, s_test, w_test, y_train, s_train, w_train)
    assert time.process_time() - start < 15.0
    assert report.auc_test == pytest.approx(norm.cdf(1.0 / math.sqrt(2)), abs=3e-3)


def test_binned_ks_is_roots_histogram_test() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 1.0, 3000), rng.normal(0.05, 1.0, 2000)
    w_a, w_b = rng.uniform(0.5, 1.5, 3000), np.ones(2000)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=40)
    h_a = np.cumsum(np.histogram(a, edges, weights=w_a)[0])
    h_b = np.cumsum(np.histogram(b, edges, weights=w_b)[0])
    d = np.max(np.abs(h_a / h_a[-1] - h_b / h_b[-1]))
    n_a, n_b = w_a.sum() ** 2 / (w_a**2).sum(), 2000.0
    expected = kstwobign.sf(d * np.sqrt(n_a * n_b / (n_a + n_b)))
    result = ks_test(a, b, w_a, w_b, bins=40)
    assert result.statistic == pytest.approx(d, abs=1e-12)
    assert result.pvalue == pytest.approx(expected, rel=1e-9)
    assert result.statistic <= ks_test(a, b, w_a, w_b).statistic  # binning never adds distance


def test_binned_ks_is_conservative_under_the_null() -> None:
    rng = np.random.default_rng(23)
    pvalues = np.array(
        [ks_test(rng.normal(size=2000), rng.normal(size=2000), bins=40).pvalue for _ in range(300)]
    )
    assert np.mean(pvalues < 0.05) < 0.05
