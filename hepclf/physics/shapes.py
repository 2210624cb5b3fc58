"""Shape uncertainties as HistFactory modifiers: ``normsys`` for the normalisation part and
``histosys`` for the shape part, sharing one nuisance parameter (as analyses split them).

Rules (documented in the README):

- The normalisation part is ``hi = U/N`` and ``lo = D/N`` (U, D, N: the up, down and
  nominal yields of the sample in the channel); the shape part is the up and down templates
  scaled to the nominal yield.
- Symmetrisation: a variation given only up gets down = 2 x nominal - up, bin by bin
  (mirrored around the nominal).
- Pruning: the shape part is dropped (the normalisation part kept) when neither the up nor
  the down shape differs from the nominal by more than MC statistics allow: a chi2 of the
  difference of the varied template scaled to the nominal yield against its MC variance
  (:class:`.templates.Variation`), (bins - 1) degrees of freedom, p-value above
  ``prune_pvalue``: a 5 % test, so pure MC noise keeps its shape part 5 % of the time.
  A single-bin channel has no shape part. A normalisation part within 1e-4 of 1 on both
  sides is dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2

from hepclf.config.result import ShapeConfig
from hepclf.physics.templates import Templates, Variation

NORM_TOLERANCE = 1e-4
SMALLEST_RATIO = 1e-3
"""normsys factors must stay positive: a variation that empties a sample is clipped here."""


@dataclass(frozen=True)
class ShapeDecision:
    """What became of one shape uncertainty for one sample in one channel."""

    shape: str
    sample: str
    norm: tuple[float, float] | None  # (lo, hi), None when pruned
    histosys: bool
    pvalue: float  # of the shape part being MC noise (the larger of up and down)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normsys": None if self.norm is None else {"lo": self.norm[0], "hi": self.norm[1]},
            "histosys": self.histosys,
            "noise_pvalue": self.pvalue,
        }


def _ratio(varied: float, nominal: float) -> float:
    return max(varied / nominal, SMALLEST_RATIO) if nominal > 0 else 1.0


def noise_pvalue(varied: np.ndarray, noise: np.ndarray, nominal: np.ndarray) -> float:
    """p-value of the hypothesis that the normalised varied shape is the nominal one plus MC
    noise (1.0 for a single bin or no difference at all)."""
    total, varied_total = nominal.sum(), varied.sum()
    if nominal.size < 2 or not (total > 0 and varied_total > 0):
        return 1.0
    difference = varied * total / varied_total - nominal
    if not np.any(np.abs(difference) > 1e-12 * total):
        return 1.0
    known = noise > 0
    # a difference where MC statistics allow none is a real shape
    if not known.all() and np.any(np.abs(difference[~known]) > 1e-12 * total):
        return 0.0
    statistic = float(np.sum(difference[known] ** 2 / noise[known]))
    return float(chi2.sf(statistic, nominal.size - 1))


def decide(
    shape: str, sample: str, v: Variation, nominal: np.ndarray, config: ShapeConfig
) -> ShapeDecision:
    """Apply the normalisation and pruning rules to one sample's variation."""
    total = float(nominal.sum())
    lo, hi = _ratio(float(v.down.sum()), total), _ratio(float(v.up.sum()), total)
    norm = None if max(abs(lo - 1.0), abs(hi - 1.0)) < NORM_TOLERANCE else (lo, hi)
    pvalue = max(
        noise_pvalue(v.up, v.up_noise, nominal), noise_pvalue(v.down, v.down_noise, nominal)
    )
    shaped = (
        nominal.size > 1 and pvalue < 1.0 and not (config.prune and pvalue > config.prune_pvalue)
    )
    return ShapeDecision(shape, sample, norm, shaped, pvalue)


def shape_modifiers(
    templates: Templates, shapes: dict[str, ShapeConfig]
) -> tuple[dict[str, list[dict[str, Any]]], list[ShapeDecision]]:
    """Per sample name, its normsys/histosys modifiers; and every decision taken."""
    modifiers: dict[str, list[dict[str, Any]]] = {name: [] for name in templates.names}
    decisions = []
    for shape, per_sample in templates.variations.items():
        if shape not in shapes:  # variations the configuration does not ask for
            continue
        for sample, v in per_sample.items():
            nominal = templates.sumw[templates.names.index(sample)]
            decision = decide(shape, sample, v, nominal, shapes[shape])
            decisions.append(decision)
            if decision.norm is not None:
                lo, hi = decision.norm
                modifiers[sample].append(
                    {"name": shape, "type": "normsys", "data": {"hi": hi, "lo": lo}}
                )
            if decision.histosys:
                total = nominal.sum()
                up = v.up * total / v.up.sum()
                down = v.down * total / v.down.sum()
                modifiers[sample].append(
                    {
                        "name": shape,
                        "type": "histosys",
                        "data": {"hi_data": up.tolist(), "lo_data": down.tolist()},
                    }
                )
    return modifiers, decisions
