"""Z0 and the expected limit from pseudo-experiments (pyhf's ``ToyCalculator``).

The asymptotic formulas assume many events per bin; where a bin expects b << 1 background
events they overstate the significance and understate the limit by 10-30 %. Toys sample
the test statistic's distributions instead (pyhf throws them and evaluates the test
statistic; the quantiles are taken here with NumPy, as pyhf 0.7's own expected band calls
a NumPy argument that NumPy 2 removed).

Z0: the median q0 of toys thrown with mu = 1, as a p-value among toys with mu = 0 (Z0 above
Φ⁻¹(1 - 1/toys) cannot be resolved and is reported at that bound). Limit: on a grid of mu
spanning the asymptotic band, CLs of the background-only toys' quantiles (the band), each
interpolated to 5 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf
from scipy.stats import norm

from hepclf.physics.inference import (
    BAND_KEYS,
    CL,
    ExpectedLimit,
    asimov_data,
    numpy_backend,
)

GRID_POINTS = 9
BAND_SIGMAS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def _distributions(
    model: pyhf.pdf.Model, mu_data: float, toys: int, stat: str, mu: float, minuit: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Test statistic of toys thrown at ``mu`` and at the background-only point.

    The toys' few-parameter fits use scipy: MINUIT's looser convergence on pyhf's bounded
    toy fits shifts the qtilde distributions (median CLs 8.5 % instead of 6 % at large
    counts, 400 toys; ``benchmarks/physics.py --toys 400``). ``minuit``: fit with MINUIT.
    """
    with numpy_backend(minuit=minuit):
        signal, background = pyhf.infer.calculators.ToyCalculator(
            asimov_data(model, mu_data),
            model,
            test_stat=stat,
            ntoys=toys,
            track_progress=False,
        ).distributions(mu)
    return np.asarray(signal.samples), np.asarray(background.samples)


def toy_significance(model: pyhf.pdf.Model, toys: int) -> float:
    """Median expected Z0 from toys (capped where the toys cannot resolve the tail)."""
    at_zero, at_one = _distributions(model, 1.0, toys, "q0", 0.0)
    median = float(np.median(at_one))
    p0 = float(np.mean(at_zero >= median))
    return float(norm.isf(max(p0, 1.0 / toys)))


def cls_band(model: pyhf.pdf.Model, mu: float, toys: int, minuit: bool = False) -> np.ndarray:
    """Expected CLs at ``mu`` for the background-only quantiles of the band (-2σ .. +2σ)."""
    s, b = _distributions(model, 0.0, toys, "qtilde", mu, minuit)
    # background-only experiments at quantile Φ(-n): more signal-like q is smaller
    values = np.percentile(b, 100.0 * norm.cdf(-np.asarray(BAND_SIGMAS)))
    clsb = np.array([np.mean(s >= v) for v in values])
    clb = np.array([np.mean(b >= v) for v in values])
    return np.divide(clsb, clb, out=np.ones_like(clsb), where=clb > 0)


def toy_limit(model: pyhf.pdf.Model, toys: int, asymptotic: ExpectedLimit) -> ExpectedLimit:
    """The expected limit band from toys on a grid spanning the asymptotic band."""
    grid = np.linspace(0.5 * asymptotic.band["-2"], 2.0 * asymptotic.band["+2"], GRID_POINTS)
    cls = np.array([cls_band(model, float(mu), toys) for mu in grid])  # (grid, band)
    values = []
    for k in range(len(BAND_SIGMAS)):
        curve = np.minimum.accumulate(cls[:, k])  # CLs falls with mu; noise made monotone
        values.append(float(np.interp(-(1.0 - CL), -curve, grid)))
    return ExpectedLimit(values[2], dict(zip(BAND_KEYS, values, strict=True)))


def toy_results(
    model: pyhf.pdf.Model, toys: int, asymptotic: ExpectedLimit, seed: int
) -> dict[str, Any]:
    """Toy Z0 and limit band, seeded (pyhf samples with NumPy's global generator)."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        z0 = toy_significance(model, toys)
        limit = toy_limit(model, toys, asymptotic)
    finally:
        np.random.set_state(state)
    return {
        "toys": toys,
        "z0_expected": z0,
        "z0_resolution_limit": float(norm.isf(1.0 / toys)),
        "mu_up_expected": limit.to_dict(),
    }
