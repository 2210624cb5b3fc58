"""``features.png``: signal and background distribution of every input, honestly binned.

What a reader must not be misled by: events outside the drawn range (counted as
under/overflow, not piled into the end bins) and padding values of leading-N objects
(an eta padded with 0 would sit inside the physical range; padded entries are left out of
the histogram and their share is written in the panel). Heights are fractions of the
weighted events of each class, so the shares in the panel add up with the bins to one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import as_weights
from hepclf.evaluation.plots import (
    BACKGROUND_COLOR,
    SIGNAL_COLOR,
    PathLike,
    _as_matrix,
    _check_names,
    styled_figure,
)

GEV_WORDS = frozenset({"pt", "mass", "m", "e", "energy", "et", "ht", "met", "mht", "mt"})
"""Name parts that mean an energy, momentum or mass (in GeV, as NanoAOD and most ntuples)."""
MIN_SHARE = 5e-4
"""Under/overflow and padding shares below this are not written in the panel."""


def feature_unit(name: str) -> str:
    """A guess of a feature's unit from its name: GeV for pt, mass, E, HT, MET and the like
    (``lep_pt``, ``jet_pt_0``, ``m_jj``, ``ht``), else none."""
    parts = {p for p in re.split(r"[^a-z]+", name.lower()) if p}
    return "GeV" if parts & GEV_WORDS else ""


def feature_edges(column: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Equal bins over [lo, hi]; one bin per value for counts such as the number of jets."""
    if hi - lo < bins and np.array_equal(column, np.round(column)):
        return np.arange(np.round(lo) - 0.5, np.round(hi) + 1.0)
    if not hi > lo:
        return np.array([lo - 0.5, hi + 0.5])
    return np.linspace(lo, hi, bins + 1)


def plot_feature_distributions(
    X: ArrayLike,
    feature_names: Sequence[str],
    y: ArrayLike,
    w: ArrayLike | None,
    path: PathLike,
    *,
    bins: int = 40,
    pads: Mapping[str, float] | None = None,
) -> Path:
    """Grid of signal and background input distributions, each as fractions of its class.

    The x range of a feature spans the 0.5 to 99.5 percentiles of its (unpadded) values,
    so a long tail does not squeeze the bulk into one bin; the shares of events below and
    above are written in the panel. ``pads`` maps padded columns (leading-N objects) to
    their padding value: entries equal to it are left out and their share is written too.
    """
    data, is_signal = _as_matrix(X, y)
    names = _check_names(data.shape[1], feature_names)
    weight = as_weights(w, data.shape[0])
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    rc = {"font.size": 14, "legend.fontsize": "medium", "xaxis.labellocation": "center"}
    with styled_figure(path, (4.8 * ncols, 4.2 * nrows + 0.6), rc) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for j, (ax, name) in enumerate(zip(axes, names, strict=False)):
            pad = (pads or {}).get(name)
            _panel(ax, name, data[:, j], is_signal, weight, bins, pad)
        for ax in axes[len(names) :]:
            ax.set_axis_off()
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
    return Path(path)


def _panel(
    ax: Axes,
    name: str,
    column: np.ndarray,
    is_signal: np.ndarray,
    weight: np.ndarray,
    bins: int,
    pad: float | None,
) -> None:
    padded = column == pad if pad is not None else np.zeros(len(column), dtype=bool)
    real = column[~padded]
    lo, hi = np.percentile(real, [0.5, 99.5]) if real.size else (0.0, 1.0)
    edges = feature_edges(real, lo, hi, bins)
    notes = {"under": [], "over": [], "pad": []}
    for label, mask, color in (
        ("Signal", is_signal, SIGNAL_COLOR),
        ("Background", ~is_signal, BACKGROUND_COLOR),
    ):
        x, w, p = column[mask], weight[mask], padded[mask]
        total = w.sum()
        inside = ~p & (x >= edges[0]) & (x <= edges[-1])
        counts, _ = np.histogram(x[inside], edges, weights=w[inside])
        fraction = counts / total if total != 0 else counts
        if label == "Signal":
            ax.stairs(fraction, edges, color=color, fill=True, alpha=0.4, label=label)
        else:
            ax.stairs(fraction, edges, color=color, lw=1.5, label=label)
        short = label[0]
        notes["under"].append((short, _share(w, ~p & (x < edges[0]), total)))
        notes["over"].append((short, _share(w, ~p & (x > edges[-1]), total)))
        notes["pad"].append((short, _share(w, p, total)))
    unit = feature_unit(name)
    ax.set_xlabel(f"{name} [{unit}]" if unit else name)
    ax.set_ylabel("Fraction of events / bin")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    lines = []
    for key, title in (
        ("under", f"< {edges[0]:.3g}"),
        ("over", f"> {edges[-1]:.3g}"),
        ("pad", f"pad {pad:g}" if pad is not None else ""),
    ):
        shares = notes[key]
        if any(s >= MIN_SHARE for _, s in shares):
            lines.append(f"{title}: " + ", ".join(f"{c} {s:.1%}" for c, s in shares))
    if lines:
        ax.text(
            0.97,
            0.97,
            "\n".join(lines),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="x-small",
            bbox={"facecolor": "white", "edgecolor": "grey", "alpha": 0.8},
        )
        ax.set_ylim(top=ax.get_ylim()[1] * (1.1 + 0.12 * len(lines)))


def _share(w: np.ndarray, selected: np.ndarray, total: float) -> float:
    """The weighted fraction of a class's events that ``selected`` holds."""
    return float(w[selected].sum() / total) if total != 0 else 0.0
