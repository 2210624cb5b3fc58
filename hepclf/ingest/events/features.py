"""Turn branches into the flat float32 feature matrix a classifier sees.

The same code runs at ingest (training) and at scoring time, from the feature
specification a trained model carries, so features are computed identically in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from hepclf.config.features import FeatureConfig
from hepclf.ingest.events.expressions import parse
from hepclf.runtime.errors import InputDataError


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


def _leading(
    feature: FeatureConfig, values: Any, arrays: Mapping[str, Any], out: np.ndarray
) -> None:
    """The first N objects per event (optionally sorted), padded, into the N rows of ``out``."""
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
    _check_length(feature, len(values), out.shape[1])
    _first_n(values, n, feature.pad, out)


def _first_n(values: ak.Array, n: int, pad: float, out: np.ndarray) -> None:
    """Write the first ``n`` entries of each list into the rows of ``out`` (n, events), padded.

    Equivalent to ``ak.fill_none(ak.pad_none(values, n, clip=True), pad)`` but several times
    faster, which matters because ingest should cost little more than reading: each slot is
    one gather from the flat content at ``starts + j``, and only events with fewer than
    ``j + 1`` entries are then overwritten with the pad.
    """
    starts, counts, content = _lists(values)
    if len(content) == 0:
        out[:] = pad
        return
    if content.dtype != np.float32:
        content = content.astype(np.float32)
    few = np.flatnonzero(counts < n)  # the only events that need padding
    few_counts = counts[few]
    index = starts.astype(np.int64)  # a copy, advanced in place slot by slot
    for j in range(n):
        np.take(content, index, out=out[j], mode="clip")  # clip: a short last event's slot
        out[j, few[few_counts <= j]] = pad
        index += 1


def _lists(values: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start offset and length of each list, and the flat content (missing values as NaN).

    Reads the offsets of the usual layouts (a branch, a selection of it, a sorted one)
    directly, without copying the content; anything else is flattened once.
    """
    layout = values.layout
    index = None
    while isinstance(layout, ak.contents.IndexedArray):  # a selection's lazy row index
        rows = np.asarray(layout.index.data)
        index = rows if index is None else rows[index]
        layout = layout.content
    if (
        isinstance(layout, ak.contents.ListOffsetArray | ak.contents.ListArray)
        and isinstance(layout.content, ak.contents.NumpyArray)
        and layout.content.data.ndim == 1
        and isinstance(layout.content.data, np.ndarray)
    ):
        starts = np.asarray(layout.starts.data)
        stops = np.asarray(layout.stops.data)
        if index is not None:
            starts, stops = starts[index], stops[index]
        return starts, stops - starts, layout.content.data
    counts = ak.to_numpy(ak.num(values, axis=1)).astype(np.int64)
    flat = ak.to_numpy(ak.fill_none(ak.flatten(values, axis=1), np.nan))
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts, flat


def compute_features(
    features: Sequence[FeatureConfig],
    arrays: Mapping[str, Any],
    n_events: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Evaluate every feature on one chunk of events into an (n_events, n_columns) float32 array.

    ``out``, an (n_columns, n_events) float32 array, receives the values when given: ingest
    passes a slice of its one column-major table, so no chunk is copied twice. The result is
    always ``out.T`` (column-major; NumPy and the models read it like any other array).
    """
    n_columns = sum(len(f.columns) for f in features)
    if out is None:
        out = np.empty((n_columns, n_events), dtype=np.float32)
    column = 0
    for feature in features:
        values = parse(source_of(feature)).evaluate(arrays, empty=feature.empty_value)
        rows = out[column : column + len(feature.columns)]
        if feature.leading is None:
            flat = _as_flat(feature, values, n_events)
            _check_length(feature, len(flat), n_events)
            rows[0] = flat
        else:
            _leading(feature, values, arrays, rows)
        column += len(feature.columns)
    return out.T


def _check_length(feature: FeatureConfig, got: int, n_events: int) -> None:
    if got != n_events:
        raise InputDataError(
            f"feature {feature.name!r} ({source_of(feature)}) gives {got} values for "
            f"{n_events} events; every feature must give one value (or N with 'leading') "
            "per event"
        )


def nonfinite_counts(X: np.ndarray, columns: Sequence[str]) -> dict[str, int]:
    """Number of NaN/inf values per column, only for columns that have any."""
    if np.isfinite(X).all():  # the usual case, without a count per column
        return {}
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


def event_ids(raw: Any, branch: str, entries: np.ndarray, shown: int = 5) -> np.ndarray:
    """Event ids as int64; a NaN, infinite or fractional id is an error naming the branch
    and entries, at ingest and at scoring alike: such an event has no fold, and training
    and scoring would otherwise each put it somewhere else."""
    values = np.asarray(ak.to_numpy(raw) if isinstance(raw, ak.Array) else raw)
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    numbers = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers)) | (np.abs(numbers) >= 2.0**63)
    if bad.any():
        rows = np.flatnonzero(bad)
        first = ", ".join(str(int(e)) for e in entries[rows[:shown]])
        more = ", ..." if len(rows) > shown else ""
        raise InputDataError(
            f"event id branch {branch!r} holds {len(rows)} values that are not integers (NaN, "
            f"infinite or fractional; entries {first}{more}); every event needs an integer id "
            "to have a fold: fix the branch, or leave these events out with a selection"
        )
    return numbers.astype(np.int64)
