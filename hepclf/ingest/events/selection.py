"""Event selections: one boolean per event from an expression, for ingest and scoring alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from hepclf.ingest.events.expressions import parse
from hepclf.runtime.errors import InputDataError


def combine(*selections: str | None) -> str | None:
    """The logical AND of the given selections (None ones skipped), or None for no cut."""
    cuts = [parse(s).source for s in selections if s]
    if not cuts:
        return None
    return cuts[0] if len(cuts) == 1 else " && ".join(f"({c})" for c in cuts)


def per_event(
    expression: str, arrays: Mapping[str, Any], n: int, dtype: Any, jagged: str
) -> np.ndarray:
    """One value per event of ``expression`` (a constant is broadcast to ``n``); ``jagged`` is
    the error message for an expression that gives a list per event."""
    parsed = parse(expression)
    values = parsed.evaluate(arrays)
    if isinstance(values, ak.Array):
        if values.ndim > 1:
            raise InputDataError(jagged)
        values = ak.to_numpy(values)
    out = np.asarray(values, dtype=dtype)
    if out.ndim == 0 and not parsed.branches:  # a constant: the same for every event
        return np.broadcast_to(out, (n,))
    if out.ndim != 1 or len(out) != n:
        raise InputDataError(
            f"{expression!r} gives {out.size} value(s) for {n} events, not one per event: "
            "indexing such as 'Jet_pt[0]' picks an event, not an object; write "
            "'Jet_pt[:, 0]' for each event's first object"
        )
    return out


def selection_mask(
    selection: str, arrays: Mapping[str, Any], n: int, what: str = "the selection"
) -> np.ndarray:
    """One boolean per event; a selection giving a list per event is an error naming ``what``."""
    return per_event(
        selection,
        arrays,
        n,
        bool,
        f"{what} {selection!r} gives a list per event, not one decision; reduce it, "
        "e.g. 'any(Jet_pt > 30)' or 'num(Jet_pt) >= 2'",
    )
