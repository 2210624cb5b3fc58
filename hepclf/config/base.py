"""The pydantic base of every pipeline section: strict, frozen, documented by its fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A section of the pipeline YAML: unknown keys are errors, values cannot change."""

    # a field's docstring is its description: the configuration reference is built from them
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class FiniteModel(StrictModel):
    """Numbers of the physics result: NaN and ±inf are refused (they would reach the fit and
    be written to JSON as ``Infinity``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )
