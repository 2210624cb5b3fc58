"""The feature table as partitions: one Parquet file per input file (or entry range).

On a cluster, ingest writes one partition per task into a folder every worker reaches, and
the client keeps only what evaluation needs per event (label, weight, sample, event id,
category: about 20 bytes), never the features. A partition is written by
:meth:`FeatureTable.write_parquet` (atomically), so each is itself a readable feature table.
``manifest.json``, written last, lists the partitions in the order the in-process table
holds the same rows (sample by sample, file by file), so a row's global index is the same
in both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hepclf.config import PipelineConfig
from hepclf.ingest.events.categories import assign, require_one_category
from hepclf.ingest.events.features import compute_features, event_ids, nonfinite_counts
from hepclf.ingest.events.selection import selection_mask
from hepclf.ingest.reader import check_branches, iterate_chunks, open_tree
from hepclf.ingest.run import event_weights, sample_needs, sample_weights
from hepclf.ingest.table import FeatureTable
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import atomic_path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PartTask:
    """One ingest task: entries [start, stop) of one file of one sample."""

    config: PipelineConfig
    sample: int
    path: str
    start: int
    stop: int
    first_id: int
    """Event id of entry ``start`` when the pipeline names no ``event_id`` branch (ids count
    on across the sample's files, as in process)."""
    output: str
    sum_weights: float | None = None
    """The sample's generated sum of weights that every weight is divided by (None: none)."""
    sum_all_events: bool = False
    """``sum_weights: all_events``: the task sums the weight of every entry it reads (before
    any selection) and leaves the division to the client, which alone sees the whole sample."""


@dataclass
class PartSummary:
    """What one task read and wrote (``error`` names the file when it failed)."""

    sample: int
    path: str
    entries: int = 0
    selected: int = 0
    rows: int = 0
    sum_weights: float = 0.0
    negative_weights: int = 0
    dropped_nonfinite: int = 0
    output: str | None = None
    error: str | None = None
    generated: list[float] = field(default_factory=list)
    """With ``sum_all_events``: Σ weight of every entry of each chunk read, in order."""


def probe_file(task: tuple[PipelineConfig, int, str]) -> tuple[str, int] | str:
    """(path, entries) of one file after checking its tree and branches, or the error text."""
    config, sample_index, path = task
    sample = config.samples[sample_index]
    needed, _ = sample_needs(config, sample)
    try:
        tree = open_tree(path, sample.tree)
        check_branches(tree, needed, where=_where(path, sample.tree, sample.name))
        return path, int(tree.num_entries)
    except InputDataError as err:
        return str(err)


def _where(path: str, tree: str, sample: str) -> str:
    return f"{path} (tree {tree!r}, sample {sample!r})"


def read_part(task: PartTask) -> PartSummary:
    """Read one task's entries with the in-process ingest's code and write its partition.

    Runs on a worker; the events never leave it. A failure returns the error text naming
    the file (and leaves no file behind: the partition is written atomically).
    """
    config = task.config
    sample = config.samples[task.sample]
    where = _where(task.path, sample.tree, sample.name)
    summary = PartSummary(task.sample, task.path)
    try:
        part = _read(task, where, summary)
    except InputDataError as err:
        summary.error = str(err)
        return summary
    if len(part):
        part.write_parquet(task.output)
        summary.output = task.output
    return summary


def _read(task: PartTask, where: str, summary: PartSummary) -> FeatureTable:
    config = task.config
    sample = config.samples[task.sample]
    needed, selection = sample_needs(config, sample)
    tree = open_tree(task.path, sample.tree)
    check_branches(tree, needed, where=where)
    X, weight, ids, category = [], [], [], []
    read = 0
    for chunk in iterate_chunks(tree, needed, config.step_size, where, task.start, task.stop):
        n = len(chunk)
        in_file = np.arange(task.start + read, task.start + read + n, dtype=np.int64)
        read += n
        if task.sum_all_events:  # every entry, before the selection (as in process)
            try:
                summary.generated.append(float(sample_weights(sample, chunk, n).sum()))
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
        if selection is not None:
            mask = selection_mask(selection, chunk, n)
            chunk, in_file = chunk[mask], in_file[mask]
            n = len(in_file)
        chunk_ids = in_file - task.start + task.first_id  # the in-process entry numbers
        if config.event_id:  # selected events only, checked as in process
            try:
                chunk_ids = event_ids(chunk[config.event_id], config.event_id, in_file)
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
        try:
            X.append(compute_features(config.features, chunk, n))
            weight.append(event_weights(sample, chunk, n) / (task.sum_weights or 1.0))
            if config.categories:
                category.append(assign(config.categories, chunk, n))
        except InputDataError as err:
            raise InputDataError(f"{where}: {err}") from None
        ids.append(np.asarray(chunk_ids, np.int64))
    summary.entries = read
    features = np.concatenate(X) if X else np.empty((0, len(config.feature_columns)), np.float32)
    table = FeatureTable(
        X=features,
        columns=config.feature_columns,
        label=np.full(len(features), config.class_names.index(sample.label), np.int8),
        weight=np.concatenate(weight) if weight else np.empty(0),
        sample=np.full(len(features), task.sample, np.int16),
        sample_names=[s.name for s in config.samples],
        event_id=np.concatenate(ids) if ids else np.empty(0, np.int64),
        category=np.concatenate(category).astype(np.int16) if config.categories else None,
    )
    summary.selected = len(table)
    if table.category is not None and len(table):
        require_one_category(config.categories, table.category, f"sample {sample.name!r}, {where}")
    table = _apply_nan_policy(config, table, where)
    summary.dropped_nonfinite = summary.selected - len(table)
    summary.selected = summary.rows = len(table)
    summary.sum_weights = float(table.weight.sum())
    summary.negative_weights = int((table.weight < 0).sum())
    return table


def _apply_nan_policy(config: PipelineConfig, table: FeatureTable, where: str) -> FeatureTable:
    """The in-process NaN policy, row by row: an error naming the counts, or dropped rows."""
    if np.isfinite(table.X).all():
        return table
    bad = nonfinite_counts(table.X, config.feature_columns)
    if config.nan_policy == "error":
        listing = ", ".join(f"{c}: {n}" for c, n in bad.items())
        raise InputDataError(
            f"{where}: NaN or inf values in features ({listing} events). Fix the expressions "
            "(e.g. guard log/sqrt/divisions), give jagged features a 'pad', or set "
            "'nan_policy: drop' to drop those events."
        )
    return table.subset(np.isfinite(table.X).all(axis=1))


@dataclass
class Partition:
    """One partition file and its place in the table.

    ``divide_by``: the sample's generated sum of weights when the partition holds its
    weights undivided (``sum_weights: all_events``, known only once every task has read);
    the table divides them when it is loaded."""

    path: str
    rows: int
    sample: int
    label: int
    divide_by: float | None = None


@dataclass
class PartitionedTable:
    """The feature table as partitions on a shared folder, and per event on the client only
    what evaluation, splits and physics results need (no features).

    It has the light fields of :class:`FeatureTable` under the same names, so splitting,
    metrics and physics results work on it unchanged; features are read where they are
    needed: by workers, and on the client only a bounded sample (:meth:`features`).
    """

    folder: Path
    partitions: list[Partition]
    columns: list[str]
    label: np.ndarray
    weight: np.ndarray
    sample: np.ndarray
    sample_names: list[str]
    event_id: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    category: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.label)

    @property
    def offsets(self) -> np.ndarray:
        """The first global row of every partition, and the total at the end."""
        return np.concatenate([[0], np.cumsum([p.rows for p in self.partitions])]).astype(np.int64)

    def local_rows(self, rows: np.ndarray) -> list[np.ndarray]:
        """Sorted global ``rows`` cut into each partition's local row numbers (int32)."""
        offsets = self.offsets
        cuts = np.searchsorted(rows, offsets)
        return [
            (rows[cuts[i] : cuts[i + 1]] - offsets[i]).astype(np.int32)
            for i in range(len(self.partitions))
        ]

    def features(self, rows: np.ndarray) -> np.ndarray:
        """Features of sorted global ``rows``, read here: for small samples only (plots)."""
        parts = [
            read_features(p.path, local)
            for p, local in zip(self.partitions, self.local_rows(np.asarray(rows)), strict=True)
            if len(local)
        ]
        return np.concatenate(parts) if parts else np.empty((0, len(self.columns)), np.float32)

    def digest(self) -> str:
        """A content digest: the ingest key (inputs and settings) and the per-event columns."""
        h = hashlib.blake2b(digest_size=4)
        h.update(str(self.info.get("key", "")).encode())
        for array in (self.label, self.weight, self.event_id):
            h.update(np.ascontiguousarray(array).data)
        return h.hexdigest()


def read_features(path: str, rows: np.ndarray | None = None) -> np.ndarray:
    """The (rows, features) float32 array of one partition, or of its ``rows``."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"hepclf"])
    X = np.column_stack([table[c].to_numpy() for c in meta["columns"]]).astype(np.float32)
    return X if rows is None else X[rows]


def write_manifest(folder: Path, partitions: list[Partition], info: dict[str, Any]) -> None:
    """The manifest (written last and atomically: its presence marks a complete table)."""
    with atomic_path(folder / MANIFEST) as temporary:
        Path(temporary).write_text(
            json.dumps({"partitions": [asdict(p) for p in partitions], "info": info}, indent=1)
        )


def load_partitioned(folder: Path, config: PipelineConfig) -> PartitionedTable | None:
    """The table in ``folder`` (None when it is incomplete or unreadable): the per-event
    columns are read from the partitions, the features stay there."""
    table = _load(folder, config)
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps what the columns held
    return table


def _load(folder: Path, config: PipelineConfig) -> PartitionedTable | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        partitions = [
            Partition(
                str(folder / Path(p["path"]).name),
                p["rows"],
                p["sample"],
                p["label"],
                p.get("divide_by"),
            )
            for p in manifest["partitions"]
        ]
        wanted = ["weight", "event_id"] + (["category"] if config.categories else [])
        columns = [pq.read_table(p.path, columns=wanted) for p in partitions]
    except (OSError, ValueError, KeyError):
        return None
    rows = [p.rows for p in partitions]

    def column(name: str, dtype: Any) -> np.ndarray:
        values = [c[name].to_numpy().astype(dtype) for c in columns]
        return np.concatenate(values) if values else np.empty(0, dtype)

    return PartitionedTable(
        folder=folder,
        partitions=partitions,
        columns=config.feature_columns,
        label=np.repeat(np.array([p.label for p in partitions], np.int8), rows),
        weight=column("weight", np.float64)
        / np.repeat(np.array([p.divide_by or 1.0 for p in partitions], np.float64), rows),
        sample=np.repeat(np.array([p.sample for p in partitions], np.int16), rows),
        sample_names=[s.name for s in config.samples],
        event_id=column("event_id", np.int64),
        info=manifest["info"],
        category=column("category", np.int16) if config.categories else None,
    )
