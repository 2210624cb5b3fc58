"""ROOT files in, one normalized-ready feature table out.

:mod:`.reader` opens files and trees, :mod:`.events` turns branches into feature columns,
cuts and categories, :mod:`.run` reads the samples into a :class:`FeatureTable`
(:mod:`.table`), cached by content (:mod:`.cache`) or written as partitions for a cluster
(:mod:`.partitions`). :mod:`.inspect` lists what a file offers (for ``hepclf init``) and
:mod:`.demo_data` writes the demo's synthetic files.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig
    from hepclf.ingest.table import FeatureTable
    from hepclf.runtime.progress import Progress

__all__ = ["FeatureTable", "ingest"]


def ingest(
    config: PipelineConfig,
    *,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> FeatureTable:
    """The pipeline's feature table, from the content-keyed cache when inputs are unchanged;
    ``progress`` gets a bar of events per sample read (see :func:`hepclf.runtime.progress.bar`)."""
    # imported here: scoring imports hepclf.ingest.reader and needs no pandas
    from hepclf.ingest import cache
    from hepclf.ingest.run import read_samples

    key = cache.cache_key(config) if use_cache else None
    if key is not None and (table := cache.load_cached(key)) is not None:
        table.info["cached"] = True
        return table
    table = read_samples(config, progress)
    table.info["cached"] = False
    if key is not None:
        cache.store(key, table)
    return table


class _CallableModule(types.ModuleType):
    """``hepclf.ingest(config)`` (the public API) calls :func:`ingest`; the package's
    modules (``hepclf.ingest.run``, ...) stay reachable as attributes."""

    def __call__(self, config: PipelineConfig, **options: Any) -> FeatureTable:
        return ingest(config, **options)


def __getattr__(name: str) -> Any:
    if name == "FeatureTable":
        from hepclf.ingest.table import FeatureTable

        return FeatureTable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _CallableModule
