"""Expected discovery significance and expected CLs upper limit from a workspace (pyhf).

Both are asymptotic (Cowan, Cranmer, Gross, Vitells) on Asimov data with the nuisance
parameters at their nominal values: Z0 = sqrt(q0) on the data expected for mu = 1, and
the 95 % CL upper limit on mu from CLs with the qtilde statistic on the background-only
Asimov data, with its ±1σ and ±2σ band. The NumPy backend is enough for a one-channel
workspace and keeps the result free of autodiff frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyhf
from pyhf.infer.calculators import AsymptoticCalculator
from pyhf.infer.intervals.upper_limits import toms748_scan
from scipy.stats import norm

CL = 0.95
BAND_KEYS = ("-2", "-1", "median", "+1", "+2")
RTOL = 1e-3
"""Relative precision of the limit: far below the asymptotic approximation's own."""


@dataclass(frozen=True)
class ExpectedLimit:
    """The expected upper limit on mu: median and the ±1σ, ±2σ band."""

    median: float
    band: dict[str, float]

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, **{k: self.band[k] for k in ("-2", "-1", "+1", "+2")}}


def model_of(spec: dict[str, Any]) -> pyhf.pdf.Model:
    """The measurement's model of a workspace specification (NumPy backend)."""
    pyhf.set_backend("numpy")
    return pyhf.Workspace(spec).model()


def asimov_data(model: pyhf.pdf.Model, mu: float) -> np.ndarray:
    """Main and auxiliary data expected for signal strength ``mu``, nuisances nominal."""
    pars = np.asarray(model.config.suggested_init(), dtype=np.float64)
    pars[model.config.poi_index] = mu
    return np.asarray(model.expected_data(pars))


def expected_significance(model: pyhf.pdf.Model) -> float:
    """Z0 = sqrt(q0) on the Asimov data for mu = 1 (median discovery significance)."""
    q0 = pyhf.infer.test_statistics.q0(
        0.0,
        asimov_data(model, 1.0),
        model,
        model.config.suggested_init(),
        model.config.suggested_bounds(),
        model.config.suggested_fixed(),
    )
    return float(np.sqrt(max(float(q0), 0.0)))


def _band_guess(model: pyhf.pdf.Model, data: np.ndarray, mu: float) -> np.ndarray:
    """The asymptotic band sigma·(Φ⁻¹(1 − α Φ(N)) + N), with sigma(mu) from one fit pair.

    Only brackets the root finding; the reported limit comes from pyhf's CLs scan.
    """
    calculator = AsymptoticCalculator(data, model, test_stat="qtilde")
    calculator.teststatistic(mu)
    sigma = mu / max(float(calculator.sqrtqmuA_v), 1e-9)
    n = np.arange(-2, 3)
    return sigma * (norm.ppf(1.0 - (1.0 - CL) * norm.cdf(n)) + n)


def expected_limit(model: pyhf.pdf.Model) -> ExpectedLimit:
    """95 % CL CLs upper limit on mu for the background-only Asimov data, with its band."""
    data = asimov_data(model, 0.0)
    upper = model.config.suggested_bounds()[model.config.poi_index][1]
    guess = _band_guess(model, data, min(1.0, upper))
    guess = _band_guess(model, data, min(float(guess[2]), upper))
    low, high = 0.7 * float(guess[0]), min(1.4 * float(guess[-1]), upper)
    _, expected = toms748_scan(
        data, model, low, high, level=1.0 - CL, rtol=RTOL, test_stat="qtilde"
    )
    values = [float(v) for v in expected]
    return ExpectedLimit(values[2], dict(zip(BAND_KEYS, values, strict=True)))
