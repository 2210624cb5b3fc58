"""Score requests: raw branch values per event, or feature columns, checked value by value.

Every value must be a finite JSON number (or a list of them, for a jagged branch); the
first offending value is named in the 422 answer, e.g. ``events[3].Jet_pt[1]: NaN is not
a finite number``. Booleans are not numbers here, and integers beyond 64 bits are refused
(JSON allows any number of digits; a model reads 32-bit floats).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import awkward as ak
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from hepclf.ingest.events.features import describe_nonfinite
from hepclf.runtime.errors import HepclfError, InputDataError
from hepclf.training.bundle import ModelBundle

_NUMBER_TYPES = {int, float}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_VERSION = 2**31 - 1


class PayloadError(HepclfError):
    """A request body the model cannot score: 422, or 413 when it is too large."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class ScoreRequest(BaseModel):
    """Events to score with a registered model's alias (default champion) or version."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] | None = Field(
        None,
        description="Raw branch values per event: {branch: number or list of numbers}.",
        examples=[[{"lep_pt": 41.2, "met": 30.5, "nJet": 2, "Jet_pt": [80.1, 35.0]}]],
    )
    columns: dict[str, list[Any]] | None = Field(
        None, description="Feature columns the model was trained on: {column: [values]}."
    )
    alias: str | None = Field(
        None, max_length=256, description="Registry alias; default 'champion'."
    )
    version: StrictInt | None = Field(
        None, ge=1, le=MAX_VERSION, description="Registry version (instead of alias)."
    )

    @model_validator(mode="after")
    def _one_input(self) -> ScoreRequest:
        if (self.events is None) == (self.columns is None):
            raise ValueError(
                "give exactly one of 'events' (raw branch values per event) or 'columns' "
                "(feature columns)"
            )
        if self.alias is not None and self.version is not None:
            raise ValueError("give 'alias' or 'version', not both")
        return self

    @property
    def size(self) -> int:
        """Number of events in the request."""
        if self.events is not None:
            return len(self.events)
        assert self.columns is not None
        return max((len(v) for v in self.columns.values()), default=0)


class ScoreResponse(BaseModel):
    """Signal scores in request order, and the model version that produced them.

    A multi-class model answers with ``probabilities`` (one list per class, in the model's
    class order, summing to 1 per event) and ``classes`` instead of ``scores``.
    """

    scores: list[float] | None = None
    model: str
    version: int
    classes: list[str] | None = None
    probabilities: dict[str, list[float]] | None = None


def _json_type(value: Any) -> str:
    names = {
        type(None): "null",
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
    }
    return names.get(type(value), type(value).__name__)


def _why_not_number(value: Any) -> str | None:
    if type(value) not in _NUMBER_TYPES:
        return f"expected a number, got {_json_type(value)}"
    if type(value) is int and abs(value) > _FLOAT32_MAX:
        return f"an integer of about 10**{int(value.bit_length() * 0.30103)} is out of range"
    if not math.isfinite(value):
        return f"{json.dumps(value)} is not a finite number"
    if abs(value) > _FLOAT32_MAX:
        return f"{value!r} is beyond the range of the 32-bit floats a model reads"
    return None


def _numbers(values: Sequence[Any], where: str) -> np.ndarray:
    """``values`` as float64, or a PayloadError naming the first value that is not a number."""
    if {type(v) for v in values} <= _NUMBER_TYPES:
        try:
            array = np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64: named below
            array = np.array([np.nan])
        if np.isfinite(array).all() and (np.abs(array) <= _FLOAT32_MAX).all():
            return array
    for i, value in enumerate(values):
        why = _why_not_number(value)
        if why is not None:
            raise PayloadError(f"{where}[{i}]: {why}")
    raise AssertionError("unreachable: a value failed the vectorised check")


def _branch_values(events: Sequence[Mapping[str, Any]], branch: str, needed: list[str]) -> Any:
    values = []
    for i, event in enumerate(events):
        if branch not in event:
            raise PayloadError(
                f"events[{i}] has no branch {branch!r}; the model needs the branches {needed}"
            )
        values.append(event[branch])
    if type(values[0]) is not list:
        for i, value in enumerate(values):
            why = _why_not_number(value)
            if why is not None:
                raise PayloadError(f"events[{i}].{branch}: {why}")
        return np.asarray(values, dtype=np.float64)
    for i, value in enumerate(values):
        if type(value) is not list:
            raise PayloadError(
                f"events[{i}].{branch}: expected a list of numbers (as in events[0]), got "
                f"{_json_type(value)}"
            )
        if not ({type(v) for v in value} <= _NUMBER_TYPES and _all_in_range(value)):
            for j, item in enumerate(value):
                why = _why_not_number(item)
                if why is not None:
                    raise PayloadError(f"events[{i}].{branch}[{j}]: {why}")
    flat = np.fromiter(chain.from_iterable(values), dtype=np.float64)
    return ak.unflatten(flat, np.fromiter(map(len, values), dtype=np.int64, count=len(values)))


def _all_in_range(values: Sequence[float]) -> bool:
    try:
        return all(math.isfinite(v) and abs(v) <= _FLOAT32_MAX for v in values)
    except OverflowError:  # an integer beyond float64
        return False


def features_from_events(events: Sequence[Mapping[str, Any]], bundle: ModelBundle) -> np.ndarray:
    """The model's feature columns computed from raw branch values, as in batch scoring.

    Empty collections follow the features' fill values, as in batch scoring; a feature
    that is still NaN or infinite (say ``log(0)``) is a 422 naming it and the events.
    """
    if not events:
        return np.empty((0, len(bundle.columns)), dtype=np.float32)
    needed = bundle.required_branches
    arrays = {branch: _branch_values(events, branch, needed) for branch in needed}
    if bundle.event_id:  # exact ids: a fold picked from a rounded id could be the wrong one
        ids = [event[bundle.event_id] for event in events]
        arrays[bundle.event_id] = _event_ids(ids, f"events[].{bundle.event_id}")
    try:
        X = bundle.features_from_branches(arrays, len(events))
    except InputDataError as err:
        raise PayloadError(
            f"the events cannot be turned into the model's features: {err}"
        ) from None
    problem = describe_nonfinite(X, bundle.columns, np.arange(len(X)))
    if problem is not None:
        raise PayloadError(
            f"cannot score these events: {problem.replace('(entries', '(events')}; "
            f"model {bundle.name!r} scores finite features only"
        )
    return X


def features_from_columns(columns: Mapping[str, Sequence[Any]], bundle: ModelBundle) -> np.ndarray:
    """The model's feature columns, in training order, from a column mapping."""
    names = bundle.columns
    missing = [c for c in names if c not in columns]
    if missing:
        raise PayloadError(
            f"missing feature column(s) {missing}; model {bundle.name!r} needs the columns {names}"
        )
    extra = [c for c in (*bundle.routing_columns, *bundle.fold_columns) if c in columns]
    lengths = {c: len(columns[c]) for c in dict.fromkeys([*names, *extra])}
    if len(set(lengths.values())) > 1:
        raise PayloadError(f"columns must have equal lengths (one value per event), got {lengths}")
    X = np.empty((lengths[names[0]], len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        X[:, j] = _numbers(columns[name], f"columns.{name}")
    missing = [c for c in bundle.routing_columns if c not in columns]
    if missing:
        raise PayloadError(
            f"missing column(s) {missing}: model {bundle.name!r} routes events to its "
            "categories with them"
        )
    routing = {c: _numbers(columns[c], f"columns.{c}") for c in bundle.routing_columns}
    X = bundle.routed(X, routing)
    # a k-fold model scores each event with its own fold's model when the id is given
    ids = None
    if bundle.event_id and bundle.event_id in columns:
        ids = _event_ids(columns[bundle.event_id], f"columns.{bundle.event_id}")
    return bundle.with_folds(X, ids)


def _event_ids(values: Sequence[Any], where: str) -> np.ndarray:
    """Event ids as exact int64 (never through float64); a PayloadError names a bad one."""
    for i, value in enumerate(values):
        if type(value) is not int or not -(2**63) <= value < 2**63:
            raise PayloadError(f"{where}[{i}]: event ids must be 64-bit integers, got {value!r}")
    return np.asarray(values, dtype=np.int64)
