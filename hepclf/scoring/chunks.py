"""Score one chunk of events: selection, features per model, scores, kept branches.

Models that share a feature specification share its computation: scoring a BDT and a DNN
trained on the same pipeline computes the features once per chunk. Only the computed
features are shared; each model adds its own category and fold columns to them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import awkward as ak
import numpy as np

from hepclf.ingest.events.features import branches_of, compute_features, describe_nonfinite
from hepclf.ingest.events.selection import selection_mask
from hepclf.runtime.errors import InputDataError
from hepclf.scoring.outputs import Columns
from hepclf.scoring.scorers import ScoringModel

ENTRY_BRANCH = "entry"
NonFinite = Literal["error", "nan"]


@dataclass(frozen=True)
class ChunkPlan:
    """What to compute per chunk: the models, branches to copy, and an optional selection."""

    models: Sequence[ScoringModel]
    keep_branches: tuple[str, ...] = ()
    selection: str | None = None
    on_nonfinite: NonFinite = "error"

    @property
    def columns(self) -> tuple[str, ...]:
        """Output columns in order: entry number (with a selection), scores, kept branches."""
        entry = (ENTRY_BRANCH,) if self.selection else ()
        return entry + tuple(c for m in self.models for c in m.columns) + self.keep_branches

    @property
    def branches(self) -> set[str]:
        """Every input branch a chunk must hold."""
        needed = {b for m in self.models for b in m.bundle.required_branches}
        return needed | set(self.keep_branches) | branches_of([self.selection])

    def check(self) -> None:
        """Output column names must be unique (a kept branch may not shadow a score)."""
        columns = self.columns
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise InputDataError(
                f"output column(s) {repeated} would be written twice; a --keep-branches entry "
                f"may not be named like a score branch or {ENTRY_BRANCH!r}"
            )


def score_chunk(plan: ChunkPlan, chunk: ak.Array, first_entry: int) -> Columns:
    """The output columns for one chunk (entries ``first_entry`` onwards of the input)."""
    n = len(chunk)
    columns: dict[str, np.ndarray | ak.Array] = {}
    entries = np.arange(first_entry, first_entry + n, dtype=np.int64)
    if plan.selection:
        mask = selection_mask(plan.selection, chunk, n)
        chunk = chunk[mask]
        entries = columns[ENTRY_BRANCH] = entries[mask]
        n = len(chunk)
    computed: dict[str, np.ndarray] = {}  # by feature specification: shared by models
    for model in plan.models:
        key = json.dumps([f.model_dump(mode="json") for f in model.bundle.features])
        if key not in computed:
            computed[key] = compute_features(model.bundle.features, chunk, n)
        X = model.bundle.with_event_columns(computed[key], chunk)  # its own category, fold
        proba = _probabilities(model, X, entries, plan.on_nonfinite)
        columns.update(model.outputs(proba))
    for branch in plan.keep_branches:
        columns[branch] = chunk[branch]
    return columns


def _probabilities(
    model: ScoringModel, X: np.ndarray, entries: np.ndarray, policy: NonFinite
) -> np.ndarray:
    """Probabilities of finite rows; a non-finite feature is an error, or NaN with "nan"."""
    problem = describe_nonfinite(X, model.bundle.columns, entries)
    if problem is None:
        return model.probabilities(X)
    if policy == "error":
        raise InputDataError(
            f"cannot score with {model.bundle.name!r}: {problem}. Give the feature a 'fill' "
            "value for empty collections or guard log/sqrt/divisions in its expression and "
            "retrain, or write NaN scores for these events with --nan-score"
        )
    finite = np.isfinite(X).all(axis=1)
    proba = np.full((len(X), len(model.bundle.classes)), np.nan)
    if finite.any():
        proba[finite] = model.probabilities(X[finite])
    return proba


def empty_columns(plan: ChunkPlan, kept: ak.Array | None) -> Columns:
    """Zero-length columns of the output's types; ``kept``: a zero-length read of the input."""
    columns: dict[str, np.ndarray | ak.Array] = {}
    if plan.selection:
        columns[ENTRY_BRANCH] = np.empty(0, np.int64)
    for model in plan.models:
        columns.update(model.outputs(np.empty((0, len(model.bundle.classes)))))
    if plan.keep_branches:
        assert kept is not None, "a zero-length read of the kept branches is needed"
        columns.update({branch: kept[branch] for branch in plan.keep_branches})
    return columns
