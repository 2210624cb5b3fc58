"""Binned expected yields per sample (the HistFactory templates) and their sanity checks.

A template holds, per sample and bin, the expected yield (Σw), its MC variance (Σw²) and
the number of MC events; per shape uncertainty and varied sample, the up and down yields
(:class:`Variation`); and the recorded data, when there is any. The checks turn what would
make the likelihood meaningless (no background in a bin, a negative yield) into an error
naming the bin and the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepclf.physics.yields import EvaluatedEvents, VariedEvents
from hepclf.runtime.errors import InputDataError


@dataclass(frozen=True, eq=False)
class Variation:
    """One sample's yields per bin under one shape uncertainty, up and down, with the MC
    statistical variance per bin of (varied scaled to the nominal yield - nominal): what
    tells a real shape from noise (the pruning rule, :mod:`.shapes`, compares the shapes).
    ``mirrored``: no down variation was given; it is the up one mirrored around nominal."""

    up: np.ndarray
    down: np.ndarray
    up_noise: np.ndarray
    down_noise: np.ndarray
    mirrored: bool = False

    def merged(self, first_bins: np.ndarray) -> Variation:
        def add(a: np.ndarray) -> np.ndarray:
            return np.add.reduceat(a, first_bins)

        return Variation(
            add(self.up), add(self.down), add(self.up_noise), add(self.down_noise), self.mirrored
        )


@dataclass(frozen=True, eq=False)
class Templates:
    """Per-sample histograms of the discriminant: rows follow ``names``, columns the bins."""

    edges: np.ndarray
    names: list[str]
    sumw: np.ndarray
    sumw2: np.ndarray
    entries: np.ndarray
    signal: list[str]
    outside: float = 0.0
    variations: dict[str, dict[str, Variation]] = field(default_factory=dict)
    """Per shape uncertainty, per varied sample."""
    observed: np.ndarray | None = None
    """Recorded data per bin (None: no data sample)."""

    @property
    def n_bins(self) -> int:
        return self.edges.size - 1

    @property
    def is_signal(self) -> np.ndarray:
        return np.array([n in self.signal for n in self.names])

    @property
    def signal_yield(self) -> np.ndarray:
        return self.sumw[self.is_signal].sum(axis=0)

    @property
    def background_yield(self) -> np.ndarray:
        return self.sumw[~self.is_signal].sum(axis=0)

    @property
    def background_sumw2(self) -> np.ndarray:
        return self.sumw2[~self.is_signal].sum(axis=0)

    @property
    def background_entries(self) -> np.ndarray:
        return self.entries[~self.is_signal].sum(axis=0)

    def bin_label(self, i: int) -> str:
        """``bin 3 [0.81, 0.93)``: how errors and tables name a bin (counted from 0)."""
        close = "]" if i == self.n_bins - 1 else ")"
        return f"bin {i} [{self.edges[i]:.4g}, {self.edges[i + 1]:.4g}{close}"

    def merged(self, first_bins: np.ndarray) -> Templates:
        """Templates with the fine bins starting at ``first_bins`` (sorted, from 0) summed."""
        edges = np.append(self.edges[first_bins], self.edges[-1])
        return Templates(
            edges,
            self.names,
            np.add.reduceat(self.sumw, first_bins, axis=1),
            np.add.reduceat(self.sumw2, first_bins, axis=1),
            np.add.reduceat(self.entries, first_bins, axis=1),
            self.signal,
            self.outside,
            {
                shape: {name: v.merged(first_bins) for name, v in per_sample.items()}
                for shape, per_sample in self.variations.items()
            },
            None if self.observed is None else np.add.reduceat(self.observed, first_bins),
        )

    def to_dict(self, observed: bool = False) -> dict[str, object]:
        """JSON-ready yields per sample and bin (for result.json); data only if ``observed``."""
        extra: dict[str, object] = {}
        if self.variations:
            extra["variations"] = {
                shape: {
                    name: {"up": v.up.tolist(), "down": v.down.tolist(), "mirrored": v.mirrored}
                    for name, v in per_sample.items()
                }
                for shape, per_sample in self.variations.items()
            }
        if observed and self.observed is not None:
            extra["observed"] = self.observed.tolist()
        return {
            "edges": self.edges.tolist(),
            "signal": self.signal,
            "samples": {
                name: {
                    "yield": self.sumw[i].tolist(),
                    "sumw2": self.sumw2[i].tolist(),
                    "entries": self.entries[i].astype(int).tolist(),
                }
                for i, name in enumerate(self.names)
            },
            "expected_outside_edges": self.outside,
            **extra,
        }


def bin_index(score: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each score (bins ``[e_i, e_i+1)``, the last one closed); -1 outside."""
    index = np.searchsorted(edges, score, side="right") - 1
    index[score == edges[-1]] = edges.size - 2
    index[(score < edges[0]) | (score > edges[-1])] = -1
    return index


def build_templates(events: EvaluatedEvents, edges: np.ndarray) -> Templates:
    """Σw, Σw² and MC event counts per sample and bin, in one pass over the events; the
    shape variations and the data in the same bins."""
    edges = np.asarray(edges, np.float64)
    n_bins, n_samples = edges.size - 1, len(events.sample_names)
    index = bin_index(events.score, edges)
    inside = index >= 0
    cell = events.sample[inside] * n_bins + index[inside]
    w = events.expected[inside]

    def per_cell(weights: np.ndarray | None) -> np.ndarray:
        counts = np.bincount(cell, weights=weights, minlength=n_samples * n_bins)
        return counts.reshape(n_samples, n_bins).astype(np.float64)

    sumw, sumw2 = per_cell(w), per_cell(w * w)
    totals = sumw.sum(axis=1)

    def noise(factor: np.ndarray, varied: np.ndarray) -> np.ndarray:
        # varied and nominal yields come from the same events: with the varied yield scaled
        # to the nominal one (ratio N/V per sample), the noise is Σ(w (f N/V - 1))²
        ratio = _ratio(totals, varied.sum(axis=1))
        return per_cell((w * (factor * ratio[events.sample[inside]] - 1.0)) ** 2)

    variations: dict[str, dict[str, Variation]] = {}
    for shape, (up, down) in events.factors.items():
        f_up = up[inside]
        f_down = 2.0 - f_up if down is None else down[inside]
        up_yield, down_yield = per_cell(w * f_up), per_cell(w * f_down)
        up_noise, down_noise = noise(f_up, up_yield), noise(f_down, down_yield)
        varied = np.unique(events.sample[inside][(f_up != 1.0) | (f_down != 1.0)])
        variations[shape] = {
            events.sample_names[k]: Variation(
                up_yield[k], down_yield[k], up_noise[k], down_noise[k], mirrored=down is None
            )
            for k in varied
        }
    for shape, per_sample in events.varied.items():
        per_shape = variations.setdefault(shape, {})
        for name, (up, down) in per_sample.items():
            k = events.sample_names.index(name)
            per_shape[name] = _input_variation(up, down, edges, sumw[k], sumw2[k])
    return Templates(
        edges=edges,
        names=list(events.sample_names),
        sumw=sumw,
        sumw2=sumw2,
        entries=per_cell(None),
        signal=list(events.signal),
        outside=float(events.expected[~inside].sum()),
        variations=variations,
    )


def histogram(events: VariedEvents, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σw and Σw² per bin of scored events (same bin rule as the templates)."""
    index = bin_index(events.score, edges)
    inside = index >= 0
    n_bins = edges.size - 1
    w = events.expected[inside]
    sumw = np.bincount(index[inside], weights=w, minlength=n_bins).astype(np.float64)
    sumw2 = np.bincount(index[inside], weights=w * w, minlength=n_bins).astype(np.float64)
    return sumw, sumw2


def _input_variation(
    up: VariedEvents,
    down: VariedEvents | None,
    edges: np.ndarray,
    nominal: np.ndarray,
    nominal_sumw2: np.ndarray,
) -> Variation:
    """Yields of alternative inputs; their noise adds the nominal's and the varied MC's
    variances, the latter scaled as the varied yield is to the nominal one (N/V)²
    (independent samples: the conservative choice for pruning)."""
    total = np.array([nominal.sum()])
    up_yield, up_sumw2 = histogram(up, edges)
    up_noise = _ratio(total, np.array([up_yield.sum()]))[0] ** 2 * up_sumw2 + nominal_sumw2
    if down is None:
        return Variation(up_yield, 2.0 * nominal - up_yield, up_noise, up_noise, mirrored=True)
    down_yield, down_sumw2 = histogram(down, edges)
    down_noise = _ratio(total, np.array([down_yield.sum()]))[0] ** 2 * down_sumw2 + nominal_sumw2
    return Variation(up_yield, down_yield, up_noise, down_noise)


def _ratio(nominal: np.ndarray, varied: np.ndarray) -> np.ndarray:
    """N/V per sample (1 where either is not positive: no shape to compare there)."""
    ok = (nominal > 0) & (varied > 0)
    return np.divide(nominal, varied, out=np.ones_like(nominal, dtype=np.float64), where=ok)


def check_templates(templates: Templates) -> None:
    """Refuse templates a Poisson likelihood cannot describe, naming the bin and sample."""
    for i in range(templates.n_bins):
        negative = [
            (name, templates.sumw[k, i])
            for k, name in enumerate(templates.names)
            if templates.sumw[k, i] < 0
        ]
        if negative:
            listed = ", ".join(f"{n!r} ({v:.4g})" for n, v in negative)
            raise InputDataError(
                f"{templates.bin_label(i)}: negative expected yield of sample(s) {listed} "
                "(negative event weights outweigh the positive ones there); use wider bins "
                "or automatic binning (leave result.binning.edges unset)"
            )
        if not templates.background_yield[i] > 0:
            raise InputDataError(
                f"{templates.bin_label(i)}: the expected background is "
                f"{templates.background_yield[i]:.4g}; a bin needs a positive background. "
                "Merge it with a neighbour in result.binning.edges, or use automatic binning"
            )
    total_signal = templates.signal_yield.sum()
    if not total_signal > 0:
        raise InputDataError(
            f"the signal sample(s) {templates.signal} have an expected yield of "
            f"{total_signal:.4g} inside the bins {templates.edges.tolist()}; check "
            "result.signal, result.binning.edges and the sample weights"
        )
