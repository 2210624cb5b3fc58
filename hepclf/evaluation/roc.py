"""ROC curve in HEP terms: signal efficiency against background efficiency and rejection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from hepclf.evaluation.cuts import CutScan


@dataclass(frozen=True, eq=False)
class RocCurve:
    """Efficiencies for ``score >= threshold``; point 0 is the empty selection (threshold +inf).

    The arrays equal scikit-learn's ``roc_curve(..., drop_intermediate=False)`` as
    ``(eff_b, eff_s, thresholds) == (fpr, tpr, thresholds)``. The effective numbers of
    events give the statistical precision of the efficiencies.
    """

    eff_s: np.ndarray
    eff_b: np.ndarray
    thresholds: np.ndarray
    signal_neff: float
    background_neff: float

    @classmethod
    def from_scan(cls, scan: CutScan) -> RocCurve:
        """Normalise the cumulative sums of a cut scan by the class totals."""
        return cls(
            eff_s=_after(0.0, scan.signal, scan.signal_total),
            eff_b=_after(0.0, scan.background, scan.background_total),
            thresholds=_after(np.inf, scan.cuts),
            signal_neff=scan.signal_neff,
            background_neff=scan.background_neff,
        )

    @property
    def auc(self) -> float:
        """Area under eff_s(eff_b) by the trapezoid rule, as scikit-learn computes it.

        With negative weights the curve may step back; the signed area is still the weighted
        probability that a signal event scores above a background one (ties count half).
        """
        return float(np.trapezoid(self.eff_s, self.eff_b))

    @property
    def rejection(self) -> np.ndarray:
        """Background rejection 1/eff_b (+inf where no background passes)."""
        return _inverse(self.eff_b)

    def eff_s_at(self, eff_b: ArrayLike) -> np.ndarray:
        """Signal efficiency at the given background efficiencies, linear on the curve.

        Where the curve is vertical (signal-only cuts) the highest eff_s is taken: the best
        signal efficiency reachable without exceeding the background efficiency.
        """
        env_b, env_s = self._envelope()
        return _interpolate(eff_b, env_b, env_s, side="right")

    def eff_b_at(self, eff_s: ArrayLike) -> np.ndarray:
        """Background efficiency at the given signal efficiencies, linear on the curve.

        Where the curve is horizontal (background-only cuts) the lowest eff_b is taken.
        """
        env_b, env_s = self._envelope()
        return _interpolate(eff_s, env_s, env_b, side="left")

    def rejection_at(self, eff_s: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Background rejection 1/eff_b at the given signal efficiencies and its error.

        The error is binomial on eff_b with the background's effective number of events,
        sqrt(eff_b (1 - eff_b) / n_eff), propagated to 1/eff_b (exact for equal weights).
        """
        eps = self.eff_b_at(eff_s)
        sigma = np.sqrt(np.clip(eps * (1.0 - eps), 0.0, None) / self.background_neff)
        rejection = _inverse(eps)
        error = np.divide(sigma, eps**2, out=np.full(eps.shape, np.inf), where=eps > 0)
        return rejection, error

    def _envelope(self) -> tuple[np.ndarray, np.ndarray]:
        # Negative weights can make the cumulative efficiencies step back; the running
        # maximum is the best point reached so far and keeps the interpolation well posed.
        # With non-negative weights it returns the curve unchanged.
        return np.maximum.accumulate(self.eff_b), np.maximum.accumulate(self.eff_s)


def roc_curve(y: ArrayLike, score: ArrayLike, weight: ArrayLike | None = None) -> RocCurve:
    """ROC curve of a classifier; labels 0/1 (1 = signal), higher score = more signal-like."""
    return RocCurve.from_scan(CutScan.from_arrays(y, score, weight))


def roc_auc(y: ArrayLike, score: ArrayLike, weight: ArrayLike | None = None) -> float:
    """Area under the ROC curve; equals ``sklearn.metrics.roc_auc_score`` with weights."""
    return roc_curve(y, score, weight).auc


def _after(first: float, values: np.ndarray, divisor: float = 1.0) -> np.ndarray:
    """``np.append(first, values / divisor)`` written into one new array (no temporary of
    the scan's size)."""
    out = np.empty(values.size + 1)
    out[0] = first
    np.divide(values, divisor, out=out[1:])
    return out


def _inverse(x: np.ndarray) -> np.ndarray:
    return np.divide(1.0, x, out=np.full(x.shape, np.inf), where=x > 0)


def _interpolate(
    x: ArrayLike, xp: np.ndarray, fp: np.ndarray, side: Literal["left", "right"]
) -> np.ndarray:
    """Piecewise-linear f(x) through points with non-decreasing, possibly repeated, xp.

    At a repeated xp value ``side="right"`` takes the last point of the run (and
    ``"left"`` the first), so between runs the segment joining them is used, exactly the
    line drawn through the points. Outside [xp[0], xp[-1]] the end values are returned.
    """
    q = np.asarray(x, dtype=np.float64)
    last = xp.size - 1
    if side == "right":
        lo = np.clip(np.searchsorted(xp, q, side="right") - 1, 0, last)
        hi = np.minimum(lo + 1, last)
    else:
        hi = np.clip(np.searchsorted(xp, q, side="left"), 0, last)
        lo = np.maximum(hi - 1, 0)
    dx = xp[hi] - xp[lo]
    frac = np.divide(q - xp[lo], dx, out=np.zeros(q.shape), where=dx > 0)
    return fp[lo] + np.clip(frac, 0.0, 1.0) * (fp[hi] - fp[lo])
