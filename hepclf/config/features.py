"""``features:``: the inputs of the models, each a branch, an expression or leading objects."""

from __future__ import annotations

from pydantic import Field, model_validator

from hepclf.config.base import StrictModel

RESERVED_COLUMNS = ("label", "weight", "sample", "event_id")
"""The table's own columns: no feature may be named like them."""

MAX_LEADING = 1000
"""The most objects ``leading: N`` keeps per feature (N columns each): beyond, the table
and its validation grow without bound for columns that would all be padding."""


class FeatureConfig(StrictModel):
    """One input feature: a branch, an expression, or the leading N objects of a jagged one."""

    name: str
    """the column name (for `leading: N`: `NAME_0` ... `NAME_{N-1}`)"""
    branch: str | None = None
    """a branch taken as it is (a plain string feature means this)"""
    expr: str | None = None
    """an expression giving one number per event, e.g. `sum(Jet_pt)`"""
    leading: int | None = Field(default=None, ge=1, le=MAX_LEADING)
    """keep the first N objects of a jagged branch as N columns (at most 1000)"""
    pad: float = 0.0
    """the value of missing objects (fewer than `leading`)"""
    fill: float | None = None  # max/min/mean of an empty list; None: the pad value
    """what `max`/`min`/`mean` of no objects give in `expr` (default: `pad`)"""
    sort_by: str | None = None
    """an expression per object that orders the objects before `leading` takes the first"""
    descending: bool = True
    """the order of `sort_by`"""

    @model_validator(mode="after")
    def _one_source(self) -> FeatureConfig:
        if (self.branch is None) == (self.expr is None):
            raise ValueError(f"feature {self.name!r} needs exactly one of 'branch' or 'expr'")
        if self.sort_by is not None and self.leading is None:
            raise ValueError(f"feature {self.name!r}: 'sort_by' only applies with 'leading: N'")
        return self

    @property
    def empty_value(self) -> float:
        """What ``max``/``min``/``mean`` of an empty list give in this feature's expression."""
        return self.pad if self.fill is None else self.fill

    @property
    def columns(self) -> list[str]:
        """Names of the table columns this feature produces."""
        if self.leading is None:
            return [self.name]
        return [f"{self.name}_{i}" for i in range(self.leading)]
