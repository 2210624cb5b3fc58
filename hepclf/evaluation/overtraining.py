"""TMVA's overtraining indicators: train-vs-test Kolmogorov-Smirnov test and separation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import kstwo, kstwobign

from hepclf.evaluation._inputs import as_scores, as_weights, labelled
from hepclf.evaluation.stats import effective_entries


class KSResult(NamedTuple):
    """Two-sample Kolmogorov-Smirnov statistic D and its p-value."""

    statistic: float
    pvalue: float


def ks_test(
    score_a: ArrayLike,
    score_b: ArrayLike,
    weight_a: ArrayLike | None = None,
    weight_b: ArrayLike | None = None,
    bins: int | None = None,
) -> KSResult:
    """Two-sided two-sample KS test with event weights.

    D is the largest distance between the weighted empirical CDFs. The p-value is Smirnov's
    asymptotic distribution, ``scipy.stats.kstwo.sf(D, round(n_a n_b / (n_a + n_b)))``, with
    the effective sample sizes (Σw)²/Σw² as n_a, n_b. Without weights this is exactly
    ``scipy.stats.ks_2samp(a, b, method="asymp")``; the exact method is out of reach for
    the millions of events of a typical sample anyway.

    With ``bins``, the test is the one TMVA's overtraining plot reports: ROOT's
    ``TH1::KolmogorovTest`` on histograms of ``bins`` equal bins over the common range,
    ``p = K(D sqrt(n_a n_b / (n_a + n_b)))`` with Kolmogorov's limiting distribution K.
    On binned data it is conservative (ROOT's documentation says so): it flags the clear
    train/test differences of an over-trained model but fewer statistical fluctuations.
    """
    a, b = as_scores(score_a, "score_a"), as_scores(score_b, "score_b")
    w_a = as_weights(weight_a, a.size, "weight_a")
    w_b = as_weights(weight_b, b.size, "weight_b")
    for name, w in (("weight_a", w_a), ("weight_b", w_b)):
        if not w.sum() > 0:
            raise ValueError(f"{name} sums to {w.sum():g}; a CDF needs a positive total")
    if bins is not None:
        return _binned_ks(a, b, w_a, w_b, bins)
    values = np.concatenate([a, b])
    steps = np.concatenate([w_a / w_a.sum(), -w_b / w_b.sum()])
    order = np.argsort(values)
    values = values[order]
    cdf_difference = np.cumsum(steps[order])
    # Compare the CDFs only after all events with the same value are counted.
    last_of_each_value = np.append(np.flatnonzero(np.diff(values)), values.size - 1)
    d = float(np.max(np.abs(cdf_difference[last_of_each_value])))
    n_a, n_b = effective_entries(w_a), effective_entries(w_b)
    n_eff = max(1.0, np.round(n_a * n_b / (n_a + n_b)))
    return KSResult(d, float(np.clip(kstwo.sf(d, n_eff), 0.0, 1.0)))


def _binned_ks(
    a: np.ndarray, b: np.ndarray, w_a: np.ndarray, w_b: np.ndarray, bins: int
) -> KSResult:
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins)
    h_a, _ = np.histogram(a, bins=edges, weights=w_a)
    h_b, _ = np.histogram(b, bins=edges, weights=w_b)
    d = float(np.max(np.abs(np.cumsum(h_a) / h_a.sum() - np.cumsum(h_b) / h_b.sum())))
    n_a, n_b = effective_entries(w_a), effective_entries(w_b)
    return KSResult(d, float(kstwobign.sf(d * np.sqrt(n_a * n_b / (n_a + n_b)))))


def separation(
    y: ArrayLike, score: ArrayLike, weight: ArrayLike | None = None, bins: int = 40
) -> float:
    """TMVA's separation <S²> = ½ Σ (s_i - b_i)² / (s_i + b_i) over score histogram bins.

    s_i, b_i are the signal and background histograms normalised to unit area, with
    ``bins`` equal bins over the full score range: 0 for identical shapes, 1 for disjoint
    ones. As in TMVA, bins with s_i + b_i <= 0 (possible with negative weights) are skipped.
    """
    is_signal, s, w = labelled(y, score, weight)
    edges = np.histogram_bin_edges(s, bins=bins)
    sig, _ = np.histogram(s[is_signal], bins=edges, weights=w[is_signal])
    bkg, _ = np.histogram(s[~is_signal], bins=edges, weights=w[~is_signal])
    sig, bkg = sig / sig.sum(), bkg / bkg.sum()
    total = sig + bkg
    filled = total > 0
    return float(0.5 * np.sum((sig[filled] - bkg[filled]) ** 2 / total[filled]))
