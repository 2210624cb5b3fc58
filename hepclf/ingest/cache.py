"""Reuse an ingested table when neither the inputs nor the ingest settings changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hepclf import __version__
from hepclf.config import PipelineConfig
from hepclf.ingest.run import sample_files
from hepclf.ingest.table import FeatureTable


def cache_dir() -> Path:
    """``$HEPCLF_CACHE_DIR``, else ``.hepclf-cache`` in the working directory."""
    return Path(os.environ.get("HEPCLF_CACHE_DIR", ".hepclf-cache"))


def cache_key(config: PipelineConfig) -> str:
    """Content key: package version, ingest settings, and each input file's size and mtime."""
    files = []
    for sample in config.samples:
        for path in sample_files(config, sample):
            stat = os.stat(path)
            files.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    payload = json.dumps([__version__, config.ingest_fingerprint(), files], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load_cached(key: str) -> FeatureTable | None:
    """The cached table for ``key``, or None (a damaged cache entry is simply ignored)."""
    path = cache_dir() / f"{key}.parquet"
    if not path.is_file():
        return None
    try:
        return FeatureTable.read_parquet(path)
    except Exception:
        return None


def store(key: str, table: FeatureTable) -> Path:
    """Write the table under its key (atomically, so a crash leaves no half entry)."""
    return table.write_parquet(cache_dir() / f"{key}.parquet")
