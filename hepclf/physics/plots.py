"""The stacked-template plot: expected background per sample, stacked, with the signal on top.

Bins are drawn with equal width against the bin number (automatic bins are narrow where
the signal is), with the score edges written under the axis; the hatched band is the MC
statistical uncertainty of the total background, and each shape uncertainty is a coloured
band between the total background with that variation down and up. The signal (mu = 1) is
overlaid as a line, scaled up when it would be invisible under the stack; recorded data
(unblinded only) are black points with Poisson errors.
"""

from __future__ import annotations

from pathlib import Path

import mplhep
import numpy as np

from hepclf.evaluation.plots import SIGNAL_COLOR, styled_figure
from hepclf.physics.templates import Templates

BACKGROUND_COLORS = ("#bd1f01", "#ffa90e", "#94a4a2", "#832db6", "#a96b59", "#e76300", "#b9ac70")
SHAPE_COLORS = ("#3f90da", "#92dadd", "#717581", "#1845fb", "#c849a9")


def background_envelopes(templates: Templates) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per shape uncertainty, the total background with every varied sample down and up."""
    out = {}
    total = templates.background_yield
    for shape, per_sample in templates.variations.items():
        up, down = total.copy(), total.copy()
        for name, v in per_sample.items():
            if name in templates.signal:
                continue
            nominal = templates.sumw[templates.names.index(name)]
            up += v.up - nominal
            down += v.down - nominal
        out[shape] = (up, down)
    return out


def signal_scale(templates: Templates) -> float:
    """A round factor (1, 10, 100, ...) making the signal's peak a visible part of the stack."""
    peak_s, peak_b = templates.signal_yield.max(), templates.background_yield.max()
    if not peak_s > 0 or peak_s >= 0.1 * peak_b:
        return 1.0
    return float(10 ** np.floor(np.log10(0.3 * peak_b / peak_s)))


def plot_templates(
    templates: Templates,
    path: Path,
    title: str,
    summary: str = "",
    band_label: str = "MC stat. unc.",
) -> Path:
    """Write the stacked background templates with the signal overlaid as a PNG."""
    n = templates.n_bins
    positions = np.arange(n + 1, dtype=np.float64)
    background = [i for i, s in enumerate(templates.is_signal) if not s]
    order = sorted(background, key=lambda i: templates.sumw[i].sum())
    total = templates.background_yield
    error = np.sqrt(templates.background_sumw2)
    factor = signal_scale(templates)
    with styled_figure(path, (10.0, 8.0)) as fig:
        ax = fig.subplots()
        mplhep.histplot(
            [templates.sumw[i] for i in order],
            positions,
            stack=True,
            histtype="fill",
            label=[templates.names[i] for i in order],
            color=[BACKGROUND_COLORS[k % len(BACKGROUND_COLORS)] for k in range(len(order))],
            ax=ax,
        )
        ax.stairs(
            total + error,
            positions,
            baseline=np.clip(total - error, 0.0, None),
            fill=True,
            hatch="///",
            facecolor="none",
            edgecolor="black",
            linewidth=0,
            label=band_label,
        )
        for k, (shape, (up, down)) in enumerate(background_envelopes(templates).items()):
            ax.stairs(
                np.maximum(up, down),
                positions,
                baseline=np.minimum(up, down),
                fill=True,
                alpha=0.35,
                color=SHAPE_COLORS[k % len(SHAPE_COLORS)],
                label=f"{shape} ±1σ",
            )
        if templates.observed is not None:
            centres = positions[:-1] + 0.5
            ax.errorbar(
                centres,
                templates.observed,
                yerr=np.sqrt(templates.observed),
                fmt="o",
                color="black",
                label="data",
            )
        signal_label = " + ".join(templates.signal) + (f" × {factor:g}" if factor != 1 else "")
        ax.stairs(
            factor * templates.signal_yield,
            positions,
            color=SIGNAL_COLOR,
            linewidth=3,
            label=signal_label,
        )
        ax.set_yscale("log")
        top = max(float(total.max()), float(factor * templates.signal_yield.max()))
        ax.set_ylim(max(1e-3, 0.3 * float(total[total > 0].min())), 50.0 * top)
        ax.set_xlim(0, n)
        step = max(1, n // 10)
        ax.set_xticks(positions[::step], [f"{e:.3g}" for e in templates.edges[::step]])
        ax.set_xlabel(f"{title} score (bin edges, equal-width bins)")
        ax.set_ylabel("Expected events per bin")
        ax.legend(title=summary or None, ncols=2, loc="upper right", fontsize="small")
    return path
