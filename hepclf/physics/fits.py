"""The champion's maximum-likelihood fits: best fit with uncertainties, observed
significance, and the ranking of every nuisance parameter by its impact on mu.

The fits are pyhf's (``pyhf.infer.mle.fit``, MINUIT with Hesse uncertainties, inside
:func:`.inference.numpy_backend`), so MINUIT prints only errors. cabinetry's own fit
wrappers set MINUIT's print level to 1: its harmless warnings at a parameter boundary
(``MnPosDef Matrix forced pos-def``, ``VariableMetricBuilder No improvement in line
search``, e.g. mu at 0 on background-only data) then land on stdout, between hepclf's
progress lines. A fit whose minimum is not valid is never hidden: it raises, naming the
fit. cabinetry still gives the pre-fit uncertainties and the post-fit yields
(:mod:`.champion`), from the results of these fits.

The ranking is cabinetry's ``ranking`` method, by hand: every constrained parameter, the
per-bin MC statistical ones (``staterror``) included as in cabinetry's and TRExFitter's
ranking plots, is fixed at its best-fit value ± its pre-fit and ± its post-fit
uncertainty and everything else refitted; the change of mû is its impact. Those fits
need mû alone, so they run MIGRAD (strategy 0, started at the best fit) without Hesse:
3x fewer likelihood calls than a fit with uncertainties, the same minima.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf
from scipy.stats import norm

from hepclf.physics.workspace import POI
from hepclf.runtime.errors import InputDataError

RANKED_KINDS = ("prefit", "postfit")
TOLERANCE = 1e-3
"""MIGRAD's tolerance in the ranking fits (EDM < 2e-6 in -2 ln L): an impact is the
difference of two fits, and at MINUIT's default (0.1) the smallest ones (a few 1e-3 of
mu, typical of MC statistical parameters) would be noise."""


def best_fit(model: pyhf.pdf.Model, data: np.ndarray, what: str) -> Any:
    """The maximum-likelihood fit with Hesse uncertainties, as cabinetry's ``FitResults``
    (``what`` names the fit in the error of an invalid minimum)."""
    from cabinetry.fit import FitResults

    try:
        result, corr, twice_nll, fitted = pyhf.infer.mle.fit(
            data,
            model,
            return_uncertainties=True,
            return_correlations=True,
            return_fitted_val=True,
            return_result_obj=True,
        )
    except pyhf.exceptions.FailedMinimization as err:
        raise InputDataError(
            f"the maximum-likelihood fit {what} failed ({err}); MINUIT found no valid "
            "minimum. Check the templates of result.json (empty or negative bins, a few MC "
            "events with large weights)"
        ) from None
    result = np.asarray(result, dtype=np.float64)
    uncertainty = np.where(fitted.minuit.fixed, 0.0, result[:, 1])
    return FitResults(
        result[:, 0], uncertainty, list(model.config.par_names), np.asarray(corr), float(twice_nll)
    )


def significance(model: pyhf.pdf.Model, data: np.ndarray) -> tuple[float, float]:
    """Observed (Z0, p0): pyhf's asymptotic q0 test of mu = 0 (as cabinetry computes it)."""
    p0 = float(pyhf.infer.hypotest(0.0, data, model, test_stat="q0"))
    return float(norm.isf(p0)), p0


class _Refit:
    """mû with one parameter fixed, everything else refitted (MIGRAD from the best fit)."""

    def __init__(self, model: pyhf.pdf.Model, data: np.ndarray, fitted: Any) -> None:
        self.model, self.data, self.fitted = model, np.asarray(data, np.float64), fitted
        self.poi = fitted.labels.index(POI)
        bounds = model.config.suggested_bounds()
        self.low = np.array([b[0] for b in bounds], dtype=np.float64)
        self.high = np.array([b[1] for b in bounds], dtype=np.float64)
        self.fixed = list(model.config.suggested_fixed())
        self.reference, _ = self._poi(self.fixed, np.asarray(fitted.bestfit, np.float64))

    def _twice_nll(self, pars: np.ndarray) -> float:
        return -2.0 * float(self.model.logpdf(pars, self.data)[0])

    def _poi(self, fixed: list[bool], start: np.ndarray) -> tuple[float, bool]:
        from iminuit import Minuit

        m = Minuit(self._twice_nll, start, name=self.fitted.labels)
        m.errordef = Minuit.LEAST_SQUARES  # twice the NLL: one unit is one sigma
        m.limits = list(zip(self.low, self.high, strict=True))
        m.errors = (self.high - self.low) / 1000.0  # pyhf's first steps
        m.fixed = fixed
        m.strategy = 0
        m.tol = TOLERANCE
        m.print_level = 0
        m.migrad()
        return float(m.values[self.poi]), bool(m.valid)

    def __call__(self, index: int, value: float) -> tuple[float, bool]:
        """(mû - best-fit mu, whether MIGRAD found a valid minimum)."""
        start = np.array(self.fitted.bestfit, dtype=np.float64)
        start[index] = np.clip(value, self.low[index], self.high[index])
        fixed = [f or k == index for k, f in enumerate(self.fixed)]
        mu, valid = self._poi(fixed, start)
        return mu - self.reference, valid


def ranking(
    model: pyhf.pdf.Model, data: np.ndarray, fitted: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Pulls and impacts on mu of the constrained parameters, largest post-fit impact
    first; and the parameters whose refits found no valid minimum (their impacts are
    kept, marked ``valid: false``)."""
    from cabinetry.model_utils import prefit_uncertainties

    prefit = prefit_uncertainties(model)
    nominal = model.config.suggested_init()
    refit = _Refit(model, data, fitted)
    rows, failed = [], []
    for i, label in enumerate(fitted.labels):
        if i == refit.poi or refit.fixed[i] or prefit[i] == 0.0:
            continue  # mu itself, fixed and unconstrained (normfactor) parameters
        sigmas = {"prefit": float(prefit[i]), "postfit": float(fitted.uncertainty[i])}
        shifts, valid = {}, True
        for kind in RANKED_KINDS:
            pair = []
            for sign in (-1.0, 1.0):
                delta, ok = refit(i, fitted.bestfit[i] + sign * sigmas[kind])
                pair.append(delta)
                valid &= ok
            shifts[kind] = pair
        if not valid:
            failed.append(label)
        rows.append(
            {
                "parameter": label,
                "pull": float(fitted.bestfit[i]),
                "constraint": float(fitted.uncertainty[i]),
                "nominal": float(nominal[i]),
                "prefit_uncertainty": sigmas["prefit"],
                **shifts,
                **({} if valid else {"valid": False}),
            }
        )
    return sorted(rows, key=lambda r: -max(abs(v) for v in r["postfit"])), failed
