"""Bins of the discriminant: fixed edges, or equal expected signal merged until well populated.

Automatic binning starts from ``bins`` bins holding equal expected signal, so the
signal-rich end gets narrow bins where they help the fit. Walking down from the highest
score, fine bins are merged until the merged bin has enough background MC events, a
small enough relative MC uncertainty on the background, an expected background of at
least ``min_background_yield`` events and no negative sample yield. What is left at the
low end joins the bin above it. The rules keep the fit away from bins whose background is
a handful of weighted events, where the expected significance would be an artefact of MC
fluctuations, and from bins expecting b << 1 events, where the asymptotic formulas
overstate the significance by 10-30 % (toys show it, see :mod:`.toys`).
"""

from __future__ import annotations

import numpy as np

from hepclf.config.result import BinningConfig
from hepclf.physics.templates import Templates, build_templates, check_templates
from hepclf.physics.yields import EvaluatedEvents
from hepclf.runtime.errors import InputDataError


def outer_edges(score: np.ndarray) -> tuple[float, float]:
    """The full range: [0, 1] for probabilities, widened to every score otherwise."""
    return min(0.0, float(score.min())), max(1.0, float(score.max()))


def equal_signal_edges(events: EvaluatedEvents, bins: int) -> np.ndarray:
    """Edges with (about) the same expected signal in each of ``bins`` bins."""
    lo, hi = outer_edges(events.score)
    signal = events.is_signal
    order = np.argsort(events.score[signal])
    score = events.score[signal][order]
    # With negative weights the running sum may step back; its running maximum is monotone.
    cumulative = np.maximum.accumulate(np.cumsum(events.expected[signal][order]))
    if not cumulative.size or not cumulative[-1] > 0:
        raise InputDataError(
            f"the signal sample(s) {events.signal} have no positive expected yield; "
            "check result.signal and the sample weights"
        )
    targets = cumulative[-1] * np.arange(1, bins) / bins
    inner = score[np.minimum(np.searchsorted(cumulative, targets), score.size - 1)]
    return np.unique(np.concatenate([[lo], inner[(inner > lo) & (inner < hi)], [hi]]))


def _acceptable(t: Templates, rules: BinningConfig) -> np.ndarray:
    """Per bin: enough background MC, small MC uncertainty, positive yields."""
    return _acceptable_sums(
        t.sumw, t.background_yield, t.background_sumw2, t.background_entries, rules
    )


def _acceptable_sums(
    sumw: np.ndarray,
    background: np.ndarray,
    background_sumw2: np.ndarray,
    background_entries: np.ndarray,
    rules: BinningConfig,
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.sqrt(background_sumw2) / background
    return (
        (background_entries >= rules.min_background_events)
        & (background > 0)
        & (background >= rules.min_background_yield)
        & (relative <= rules.max_background_stat)
        & (sumw >= 0).all(axis=0)
    )


def merge_bins(fine: Templates, rules: BinningConfig) -> Templates:
    """Merge fine bins from the highest score down until each merged bin is acceptable."""
    background = ~fine.is_signal
    first_bins: list[int] = []
    sumw = np.zeros((len(fine.names), 1))
    sumw2 = np.zeros(1)
    entries = np.zeros(1)
    for low in range(fine.n_bins - 1, -1, -1):
        sumw = sumw + fine.sumw[:, low : low + 1]
        sumw2 = sumw2 + fine.sumw2[background, low].sum()
        entries = entries + fine.entries[background, low].sum()
        if _acceptable_sums(sumw, sumw[background].sum(axis=0), sumw2, entries, rules)[0]:
            first_bins.append(low)
            sumw, sumw2, entries = np.zeros_like(sumw), np.zeros(1), np.zeros(1)
    if not first_bins:
        first_bins = [0]
    first_bins[-1] = 0  # the leftover low end joins the lowest merged bin
    return fine.merged(np.array(sorted(first_bins)))


def _shortfall(t: Templates, i: int, rules: BinningConfig) -> str:
    """What a bin lacks, in words, for the error message."""
    background = t.background_yield[i]
    reasons = []
    if t.background_entries[i] < rules.min_background_events:
        reasons.append(
            f"{int(t.background_entries[i])} background MC events "
            f"(min_background_events {rules.min_background_events})"
        )
    if not background > 0 or background < rules.min_background_yield:
        reasons.append(
            f"an expected background of {background:.4g} "
            f"(min_background_yield {rules.min_background_yield:g})"
        )
    if background > 0 and np.sqrt(t.background_sumw2[i]) / background > rules.max_background_stat:
        reasons.append(
            f"a relative background MC uncertainty of "
            f"{np.sqrt(t.background_sumw2[i]) / background:.3g} "
            f"(max_background_stat {rules.max_background_stat})"
        )
    negative = [f"{n!r} ({t.sumw[k, i]:.4g})" for k, n in enumerate(t.names) if t.sumw[k, i] < 0]
    if negative:
        reasons.append(f"a negative expected yield of sample(s) {', '.join(negative)}")
    return "; ".join(reasons)


def low_background_bins(t: Templates, rules: BinningConfig) -> list[str]:
    """Warnings for bins expecting less background than ``min_background_yield`` (fixed
    edges: automatic binning never makes them)."""
    low = np.flatnonzero(t.background_yield < rules.min_background_yield)
    return [
        f"{t.bin_label(int(i))} expects {t.background_yield[i]:.3g} background events, below "
        f"min_background_yield {rules.min_background_yield:g}: the asymptotic Z0 and limit "
        "are optimistic there (merge bins, or check with result.toys)"
        for i in low
    ]


def choose_bins(events: EvaluatedEvents, rules: BinningConfig) -> Templates:
    """Templates in the configured binning, checked (errors name the bin and sample)."""
    if rules.edges is not None:
        templates = build_templates(events, np.asarray(rules.edges, np.float64))
    else:
        fine = build_templates(events, equal_signal_edges(events, rules.bins))
        templates = merge_bins(fine, rules)
        failing = np.flatnonzero(~_acceptable(templates, rules))
        if failing.size:
            i = int(failing[0])
            raise InputDataError(
                f"automatic binning cannot make acceptable bins: {templates.bin_label(i)} "
                f"(all that merging leaves) has {_shortfall(templates, i, rules)}. Lower "
                "result.binning.min_background_events or min_background_yield, raise "
                "max_background_stat, or check the samples' weights and the luminosity"
            )
    check_templates(templates)
    return templates
