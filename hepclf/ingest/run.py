"""Ingest: every sample of a pipeline read in chunks into one feature table.

All trees are opened and checked before anything is read, so a missing branch in the last
file is reported at once. Every chunk's features are then written into preallocated
column buffers (no per-chunk or per-sample concatenation), moved into one column-major
table at the end a column at a time, while the next chunk is read and decompressed in a
background thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.samples import SampleConfig
from hepclf.ingest.events.categories import assign, category_branches, require_one_category
from hepclf.ingest.events.features import (
    branches_of,
    compute_features,
    event_ids,
    feature_branches,
    nonfinite_counts,
)
from hepclf.ingest.events.selection import combine, per_event, selection_mask
from hepclf.ingest.generated import checked_sum, stored_sum_weights
from hepclf.ingest.reader import check_branches, iterate_chunks, open_tree, read_ahead
from hepclf.ingest.table import FeatureTable
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import expand_files
from hepclf.runtime.progress import Advance, Progress, bar


@dataclass
class SampleSummary:
    """What happened to one sample on its way into the table."""

    name: str
    label: str
    files: int
    entries: int
    selected: int
    sum_weights: float
    negative_weights: int
    dropped_nonfinite: int = 0
    generated_sum_weights: float | None = None  # the Σw the weights were divided by


@dataclass
class _SamplePlan:
    """A sample's opened trees and what to read from them."""

    sample: SampleConfig
    files: list[str]
    trees: list[tuple[str, Any]]
    branches: set[str]
    selection: str | None
    generated_sum_weights: float | None = None  # given or stored; None: all_events or unset

    @property
    def entries(self) -> int:
        return sum(int(tree.num_entries) for _, tree in self.trees)

    def where(self, path: str) -> str:
        return f"{path} (tree {self.sample.tree!r}, sample {self.sample.name!r})"


class _Table:
    """One growing table for all samples: feature columns, weights, ids, categories.

    Sized up front for every sample without a selection; a selection's share is estimated
    from the events it kept so far, so a tight cut does not reserve room for every entry
    read, and a loose one grows the table once or twice rather than chunk by chunk. Each
    feature column has a buffer of its own, so growing the table, and moving it into the
    final column-major array, copies one column at a time: the peak is the filled table
    plus one column, not two tables (room never filled is never written, so never held).
    """

    def __init__(self, n_columns: int, capacity: int) -> None:
        self.columns = [np.empty(capacity, dtype=np.float32) for _ in range(n_columns)]
        self.weight = np.empty(capacity, dtype=np.float64)
        self.event_id = np.empty(capacity, dtype=np.int64)
        self.category = np.empty(capacity, dtype=np.int16)
        self.filled = 0

    @property
    def capacity(self) -> int:
        return len(self.weight)

    def rows(self, n: int, expected_more: int = 0) -> slice:
        """The next ``n`` free rows; ``expected_more`` rows are likely to follow."""
        needed = self.filled + n
        if needed > self.capacity:
            self._resize(max(needed + expected_more, self.capacity + self.capacity // 4))
        rows = slice(self.filled, needed)
        self.filled = needed
        return rows

    def put_features(self, rows: slice, values: np.ndarray) -> None:
        """Store one chunk's features, ``values`` being (columns, events)."""
        for column, value in zip(self.columns, values, strict=True):
            column[rows] = value

    def _resize(self, capacity: int) -> None:
        n = self.filled
        for name in ("weight", "event_id", "category"):
            setattr(self, name, _moved(getattr(self, name), n, capacity))
        for j, column in enumerate(self.columns):
            self.columns[j] = _moved(column, n, capacity)  # the old buffer goes here

    def trim(self) -> None:
        """Give back the unused room of weights, ids and categories (a copy only when more
        than a tenth is unused); the feature columns are moved by :meth:`features`."""
        if self.capacity - self.filled > self.capacity // 10:
            for name in ("weight", "event_id", "category"):
                setattr(self, name, _moved(getattr(self, name), self.filled, self.filled))

    def features(self) -> np.ndarray:
        """The filled part as one column-major (events, columns) array; each column buffer
        is released as soon as it is copied, so the buffers end here."""
        n = self.filled
        X = np.empty((len(self.columns), n), dtype=np.float32)
        for j, column in enumerate(self.columns):
            X[j] = column[:n]
            self.columns[j] = np.empty(0, dtype=np.float32)
            del column  # the buffer's last reference
        return X.T


def _moved(array: np.ndarray, filled: int, capacity: int) -> np.ndarray:
    """A new array of ``capacity`` holding the first ``filled`` values of ``array``."""
    new = np.empty(capacity, dtype=array.dtype)
    new[:filled] = array[:filled]
    return new


def sample_files(config: PipelineConfig, sample: SampleConfig) -> list[str]:
    """The files of a sample, globs expanded relative to the pipeline's folder."""

    def no_match(pattern: str) -> InputDataError:
        return InputDataError(
            f"sample {sample.name!r}: no file matches {pattern!r}; check the path (relative "
            "paths are taken from the pipeline file's folder) or create the data first "
            "(the examples in pipelines/ say in their first lines which `hepclf demo-data` "
            "command makes theirs)"
        )

    return expand_files([config.resolve(p) for p in sample.files], no_match)


def sample_weights(sample: SampleConfig, chunk: ak.Array, n: int) -> np.ndarray:
    """The sample's ``weight`` per event, before ``scale`` and ``sum_weights``."""
    if sample.weight is None:
        return np.ones(n, dtype=np.float64)
    jagged = (
        f"sample {sample.name!r}: the weight {sample.weight!r} gives a list per event; "
        "it must be one number per event"
    )
    return per_event(sample.weight, chunk, n, np.float64, jagged)


def event_weights(sample: SampleConfig, chunk: ak.Array, n: int) -> np.ndarray:
    """Each event's weight times the sample's ``scale``, before the division by
    ``sum_weights`` (which needs the whole sample: the caller divides)."""
    return sample_weights(sample, chunk, n) * sample.scale


def sample_needs(config: PipelineConfig, sample: SampleConfig) -> tuple[set[str], str | None]:
    """The branches a sample's trees must have, and its combined selection."""
    selection = combine(config.selection, sample.selection)
    needed = feature_branches(config.features) | branches_of([selection, sample.weight])
    if config.event_id:
        needed.add(config.event_id)
    if config.categories:
        needed |= category_branches(config.categories)
    return needed, selection


def _plan(config: PipelineConfig, sample: SampleConfig) -> _SamplePlan:
    files = sample_files(config, sample)
    needed, selection = sample_needs(config, sample)
    plan = _SamplePlan(sample, files, [], needed, selection)
    for path in files:
        tree = open_tree(path, sample.tree)
        check_branches(tree, needed, where=plan.where(path))
        plan.trees.append((path, tree))
    plan.generated_sum_weights = stored_sum_weights(sample, files)
    return plan


def _read_sample(
    config: PipelineConfig,
    plan: _SamplePlan,
    table: _Table,
    progress: Progress | None,
    reserved_later: int,
) -> SampleSummary:
    """Read one sample into ``table``; ``reserved_later``: rows later samples will surely add."""
    with bar(progress, plan.sample.name, plan.entries) as advance:
        return _fill(config, plan, table, advance, reserved_later)


def _fill(
    config: PipelineConfig, plan: _SamplePlan, table: _Table, advance: Advance, reserved_later: int
) -> SampleSummary:
    sample = plan.sample
    first = table.filled
    entries = 0
    sum_all_events = sample.sum_weights == "all_events"
    generated = 0.0  # Σ weight over every entry read, for sum_weights: all_events
    for path, tree in plan.trees:
        where = plan.where(path)
        in_file = entries  # entry numbers in messages count from this file's start
        for chunk in read_ahead(iterate_chunks(tree, plan.branches, config.step_size, where)):
            n_read = len(chunk)
            numbers = np.arange(entries, entries + n_read, dtype=np.int64)
            entries += n_read
            n = n_read
            try:
                weight = sample_weights(sample, chunk, n_read) if sum_all_events else None
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
            if weight is not None:
                generated += float(weight.sum())
            if plan.selection is not None:
                mask = selection_mask(plan.selection, chunk, n_read)
                chunk, numbers = chunk[mask], numbers[mask]
                weight = None if weight is None else weight[mask]
                n = len(numbers)
            ids = numbers  # without an id branch: the entry number within the sample
            if config.event_id:  # selected events only: a selection may leave out bad ids
                try:
                    ids = event_ids(chunk[config.event_id], config.event_id, numbers - in_file)
                except InputDataError as err:
                    raise InputDataError(f"{where}: {err}") from None
            kept = table.filled - first + n  # this sample's share so far sizes a growth
            expected = (plan.entries - entries) * kept // max(entries, 1) + reserved_later
            rows = table.rows(n, expected)
            try:
                table.put_features(rows, compute_features(config.features, chunk, n).T)
                table.weight[rows] = (
                    sample_weights(sample, chunk, n) if weight is None else weight
                ) * sample.scale
                if config.categories:
                    table.category[rows] = assign(config.categories, chunk, n)
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
            table.event_id[rows] = ids
            advance(n_read)
    if entries and table.filled == first:
        raise InputDataError(
            f"sample {sample.name!r}: the selection {plan.selection!r} leaves no events out of "
            f"{entries}; loosen it or check the branch units"
        )
    weight = table.weight[first : table.filled]
    divisor = checked_sum(sample, generated) if sum_all_events else plan.generated_sum_weights
    if divisor is not None:
        weight /= divisor
    if config.categories:
        category = table.category[first : table.filled]
        require_one_category(config.categories, category, f"sample {sample.name!r}")
    return SampleSummary(
        sample.name,
        sample.label,
        len(plan.files),
        entries,
        table.filled - first,
        float(weight.sum()),
        int((weight < 0).sum()),
        generated_sum_weights=divisor,
    )


def _nonfinite_rows(
    config: PipelineConfig, X: np.ndarray, summaries: Sequence[SampleSummary]
) -> np.ndarray | None:
    """Rows to keep under ``nan_policy: drop`` (None: all finite); an error under ``error``."""
    if all(np.isfinite(column).all() for column in X.T):  # a column at a time: no n x k mask
        return None
    keep = np.ones(len(X), dtype=bool)
    start = 0
    for summary in summaries:
        part = X[start : start + summary.selected]
        bad = nonfinite_counts(part, config.feature_columns)
        if bad and config.nan_policy == "error":
            listing = ", ".join(f"{c}: {n}" for c, n in bad.items())
            raise InputDataError(
                f"sample {summary.name!r}: NaN or inf values in features ({listing} events). "
                "Fix the expressions (e.g. guard log/sqrt/divisions), give jagged features a "
                "'pad', or set 'nan_policy: drop' to drop those events."
            )
        if bad:
            keep[start : start + summary.selected] = np.isfinite(part).all(axis=1)
        start += summary.selected
    return keep


def read_samples(config: PipelineConfig, progress: Progress | None = None) -> FeatureTable:
    """Read every sample, apply selection, features, weights and the NaN policy; ``progress``
    gets a bar of events per sample (see :func:`hepclf.runtime.progress.bar`)."""
    start = time.perf_counter()
    plans = [_plan(config, sample) for sample in config.simulated_samples]
    certain = [plan.entries if plan.selection is None else 0 for plan in plans]
    table = _Table(len(config.feature_columns), sum(certain))
    summaries = [
        _read_sample(config, plan, table, progress, sum(certain[i + 1 :]))
        for i, plan in enumerate(plans)
    ]
    table.trim()
    X = table.features()
    n = table.filled
    weight, event_id = table.weight[:n], table.event_id[:n]
    category = table.category[:n] if config.categories else None
    index = {name: i for i, name in enumerate(config.class_names)}
    label = np.repeat(
        np.array([index[s.label] for s in summaries], np.int8), [s.selected for s in summaries]
    )
    sample = np.repeat(np.arange(len(summaries), dtype=np.int16), [s.selected for s in summaries])
    keep = _nonfinite_rows(config, X, summaries)
    if keep is not None:
        X, weight, event_id = X[keep], weight[keep], event_id[keep]
        label, sample = label[keep], sample[keep]
        category = None if category is None else category[keep]
        for i, summary in enumerate(summaries):
            mine = sample == i
            summary.dropped_nonfinite = summary.selected - int(mine.sum())
            summary.selected = int(mine.sum())
            summary.sum_weights = float(weight[mine].sum())
            summary.negative_weights = int((weight[mine] < 0).sum())
    check_classes(summaries, config.class_names)
    return FeatureTable(
        X=X,
        columns=config.feature_columns,
        label=label,
        weight=weight,
        sample=sample,
        sample_names=[s.name for s in config.simulated_samples],
        event_id=event_id,
        info={
            "samples": [asdict(s) for s in summaries],
            "fingerprint": config.ingest_fingerprint(),
            "seconds": round(time.perf_counter() - start, 3),
        },
        category=category,
    )


def check_classes(summaries: Sequence[SampleSummary], classes: list[str]) -> None:
    """Every class must keep events after selection: name the samples of an empty one."""
    counts: dict[str, int] = dict.fromkeys(classes, 0)
    names: dict[str, list[str]] = {c: [] for c in classes}
    for s in summaries:
        counts[s.label] += s.selected
        names[s.label].append(s.name)
    for label, count in counts.items():
        if count == 0:
            raise InputDataError(
                f"no {label} events after selection (samples {names[label]}); a classifier needs "
                "every class: check the files, trees and the selection"
            )
