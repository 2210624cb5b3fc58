"""``samples:``: the processes of an analysis, their files, class labels and weights."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from hepclf.config.base import StrictModel

DATA_LABEL = "data"
"""The label of recorded data: never trained on; the physics result's observation."""

_NOT_IN_BRANCH = re.compile(r"[^A-Za-z0-9_]")


def branch_safe(name: str) -> str:
    """``name`` with every character other than a letter, digit or ``_`` as ``_``: the part
    of an output branch (``score_<model>_<class>``) a label or class name becomes."""
    return _NOT_IN_BRANCH.sub("_", name)


class StoredSumWeights(StrictModel):
    """Where the files keep the sum of weights of all generated events, e.g. NanoAOD's tree
    ``Runs`` with ``genEventSumw``: the branch is summed over every entry of that tree in
    every file of the sample (one entry per file or per job)."""

    tree: str = "Runs"
    """the tree that keeps the sums (one entry per file or job)"""
    branch: str = "genEventSumw"
    """the branch with the generated sum of weights, summed over every entry"""


class SampleConfig(StrictModel):
    """One physics process: its files (globs allowed), tree and class label.

    ``label`` names the sample's class: ``signal``/``background`` for the usual two-class
    problem, or any class name (``ttH``, ``ttbb``, ...) for a multi-class one. ``data``
    marks recorded data: it is not a class, not trained on nor evaluated, only scored and
    binned as the observation of the physics result (``result: {unblind: true}``).

    An event's weight is ``weight × scale / sum_weights``. For expected events,
    ``scale`` is σ × BR × L and ``sum_weights`` the sum of the generator weights of all
    generated events (Σw, not the number of events: with negative or varying weights the
    two differ); with ``result.luminosity`` set, leave L out of ``scale``.
    """

    name: str
    """unique sample name, kept in the table's `sample` column"""
    files: list[str] = Field(min_length=1)
    """files or globs, relative to the pipeline file's folder; globs expand in sorted order"""
    tree: str = "Events"
    """the TTree or RNTuple that holds the events"""
    label: str = Field(min_length=1)
    """`signal`, `background`, or a class name (multi-class)"""
    weight: str | None = None
    """per-event weight: a branch or an expression (default 1)"""
    scale: float = 1.0
    """factor of every event: σ × BR × L (L left out when `result.luminosity` gives it),
    divided by the generated Σw unless `sum_weights` gives that"""
    sum_weights: float | StoredSumWeights | Literal["all_events"] | None = None
    """Σw of all generated events, which the weights are divided by: a number, `{tree,
    branch}` stored in the files (NanoAOD: `{tree: Runs, branch: genEventSumw}`), or
    `all_events`: the weight summed over every entry of the files before any selection"""
    selection: str | None = None
    """a cut for this sample only, ANDed with the top-level `selection`"""

    @field_validator("sum_weights")
    @classmethod
    def _positive_sum(cls, value: Any) -> Any:
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"sum_weights must be positive, got {value}")
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _one_file_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
