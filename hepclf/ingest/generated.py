"""The sum of weights of a sample's generated events: what turns σ × L into event weights.

Generators with weighted events (NLO with negative weights, enhanced tails) normalise by Σw
of everything generated, not by the number of events, and skimmed ntuples no longer hold
every generated event, so that sum is kept beside them (NanoAOD's ``Runs`` tree with
``genEventSumw``). ``all_events`` sums the sample's own weight over every entry before
any selection, for files that still hold every generated event.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepclf.config.samples import SampleConfig, StoredSumWeights
from hepclf.ingest.reader import check_branches, iterate_chunks, open_tree
from hepclf.runtime.errors import InputDataError


def stored_sum_weights(sample: SampleConfig, files: list[str]) -> float | None:
    """Σw of the generated events when the pipeline gives it as a number or as a branch
    stored in the files; None for ``all_events`` (summed while the sample is read) or unset."""
    spec = sample.sum_weights
    if spec is None or spec == "all_events":
        return None
    if not isinstance(spec, StoredSumWeights):
        return float(spec)
    total = 0.0
    for path in files:
        where = f"{path} (tree {spec.tree!r}, sample {sample.name!r}, 'sum_weights')"
        tree = open_tree(path, spec.tree)
        check_branches(tree, {spec.branch}, where=where)
        for chunk in iterate_chunks(tree, {spec.branch}, "100 MB", where):
            values = chunk[spec.branch]
            if values.ndim != 1:
                raise InputDataError(
                    f"{where}: {spec.branch!r} holds a list per entry; 'sum_weights' needs one "
                    "number per entry (e.g. genEventSumw, not LHEScaleSumw)"
                )
            total += float(np.sum(ak.to_numpy(values), dtype=np.float64))
    return checked_sum(sample, total)


def checked_sum(sample: SampleConfig, total: float) -> float:
    """``total`` when it can normalise the sample; an error naming the sample otherwise."""
    if not np.isfinite(total) or total <= 0:
        raise InputDataError(
            f"sample {sample.name!r}: the generated sum of weights ('sum_weights') is {total:g}; "
            "it must be positive: check the branch, the files and the weight expression"
        )
    return total
