"""One model's expected physics result: bins → templates → workspace → Z0 and limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hepclf.config import ResultConfig
from hepclf.physics.binning import choose_bins
from hepclf.physics.inference import (
    ExpectedLimit,
    expected_limit,
    expected_significance,
    model_of,
    numpy_backend,
)
from hepclf.physics.templates import Templates
from hepclf.physics.workspace import build_workspace
from hepclf.physics.yields import EvaluatedEvents


@dataclass(frozen=True, eq=False)
class PhysicsResult:
    """Expected discovery significance, expected limit on mu, and what they came from."""

    z0_expected: float
    mu_up_expected: ExpectedLimit
    templates: Templates
    workspace: dict[str, Any]
    seconds: float

    def to_summary(self) -> dict[str, Any]:
        """The keys a model's entry in ``metrics.json`` gets."""
        return {"z0_expected": self.z0_expected, "mu_up_expected": self.mu_up_expected.to_dict()}

    def to_flat_dict(self) -> dict[str, float]:
        """MLflow metrics (``+``/``-`` are not allowed in metric names: plus1, minus2)."""
        band = self.mu_up_expected.band
        return {
            "z0_expected": self.z0_expected,
            "mu_up_expected": self.mu_up_expected.median,
            "mu_up_expected_minus2": band["-2"],
            "mu_up_expected_minus1": band["-1"],
            "mu_up_expected_plus1": band["+1"],
            "mu_up_expected_plus2": band["+2"],
            "result_bins": float(self.templates.n_bins),
        }


def physics_result(events: EvaluatedEvents, config: ResultConfig) -> PhysicsResult:
    """Bin the discriminant, build the workspace and compute Z0 and the expected limit."""
    start = time.perf_counter()
    templates = choose_bins(events, config.binning)
    spec = build_workspace(templates, config.systematics)
    with numpy_backend():
        model = model_of(spec)
        z0 = expected_significance(model)
        limit = expected_limit(model)
    return PhysicsResult(z0, limit, templates, spec, time.perf_counter() - start)
