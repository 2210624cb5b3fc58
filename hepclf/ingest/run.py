"""Ingest: every sample of a pipeline read in chunks into one feature table."""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import awkward as ak
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hepclf.config import PipelineConfig, SampleConfig
from hepclf.errors import InputDataError
from hepclf.expressions import parse
from hepclf.features import branches_of, compute_features, feature_branches, nonfinite_counts
from hepclf.ingest.reader import check_branches, expand_files, iterate_chunks, open_tree
from hepclf.ingest.table import FeatureTable


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


@dataclass
class _SampleArrays:
    X: np.ndarray
    weight: np.ndarray
    event_id: np.ndarray
    summary: SampleSummary


def sample_files(config: PipelineConfig, sample: SampleConfig) -> list[str]:
    """The files of a sample, globs expanded relative to the pipeline's folder."""
    return expand_files([config.resolve(p) for p in sample.files], where=f"sample {sample.name!r}")


def _mask(expression: str | None, chunk: ak.Array, n: int) -> np.ndarray | None:
    if expression is None:
        return None
    values = parse(expression).evaluate(chunk)
    if isinstance(values, ak.Array) and values.ndim > 1:
        raise InputDataError(
            f"the selection {expression!r} gives a list per event, not one decision; reduce it, "
            "e.g. 'any(Jet_pt > 30)' or 'num(Jet_pt) >= 2'"
        )
    mask = np.asarray(ak.to_numpy(values) if isinstance(values, ak.Array) else values, dtype=bool)
    return np.broadcast_to(mask, (n,)) if mask.ndim == 0 else mask


def _weights(sample: SampleConfig, chunk: ak.Array, n: int) -> np.ndarray:
    if sample.weight is None:
        return np.full(n, sample.scale, dtype=np.float64)
    values = parse(sample.weight).evaluate(chunk)
    if isinstance(values, ak.Array):
        if values.ndim > 1:
            raise InputDataError(
                f"sample {sample.name!r}: the weight {sample.weight!r} gives a list per event; "
                "it must be one number per event"
            )
        values = ak.to_numpy(values)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)) * sample.scale


def _read_sample(
    config: PipelineConfig, sample: SampleConfig, progress: Progress | None
) -> _SampleArrays:
    files = sample_files(config, sample)
    cuts = [parse(s).source for s in (config.selection, sample.selection) if s]
    selection = cuts[0] if len(cuts) == 1 else " && ".join(f"({c})" for c in cuts) or None
    needed = feature_branches(config.features) | branches_of([selection, sample.weight])
    if config.event_id:
        needed.add(config.event_id)
    trees = []
    for path in files:
        tree = open_tree(path, sample.tree)
        check_branches(tree, needed, where=f"{path} (tree {sample.tree!r}, sample {sample.name!r})")
        trees.append((path, tree))
    total = sum(int(tree.num_entries) for _, tree in trees)
    task = progress.add_task(sample.name, total=total) if progress else None

    parts_X, parts_w, parts_id = [], [], []
    entries = 0
    for path, tree in trees:
        where = f"{path} (tree {sample.tree!r}, sample {sample.name!r})"
        for chunk in iterate_chunks(tree, needed, config.step_size, where):
            n = len(chunk)
            ids = (
                ak.to_numpy(chunk[config.event_id]).astype(np.int64)
                if config.event_id
                else np.arange(entries, entries + n, dtype=np.int64)
            )
            entries += n
            mask = _mask(selection, chunk, n)
            if mask is not None:
                chunk, ids = chunk[mask], ids[mask]
                n = len(ids)
            try:
                parts_X.append(compute_features(config.features, chunk, n))
                parts_w.append(_weights(sample, chunk, n))
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
            parts_id.append(ids)
            if progress is not None and task is not None:
                progress.advance(task, n if mask is None else len(mask))

    X = (
        np.concatenate(parts_X)
        if parts_X
        else np.empty((0, len(config.feature_columns)), np.float32)
    )
    weight = np.concatenate(parts_w) if parts_w else np.empty(0)
    event_id = np.concatenate(parts_id) if parts_id else np.empty(0, np.int64)
    if entries and not len(X):
        raise InputDataError(
            f"sample {sample.name!r}: the selection {selection!r} leaves no events out of "
            f"{entries}; loosen it or check the branch units"
        )
    summary = SampleSummary(
        sample.name,
        sample.label,
        len(files),
        entries,
        len(X),
        float(weight.sum()),
        int((weight < 0).sum()),
    )
    return _SampleArrays(X, weight, event_id, summary)


def _apply_nan_policy(config: PipelineConfig, part: _SampleArrays) -> _SampleArrays:
    bad = nonfinite_counts(part.X, config.feature_columns)
    if not bad:
        return part
    listing = ", ".join(f"{c}: {n}" for c, n in bad.items())
    if config.nan_policy == "error":
        raise InputDataError(
            f"sample {part.summary.name!r}: NaN or inf values in features ({listing} events). "
            "Fix the expressions (e.g. guard log/sqrt/divisions), give jagged features a 'pad', "
            "or set 'nan_policy: drop' to drop those events."
        )
    keep = np.isfinite(part.X).all(axis=1)
    part.summary.dropped_nonfinite = int((~keep).sum())
    part.summary.selected = int(keep.sum())
    part.summary.sum_weights = float(part.weight[keep].sum())
    part.summary.negative_weights = int((part.weight[keep] < 0).sum())
    return _SampleArrays(part.X[keep], part.weight[keep], part.event_id[keep], part.summary)


def read_samples(config: PipelineConfig, show_progress: bool = True) -> FeatureTable:
    """Read every sample, apply selection, features, weights and the NaN policy."""
    progress = (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeRemainingColumn(),
            transient=True,
        )
        if show_progress
        else None
    )
    start = time.perf_counter()
    parts = []
    with progress or nullcontext():
        for sample in config.samples:
            parts.append(_apply_nan_policy(config, _read_sample(config, sample, progress)))
    _check_classes(parts, config.class_names)
    index = {name: i for i, name in enumerate(config.class_names)}
    table = FeatureTable(
        X=np.concatenate([p.X for p in parts]),
        columns=config.feature_columns,
        label=np.concatenate([np.full(len(p.X), index[p.summary.label], np.int8) for p in parts]),
        weight=np.concatenate([p.weight for p in parts]),
        sample=np.concatenate([np.full(len(p.X), i, np.int16) for i, p in enumerate(parts)]),
        sample_names=[s.name for s in config.samples],
        event_id=np.concatenate([p.event_id for p in parts]),
        info={
            "samples": [asdict(p.summary) for p in parts],
            "fingerprint": config.ingest_fingerprint(),
            "seconds": round(time.perf_counter() - start, 3),
        },
    )
    return table


def _check_classes(parts: Iterable[_SampleArrays], classes: list[str]) -> None:
    counts: dict[str, int] = dict.fromkeys(classes, 0)
    names: dict[str, list[str]] = {c: [] for c in classes}
    for p in parts:
        counts[p.summary.label] += len(p.X)
        names[p.summary.label].append(p.summary.name)
    for label, count in counts.items():
        if count == 0:
            raise InputDataError(
                f"no {label} events after selection (samples {names[label]}); a classifier needs "
                "every class: check the files, trees and the selection"
            )
