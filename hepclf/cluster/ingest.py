"""Ingest on the workers: one task per file (or entry range of a large file), one partition each.

The client plans (it asks the workers for each file's entry count, checking trees and
branches on the way), submits the reading tasks and gathers only their summaries. The
partitions are written into a private folder renamed to ``<table dir>/<cache key>`` when
every task succeeded: a failed ingest names every file that failed and leaves nothing, and
the same key (unchanged inputs and settings) reuses the table, as the in-process cache does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from hepclf.cluster.executor import DaskExecutor
from hepclf.config import PipelineConfig
from hepclf.ingest.cache import cache_key
from hepclf.ingest.generated import checked_sum, stored_sum_weights
from hepclf.ingest.partitions import (
    Partition,
    PartitionedTable,
    PartSummary,
    PartTask,
    load_partitioned,
    probe_file,
    read_features,
    read_part,
    write_manifest,
)
from hepclf.ingest.run import SampleSummary, check_classes, sample_files
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.progress import Progress, bar

ENTRIES_PER_TASK = 2_000_000
"""A larger file is read by several tasks (entry ranges), so one file never bounds a
worker's memory or the time of the slowest task."""

RETRIES = 2
"""Reading is safe to repeat (partitions are written atomically): a task whose worker died
is run again this many times before the ingest fails."""


def table_folder(table_dir: Path, config: PipelineConfig) -> Path:
    """Where the partitions of this pipeline's current inputs live (by the cache key)."""
    return Path(table_dir).absolute() / cache_key(config)


def ingest_on_cluster(
    config: PipelineConfig,
    executor: DaskExecutor,
    table_dir: Path,
    *,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> PartitionedTable:
    """The pipeline's table as partitions in ``table_dir`` (reused when inputs are unchanged)."""
    folder = table_folder(table_dir, config)
    if use_cache and (table := load_partitioned(folder, config)) is not None:
        table.info["cached"] = True
        return table
    start = time.perf_counter()
    tasks = _tasks(config, executor, folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    tasks = [replace(t, output=str(staging / t.output)) for t in tasks]
    try:
        total = sum(t.stop - t.start for t in tasks)
        with bar(progress, "ingest on the cluster", total) as advance:
            summaries = executor.map(
                read_part,
                tasks,
                label="hepclf-ingest",
                retries=RETRIES,
                on_done=lambda i, s: advance(s.entries),
            )
        _raise_failures([s.error for s in summaries if s.error])
        divisors = {t.sample: t.sum_weights for t in tasks}
        gathered = _gathered_sums(config, summaries)  # sum_weights: all_events
        samples = _sample_summaries(config, summaries, {**divisors, **gathered})
        check_classes(samples, config.class_names)
        partitions = [
            Partition(
                Path(s.output).name,
                s.rows,
                s.sample,
                _label(config, s.sample),
                gathered.get(s.sample),
            )
            for s in summaries
            if s.output is not None
        ]
        info = {
            "samples": [asdict(s) for s in samples],
            "fingerprint": config.ingest_fingerprint(),
            "seconds": round(time.perf_counter() - start, 3),
            "key": folder.name,
            "partitions": len(partitions),
        }
        write_manifest(staging, partitions, info)
        _replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    table = load_partitioned(folder, config)
    if table is None:
        raise InputDataError(f"{folder}: the partitions just written cannot be read back")
    table.info["cached"] = False
    return table


def _label(config: PipelineConfig, sample: int) -> int:
    return config.class_names.index(config.samples[sample].label)


def _tasks(config: PipelineConfig, executor: DaskExecutor, folder: Path) -> list[PartTask]:
    """Entry ranges of every file, in the in-process order (sample by sample, file by file)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    files = [
        (config, i, path)
        for i, sample in enumerate(config.samples)
        for path in sample_files(config, sample)
    ]
    probed = executor.map(probe_file, files, label="hepclf-probe", retries=RETRIES)
    _raise_failures([p for p in probed if isinstance(p, str)])
    divisors = [_sum_weights(config, i) for i in range(len(config.samples))]
    tasks: list[PartTask] = []
    first_id: dict[int, int] = {}
    for (_, sample, path), found in zip(files, probed, strict=True):
        assert not isinstance(found, str)
        entries = found[1]
        for start in range(0, max(entries, 1), ENTRIES_PER_TASK):
            stop = min(start + ENTRIES_PER_TASK, entries)
            name = f"part-{sample:03d}-{len(tasks):06d}.parquet"
            offset = first_id.get(sample, 0)
            tasks.append(
                PartTask(
                    config,
                    sample,
                    path,
                    start,
                    stop,
                    offset + start,
                    name,
                    divisors[sample],
                    config.samples[sample].sum_weights == "all_events",
                )
            )
        first_id[sample] = first_id.get(sample, 0) + entries
    return tasks


def _sum_weights(config: PipelineConfig, sample: int) -> float | None:
    """The sample's generated sum of weights, read on the client (a number or a small stored
    branch), which every task of the sample divides its weights by, as in process; None for
    ``all_events`` (summed by the tasks, divided when the table is loaded) or unset."""
    spec = config.samples[sample]
    return stored_sum_weights(spec, sample_files(config, spec))


def _gathered_sums(config: PipelineConfig, parts: list[PartSummary]) -> dict[int, float]:
    """``sum_weights: all_events``: each such sample's Σ weight over every entry, added up
    from the tasks' chunk sums in the in-process reading order (the same additions)."""
    gathered = {}
    for i, sample in enumerate(config.samples):
        if sample.sum_weights == "all_events":
            total = 0.0
            for part in parts:
                if part.sample == i:
                    for chunk_sum in part.generated:
                        total += chunk_sum
            gathered[i] = checked_sum(sample, total)
    return gathered


def _raise_failures(errors: list[str]) -> None:
    if errors:
        listing = "\n".join(f"  - {e}" for e in errors)
        raise InputDataError(f"{len(errors)} input file(s) failed; nothing was written:\n{listing}")


def _sample_summaries(
    config: PipelineConfig, parts: list[PartSummary], divisors: dict[int, float | None]
) -> list[SampleSummary]:
    """Per-sample figures from the tasks' (as the in-process ingest reports them)."""
    samples = []
    for i, sample in enumerate(config.samples):
        mine = [p for p in parts if p.sample == i]
        all_events = sample.sum_weights == "all_events"  # weights divided when loaded
        summary = SampleSummary(
            sample.name,
            sample.label,
            len({p.path for p in mine}),
            sum(p.entries for p in mine),
            sum(p.selected for p in mine),
            sum(p.sum_weights for p in mine) / (divisors.get(i) if all_events else 1.0),
            sum(p.negative_weights for p in mine),
            sum(p.dropped_nonfinite for p in mine),
            generated_sum_weights=divisors.get(i),
        )
        if summary.entries and summary.selected + summary.dropped_nonfinite == 0:
            from hepclf.ingest.events.selection import combine

            raise InputDataError(
                f"sample {sample.name!r}: the selection "
                f"{combine(config.selection, sample.selection)!r} leaves no events out of "
                f"{summary.entries}; loosen it or check the branch units"
            )
        samples.append(summary)
    return samples


def _replace(staging: Path, folder: Path) -> None:
    """Put the complete table in place; an older table of the same key goes (after)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def default_table_dir(tracking_uri: str | None) -> Path:
    """``hepclf-tables`` beside a local tracking store, else in the ingest cache folder."""
    from hepclf.ingest.cache import cache_dir
    from hepclf.tracking.store import local_store_path, resolve_tracking_uri

    store = local_store_path(resolve_tracking_uri(tracking_uri))
    return (store.parent if store is not None else cache_dir()) / "hepclf-tables"


def _class_sums(task: tuple[str, int]) -> tuple[int, int, np.ndarray, np.ndarray]:
    path, label = task
    X = read_features(path).astype(np.float64)
    return label, len(X), X.sum(axis=0), (X**2).sum(axis=0)


def class_feature_stats(
    table: PartitionedTable, executor: DaskExecutor
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Unweighted mean and standard deviation of every feature per class, from partition
    sums (for the ingest summary)."""
    sums = executor.map(
        _class_sums,
        [(p.path, p.label) for p in table.partitions],
        label="hepclf-feature-stats",
        retries=RETRIES,
    )
    stats = {}
    for label in sorted({s[0] for s in sums}):
        n = sum(s[1] for s in sums if s[0] == label)
        mean = sum(s[2] for s in sums if s[0] == label) / n
        squares = sum(s[3] for s in sums if s[0] == label) / n
        stats[label] = (mean, np.sqrt(np.maximum(squares - mean**2, 0.0)))
    return stats
