"""Event selections: one boolean per event from an expression, for ingest and scoring alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from hepclf.errors import InputDataError
from hepclf.expressions import parse


def combine(*selections: str | None) -> str | None:
    """The logical AND of the given selections (None ones skipped), or None for no cut."""
    cuts = [parse(s).source for s in selections if s]
    if not cuts:
        return None
    return cuts[0] if len(cuts) == 1 else " && ".join(f"({c})" for c in cuts)


def selection_mask(selection: str, arrays: Mapping[str, Any], n: int) -> np.ndarray:
    """One boolean per event; a selection giving a list per event is an error."""
    values = parse(selection).evaluate(arrays)
    if isinstance(values, ak.Array) and values.ndim > 1:
        raise InputDataError(
            f"the selection {selection!r} gives a list per event, not one decision; reduce it, "
            "e.g. 'any(Jet_pt > 30)' or 'num(Jet_pt) >= 2'"
        )
    mask = np.asarray(ak.to_numpy(values) if isinstance(values, ak.Array) else values, dtype=bool)
    return np.broadcast_to(mask, (n,)) if mask.ndim == 0 else mask
