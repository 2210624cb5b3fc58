"""Expected discovery significance and expected CLs upper limit from a workspace (pyhf).

Both are asymptotic (Cowan, Cranmer, Gross, Vitells) on Asimov data with the nuisance
parameters at their nominal values: Z0 = sqrt(q0) on the data expected for mu = 1, and
the 95 % CL upper limit on mu from CLs with the qtilde statistic on the background-only
Asimov data, with its ±1σ and ±2σ band. The NumPy backend (64-bit) is enough for a
one-channel workspace and keeps the result free of autodiff frameworks; it is switched on
only around hepclf's own fits (:func:`numpy_backend`), so a notebook's pyhf setting stays.
The fits there use MINUIT (iminuit): with one staterror parameter per bin a combined
workspace has tens of parameters, and without autodiff scipy's SLSQP spends one NLL
evaluation per parameter on every finite-difference gradient (6x slower at 44 parameters,
18x slower than MINUIT's strategy 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyhf
from scipy.optimize import brentq
from scipy.stats import norm

from hepclf.runtime.errors import InputDataError

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


@contextmanager
def numpy_backend(minuit: bool = True) -> Iterator[None]:
    """pyhf's 64-bit NumPy backend (with MINUIT unless ``minuit`` is false) inside the
    block; the caller's backend and optimizer after.

    pyhf's backend is global: setting it for good would change a notebook user's own fits.
    """
    backend, before = pyhf.get_backend()
    # strategy 0: no numerical second derivatives inside MIGRAD, ~3x fewer NLL calls;
    # the minima agree with strategy 1 to 1e-10 in twice the NLL on these workspaces
    optimizer = (
        pyhf.optimize.minuit_optimizer(strategy=0) if minuit else pyhf.optimize.scipy_optimizer()
    )
    pyhf.set_backend("numpy", optimizer, precision="64b")
    try:
        yield
    finally:
        pyhf.set_backend(backend, before)


def model_of(spec: dict[str, Any]) -> pyhf.pdf.Model:
    """The measurement's model of a workspace specification (build and fit it in
    :func:`numpy_backend`)."""
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


def _band_sqrt_q(n_sigma: float) -> float:
    """sqrt(q_mu,A) at which the expected CLs of the N-sigma band equals 1 - CL.

    In pyhf's asymptotic calculator (qtilde, normal base distribution) the band's CLs is
    Φ(N - a)/Φ(N) with a = sqrt(q_mu,A) (Cowan et al. 2011); CLs = α gives
    a = N - Φ⁻¹(α Φ(N)). N = -2 is the lowest limit of the band.
    """
    return float(n_sigma - norm.ppf((1.0 - CL) * norm.cdf(n_sigma)))


class _AsimovQ:
    """sqrt(q_mu,A) on the background-only Asimov data, one constrained fit per mu.

    On Asimov data the unconditional fit sits exactly at the generating point (mu = 0,
    nuisances nominal: every Poisson and constraint term is maximal there), so its NLL is
    evaluated, not fitted.
    """

    def __init__(self, model: pyhf.pdf.Model) -> None:
        self.model = model
        self.data = asimov_data(model, 0.0)
        nominal = np.asarray(model.config.suggested_init(), dtype=np.float64)
        nominal[model.config.poi_index] = 0.0
        self.minimum = -2.0 * float(model.logpdf(nominal, self.data)[0])
        self.cache: dict[float, float] = {}

    def __call__(self, mu: float) -> float:
        if mu not in self.cache:
            config = self.model.config
            _, twice_nll = pyhf.infer.mle.fixed_poi_fit(
                mu,
                self.data,
                self.model,
                config.suggested_init(),
                config.suggested_bounds(),
                config.suggested_fixed(),
                return_fitted_val=True,
            )
            self.cache[mu] = float(np.sqrt(max(float(twice_nll) - self.minimum, 0.0)))
        return self.cache[mu]


def _solve(sqrt_q: _AsimovQ, target: float, guess: float, upper: float) -> float:
    """mu with sqrt(q_mu,A) = target.

    sqrt(q_mu,A) is nearly proportional to mu, so secant steps from the guess converge in
    two or three fits; Brent's method on a bracket is the fallback.
    """
    x0 = min(guess, upper)
    x1 = min(x0 * target / max(sqrt_q(x0), 1e-12), upper)
    for _ in range(8):
        f0, f1 = sqrt_q(x0) - target, sqrt_q(x1) - target
        if abs(x1 - x0) <= 0.1 * RTOL * abs(x1) or f1 == f0:
            break
        x0, x1 = x1, x1 - f1 * (x1 - x0) / (f1 - f0)
        if not 0.0 < x1 < upper:
            break
    else:
        x1 = -1.0
    if 0.0 < x1 < upper and abs(sqrt_q(x1) - target) <= RTOL * target:
        return float(x1)
    low, high = 0.8 * guess, min(1.25 * guess, upper)
    while sqrt_q(low) > target and low > 1e-9:
        low *= 0.5
    while sqrt_q(high) < target:
        if high >= upper:
            raise InputDataError(
                f"the expected limit on mu lies above the POI range [0, {upper:g}]; the signal "
                "is too small for these templates (check the sample scales and luminosity)"
            )
        high = min(2.0 * high, upper)
    return float(brentq(lambda mu: sqrt_q(mu) - target, low, high, rtol=RTOL, xtol=1e-12))


def expected_limit(model: pyhf.pdf.Model) -> ExpectedLimit:
    """95 % CL CLs upper limit on mu for the background-only Asimov data, with its band.

    Same statistics as ``pyhf.infer.intervals.upper_limits.upper_limit`` with qtilde and
    asymptotics on this data (and checked against ``pyhf cls`` in the tests), at a fifth
    of the fits: on Asimov data every CLs value is a function of sqrt(q_mu,A) alone.
    """
    sqrt_q = _AsimovQ(model)
    upper = float(model.config.suggested_bounds()[model.config.poi_index][1])
    probe = min(1.0, upper)
    sigma = probe / max(sqrt_q(probe), 1e-12)
    values = []
    for n_sigma in (-2, -1, 0, 1, 2):
        target = _band_sqrt_q(n_sigma)
        values.append(_solve(sqrt_q, target, min(target * sigma, upper), upper))
        sigma = values[-1] / target  # sigma(mu) drifts slowly: the next guess starts here
    return ExpectedLimit(values[2], dict(zip(BAND_KEYS, values, strict=True)))


def observed_limit(model: pyhf.pdf.Model, data: np.ndarray, guess: float) -> float:
    """95 % CL CLs upper limit on mu for recorded ``data`` (qtilde, asymptotics).

    Only the observed CLs is solved for (pyhf's ``hypotest`` per mu, Brent's method from a
    bracket around the expected median ``guess``): the expected band is known already.
    """
    upper = float(model.config.suggested_bounds()[model.config.poi_index][1])

    def excess(mu: float) -> float:
        return float(pyhf.infer.hypotest(mu, data, model, test_stat="qtilde")) - (1.0 - CL)

    low, high = 0.5 * guess, min(2.0 * guess, upper)
    while excess(low) < 0 and low > 1e-6 * guess:
        low *= 0.3
    while excess(high) > 0:
        if high >= upper:
            raise InputDataError(
                f"the observed limit on mu lies above the POI range [0, {upper:g}]"
            )
        high = min(3.0 * high, upper)
    return float(brentq(excess, low, high, rtol=RTOL, xtol=1e-9))
