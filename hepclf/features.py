"""Turn branches into the flat float32 feature matrix a classifier sees.

The same code runs at ingest (training) and at scoring time, from the feature
specification a trained model carries, so features are computed identically in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from hepclf.config import FeatureConfig
from hepclf.errors import InputDataError
from hepclf.expressions import parse


def source_of(feature: FeatureConfig) -> str:
    """The expression a feature evaluates (a branch is the trivial expression)."""
    return feature.expr if feature.expr is not None else f"`{feature.branch}`"


def branches_of(expressions: Iterable[str | None]) -> set[str]:
    """Every branch read by the given expressions (None entries are skipped)."""
    return {b for e in expressions if e for b in parse(e).branches}


def feature_branches(features: Sequence[FeatureConfig]) -> set[str]:
    """Branches needed to compute the features."""
    return branches_of([source_of(f) for f in features] + [f.sort_by for f in features])


def _as_flat(feature: FeatureConfig, values: Any, n_events: int) -> np.ndarray:
    """A per-event scalar as a 1-D float array, with a clear error for jagged values."""
    if not isinstance(values, ak.Array):
        array = np.asarray(values, dtype=np.float64)
        return np.broadcast_to(array, (n_events,)) if array.ndim == 0 else array
    if values.ndim > 1:
        raise InputDataError(
            f"feature {feature.name!r} ({source_of(feature)}) holds a variable number of values "
            "per event; give 'leading: N' (with 'pad' and optionally 'sort_by') to keep the "
            "first N objects, or reduce it in an expression such as 'sum(...)' or 'max(...)'"
        )
    return ak.to_numpy(ak.fill_none(values, np.nan))


def _leading(feature: FeatureConfig, values: Any, arrays: Mapping[str, Any]) -> np.ndarray:
    """The first N objects per event (optionally sorted), padded to exactly N columns."""
    n = feature.leading
    assert n is not None
    if not isinstance(values, ak.Array) or values.ndim != 2:
        raise InputDataError(
            f"feature {feature.name!r} has 'leading: {n}' but {source_of(feature)} is not a "
            "list per event (a jagged branch or std::vector); drop 'leading' for a scalar"
        )
    if feature.sort_by is not None:
        key = parse(feature.sort_by).evaluate(arrays)
        try:
            order = ak.argsort(key, axis=1, ascending=not feature.descending, stable=True)
            values = values[order]
        except Exception as err:
            raise InputDataError(
                f"feature {feature.name!r}: sort_by {feature.sort_by!r} does not have the same "
                f"number of objects per event as {source_of(feature)} ({err})"
            ) from None
    return _first_n(values, n, feature.pad)


def _first_n(values: ak.Array, n: int, pad: float) -> np.ndarray:
    """The first ``n`` entries of each list, padded; one NumPy gather on the flat content.

    Equivalent to ``ak.fill_none(ak.pad_none(values, n, clip=True), pad)`` but several
    times faster, which matters because ingest should cost little more than reading.
    """
    counts = ak.to_numpy(ak.num(values, axis=1))
    flat = ak.to_numpy(ak.fill_none(ak.flatten(values, axis=1), np.nan))
    if len(flat) == 0:
        return np.full((len(counts), n), pad, dtype=np.float32)
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    slots = np.arange(n)
    index = np.minimum(starts[:, None] + slots, len(flat) - 1)
    return np.where(slots < counts[:, None], flat[index], np.float32(pad)).astype(np.float32)


def compute_features(
    features: Sequence[FeatureConfig], arrays: Mapping[str, Any], n_events: int
) -> np.ndarray:
    """Evaluate every feature on one chunk of events into an (n_events, n_columns) float32 array."""
    n_columns = sum(len(f.columns) for f in features)
    out = np.empty((n_events, n_columns), dtype=np.float32)
    column = 0
    for feature in features:
        values = parse(source_of(feature)).evaluate(arrays, empty=feature.empty_value)
        if feature.leading is None:
            block = _as_flat(feature, values, n_events)[:, None]
        else:
            block = _leading(feature, values, arrays)
        if block.shape[0] != n_events:
            raise InputDataError(
                f"feature {feature.name!r} ({source_of(feature)}) gives {block.shape[0]} values "
                f"for {n_events} events; every feature must give one value (or N with "
                "'leading') per event"
            )
        out[:, column : column + block.shape[1]] = block
        column += block.shape[1]
    return out


def nonfinite_counts(X: np.ndarray, columns: Sequence[str]) -> dict[str, int]:
    """Number of NaN/inf values per column, only for columns that have any."""
    bad = (~np.isfinite(X)).sum(axis=0)
    return {c: int(n) for c, n in zip(columns, bad, strict=True) if n}

def describe_nonfinite(
    X: np.ndarray, columns: Sequence[str], entries: np.ndarray, shown: int = 5
) -> str | None:
    """None when every value is finite, else which columns are not, for how many events and
    the first entry numbers (``entries``: one per row), for an error message or a log line."""
    finite = np.isfinite(X)
    if finite.all():
        return None
    parts = []
    for j in np.flatnonzero(~finite.all(axis=0)):
        rows = np.flatnonzero(~finite[:, j])
        first = ", ".join(str(int(e)) for e in entries[rows[:shown]])
        more = ", ..." if len(rows) > shown else ""
        parts.append(f"{columns[j]!r} for {len(rows)} events (entries {first}{more})")
    return "NaN or infinite values in feature " + "; ".join(parts)
