"""Reuse an ingested table when neither the inputs nor the ingest settings changed.

The cache entry is written in a background thread, so the first run does not wait for it:
training goes on meanwhile (a table of more than ``SNAPSHOT_BYTES`` of features is written
at once instead, to keep the background thread's copy of it out of memory). The thread is
not a daemon (the interpreter joins it before exiting), and a lookup of the same key waits
for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from hepclf.config import PipelineConfig
from hepclf.ingest.run import sample_files
from hepclf.ingest.table import FeatureTable
from hepclf.runtime.version import __version__

_log = logging.getLogger(__name__)
_pending: dict[Path, threading.Thread] = {}
_pending_lock = threading.Lock()
SNAPSHOT_BYTES = 100_000_000
"""Tables with more feature bytes (1.3M events of 19 features) are cached in the foreground,
without a snapshot copy."""


def cache_dir() -> Path:
    """``$HEPCLF_CACHE_DIR``, else ``.hepclf-cache`` in the working directory."""
    return Path(os.environ.get("HEPCLF_CACHE_DIR", ".hepclf-cache"))


def cache_key(config: PipelineConfig) -> str:
    """Content key: package version, ingest settings, and each input file's size and mtime."""
    files = []
    for sample in config.simulated_samples:  # data is not in the table
        for path in sample_files(config, sample):
            stat = os.stat(path)
            files.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    payload = json.dumps([__version__, config.ingest_fingerprint(), files], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return (cache_dir() / f"{key}.parquet").absolute()


def load_cached(key: str) -> FeatureTable | None:
    """The cached table for ``key``, or None (a damaged cache entry is simply ignored)."""
    path = _path(key)
    with _pending_lock:
        writing = _pending.pop(path, None)
    if writing is not None:
        writing.join()
    if not path.is_file():
        return None
    try:
        return FeatureTable.read_parquet(path)
    except Exception:
        return None


def store(key: str, table: FeatureTable, background: bool | None = None) -> Path:
    """Write the table under its key (atomically, so a crash leaves no half entry).

    In the background (the default up to ``SNAPSHOT_BYTES`` of features) the Arrow table
    is built from a copy, so later changes to ``table`` (or to its arrays, in place) do not
    reach the cache. A larger table is written before this returns, straight from its own
    arrays: a second copy of the features would raise the run's peak memory by their size.
    """
    path = _path(key)
    if background is None:
        background = table.X.nbytes <= SNAPSHOT_BYTES
    arrow = table.to_arrow(copy=background)
    if not background:
        return table.write_parquet(path, arrow)

    def write() -> None:
        try:
            table.write_parquet(path, arrow)
        except Exception as err:  # the cache only saves time: warn, do not fail the run
            _log.warning("could not write the ingest cache %s: %s", path, err)

    thread = threading.Thread(target=write, name="hepclf-ingest-cache")
    with _pending_lock:
        _pending[path] = thread
    thread.start()
    return path


def wait() -> None:
    """Wait until every cache entry being written in the background is complete."""
    with _pending_lock:
        threads = list(_pending.values())
        _pending.clear()
    for thread in threads:
        thread.join()
