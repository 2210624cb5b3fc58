"""What an expression may call: the whitelist of NumPy/awkward functions and constants.

Reductions act on the innermost (per-event object) axis, so ``max(jet_pt)`` is the leading
jet's pT of each event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import awkward as ak
import numpy as np


def _reduce(fn: Callable[..., Any], *, undefined_when_empty: bool) -> Callable[..., Any]:
    """Reduce the innermost (per-event object) axis.

    ``max``/``min``/``mean`` of an empty list are undefined: they give ``empty`` (NaN unless
    the feature being computed sets a fill value). ``sum``, ``prod``, ``any``, ``all`` have
    their identity (0, 1, False, True).
    """

    def reduced(x: Any, empty: float = np.nan) -> Any:
        out = fn(x, axis=-1)
        if not isinstance(out, ak.Array):
            return out
        out = ak.fill_none(out, empty)
        if undefined_when_empty and isinstance(x, ak.Array) and x.ndim > 1:
            out = ak.where(ak.num(x, axis=-1) == 0, empty, out)
        return out

    return reduced


def _delta_phi(a: Any, b: Any) -> Any:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sum": _reduce(ak.sum, undefined_when_empty=False),
    "max": _reduce(ak.max, undefined_when_empty=True),
    "min": _reduce(ak.min, undefined_when_empty=True),
    "mean": _reduce(ak.mean, undefined_when_empty=True),
    "prod": _reduce(ak.prod, undefined_when_empty=False),
    "any": _reduce(ak.any, undefined_when_empty=False),
    "all": _reduce(ak.all, undefined_when_empty=False),
    "num": lambda x: ak.num(x, axis=-1),
    "count": lambda x: ak.num(x, axis=-1),
    "abs": np.abs,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "arctan2": np.arctan2,
    "atan2": np.arctan2,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "hypot": np.hypot,
    "where": np.where,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "floor": np.floor,
    "ceil": np.ceil,
    "isnan": np.isnan,
    "clip": np.clip,
    "delta_phi": _delta_phi,
}
CONSTANTS = {"pi": np.pi, "e": np.e, "True": True, "False": False}
EMPTY_REDUCTIONS = frozenset({"max", "min", "mean"})
"""Reductions that are undefined over an empty list and take the fill value there."""
