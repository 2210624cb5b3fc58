"""Counting-experiment significances for a selection with expected signal s and background b.

Each takes arrays (one entry per cut) and returns NaN where the formula is undefined, so
that ``CutScan.best`` skips those cuts. A deficit (s < 0, possible with negative weights)
is not a discovery and is undefined for the likelihood-based formulas.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

AMS_B_REG = 10.0
"""Regularisation of the background in the Higgs ML challenge AMS."""


def simple_significance(s: ArrayLike, b: ArrayLike) -> np.ndarray:
    """s / sqrt(s + b); undefined where s + b <= 0."""
    s, b = np.asarray(s, dtype=np.float64), np.asarray(b, dtype=np.float64)
    total = s + b
    return np.divide(s, np.sqrt(np.clip(total, 0.0, None)), out=_nan(s), where=total > 0)


def asimov_significance(s: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Z_A = sqrt(2((s + b) ln(1 + s/b) - s)) (Cowan et al.); undefined where b <= 0 or s < 0.

    It grows without bound as b -> 0, so its maximum over cuts can sit at a very tight cut
    with little simulated background; the AMS regularises exactly that.
    """
    s, b = np.asarray(s, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = (b > 0) & (s >= 0)
    ratio = np.divide(s, b, out=np.zeros(s.shape), where=ok)
    q = 2.0 * ((s + b) * np.log1p(ratio) - s)
    # For s << b the bracket is a difference of nearly equal numbers and can round below 0.
    return np.where(ok, np.sqrt(np.clip(q, 0.0, None)), np.nan)


def ams(s: ArrayLike, b: ArrayLike, b_reg: float = AMS_B_REG) -> np.ndarray:
    """Approximate median significance of the Higgs ML challenge: Z_A with b -> b + b_reg."""
    return asimov_significance(s, np.asarray(b, dtype=np.float64) + b_reg)


def _nan(like: np.ndarray) -> np.ndarray:
    return np.full(like.shape, np.nan)
