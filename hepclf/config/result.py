"""``result:``: the expected (or observed) physics result per model: binning, systematics
and channels (its names are checked against the samples in :mod:`.pipeline`)."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hepclf.config.base import FiniteModel, StrictModel
from hepclf.ingest.events.expressions import parse
from hepclf.runtime.errors import InputDataError


class BinningConfig(FiniteModel):
    """Bins of the discriminant for the physics result: fixed ``edges`` or automatic.

    Automatic binning starts from ``bins`` bins of equal expected signal and merges them,
    from the highest score down, until every bin has at least ``min_background_events``
    background MC events, a relative MC statistical uncertainty of the background of at
    most ``max_background_stat``, an expected background of at least
    ``min_background_yield`` events (where b << 1 the asymptotic formulas are optimistic),
    and no negative sample yield. Fixed edges below ``min_background_yield`` get a warning.
    """

    edges: list[float] | None = Field(default=None, min_length=2)
    """fixed bin edges of the discriminant (default: automatic)"""
    bins: int = Field(default=10, ge=1)
    """automatic: start from this many bins of equal expected signal"""
    min_background_events: int = Field(default=10, ge=1)
    """automatic: merge until every bin has this many background MC events"""
    max_background_stat: float = Field(default=0.2, gt=0.0)
    """automatic: ... and a relative background MC uncertainty of at most this"""
    min_background_yield: float = Field(default=3.0, ge=0.0)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"binning edges must increase strictly, got {value}")
        return value


class VariedFiles(StrictModel):
    """A sample's files produced with a systematic variation (e.g. jet energy scale up)."""

    files: list[str] = Field(min_length=1)
    tree: str | None = None  # default: the nominal sample's tree

    @field_validator("files", mode="before")
    @classmethod
    def _one_file_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class VariedInputs(StrictModel):
    """The up and (optional) down variation of one sample."""

    up: VariedFiles
    down: VariedFiles | None = None


class ShapeConfig(StrictModel):
    """A shape uncertainty: HistFactory ``histosys`` plus its normalisation part ``normsys``.

    Either weight variations, ``up``/``down`` expressions over a sample's branches giving a
    per-event factor on the nominal weight (``samples``: those it applies to, default all),
    or alternative ``inputs`` per sample, scored with the same model. A missing ``down`` is
    the mirror image of ``up`` around the nominal. ``prune``: drop the shape part where it
    is compatible with MC statistical noise (chi2 p-value above ``prune_pvalue``).
    """

    up: str | None = None
    down: str | None = None
    samples: list[str] | None = None
    inputs: dict[str, VariedInputs] | None = None
    prune: bool = True
    prune_pvalue: float = Field(default=0.05, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_source(self) -> ShapeConfig:
        if (self.up is None) == (self.inputs is None):
            raise ValueError("a shape needs exactly one of 'up' (weight factor) or 'inputs'")
        if self.inputs is not None and (self.down is not None or self.samples is not None):
            raise ValueError("with 'inputs', 'down' and 'samples' go inside inputs.<sample>")
        for expression in (self.up, self.down):
            if expression is not None:
                try:
                    parse(expression)
                except InputDataError as err:
                    raise ValueError(str(err)) from None
        return self

    @property
    def sample_names(self) -> list[str] | None:
        """The samples it varies (None: every simulated sample)."""
        return list(self.inputs) if self.inputs is not None else self.samples


class SystematicsConfig(FiniteModel):
    """Uncertainties of the physics result; MC statistics (staterror) are always included.

    ``normsys``: per-sample normalisation uncertainty, relative (0.1 = ±10 %) or
    ``[down, up]``. ``background``: one flat, shape-free relative uncertainty on all
    background samples together (a single correlated normalisation nuisance).
    ``shapes``: named shape uncertainties (:class:`ShapeConfig`), one nuisance each,
    correlated across samples and channels.
    """

    normsys: dict[str, float | tuple[float, float]] = Field(default_factory=dict)
    """sample name -> relative normalisation uncertainty (0.1 or [down, up])"""
    background: float = Field(default=0.0, ge=0.0, lt=1.0)
    """one correlated relative normalisation uncertainty on all backgrounds"""
    shapes: dict[str, ShapeConfig] = Field(default_factory=dict)

    @field_validator("shapes")
    @classmethod
    def _shape_names(cls, value: dict[str, ShapeConfig]) -> dict[str, ShapeConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(
                    f"shape name {name!r} must be letters, digits and _ (it names histograms "
                    "such as ttbar_<name>Up)"
                )
        return value

    @field_validator("normsys")
    @classmethod
    def _fractions(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, size in value.items():
            sizes = size if isinstance(size, tuple) else (size,)
            if not all(0.0 <= s < 1.0 for s in sizes):
                raise ValueError(f"normsys of {name!r} must be a fraction in [0, 1), got {size}")
        return value


class ResultConfig(FiniteModel):
    """Expected physics result per model (pyhf): discovery significance and limit on mu.

    Expected yield of an event = weight × sample ``scale`` ÷ ``sum_weights`` ×
    ``luminosity`` ÷ the fraction of its sample that was evaluated (the test part; 1 with
    out-of-fold scores).
    ``signal`` lists the classes or samples scaled by the signal strength ``mu``
    (default: the pipeline's signal class), all of the signal class(es): those are what
    the discriminant is trained to find. Every other sample is background.

    ``channels``: ``single`` (one channel on the signal score, or Σ P(signal classes)),
    ``nodes`` (multi-class: one channel per output node, each event in the node of its
    highest output, binned in that output; CMS ttH(bb)), ``categories`` (one channel per
    analysis category) or ``[categories, nodes]``. ``unblind``: fit the ``data`` samples
    (observed Z0, limit, post-fit yields) for the champion; else everything is expected.
    ``impacts``: pulls and impacts of the nuisance parameters for the champion. ``toys``:
    that many pseudo-experiments per hypothesis for the champion's Z0 and limit (0: off).
    """

    luminosity: float = Field(default=1.0, gt=0.0)
    """multiplies every event weight (e.g. fb⁻¹ when `scale` is σ × BR in fb)"""
    signal: str | list[str] | None = None
    """classes or samples scaled by the signal strength mu (default: the signal class)"""
    channels: Literal["single", "nodes", "categories"] | list[Literal["categories", "nodes"]] = (
        "single"
    )
    binning: BinningConfig = BinningConfig()
    """the bins of the discriminant"""
    systematics: SystematicsConfig = SystematicsConfig()
    """uncertainties beyond MC statistics"""
    unblind: bool = False
    impacts: bool = False
    toys: int = Field(default=0, ge=0)

    @property
    def signal_names(self) -> list[str] | None:
        return [self.signal] if isinstance(self.signal, str) else self.signal

    @property
    def channel_split(self) -> frozenset[str]:
        """What splits events into channels: {} (one channel), {'nodes'}, {'categories'}."""
        chosen = [self.channels] if isinstance(self.channels, str) else self.channels
        return frozenset(c for c in chosen if c != "single")
