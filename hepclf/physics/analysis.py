"""One model's expected physics result: channels → bins → templates → workspace → Z0, limit.

Every channel is binned on its own (:mod:`.binning`) and fitted alone, and all channels
are fitted together (the combined result, the one models are compared by). With one
channel the two are the same fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hepclf.config.result import ResultConfig
from hepclf.evaluation.multiclass import metric_key
from hepclf.physics.binning import choose_bins, low_background_bins
from hepclf.physics.channels import SINGLE
from hepclf.physics.inference import (
    ExpectedLimit,
    expected_limit,
    expected_significance,
    model_of,
    numpy_backend,
)
from hepclf.physics.shapes import ShapeDecision
from hepclf.physics.templates import Templates
from hepclf.physics.workspace import build_channels
from hepclf.physics.yields import EvaluatedEvents
from hepclf.runtime.errors import InputDataError


@dataclass(frozen=True, eq=False)
class ChannelResult:
    """One channel fitted alone: its templates, Z0 and limit (None: above the POI range)."""

    templates: Templates
    z0_expected: float
    mu_up_expected: ExpectedLimit | None
    shapes: list[ShapeDecision]

    def to_summary(self) -> dict[str, Any]:
        limit = self.mu_up_expected
        return {
            "z0_expected": self.z0_expected,
            "mu_up_expected": None if limit is None else limit.to_dict(),
            "bins": self.templates.n_bins,
            "signal": float(self.templates.signal_yield.sum()),
            "background": float(self.templates.background_yield.sum()),
            "shapes": {f"{d.shape}/{d.sample}": d.to_dict() for d in self.shapes},
        }


@dataclass(eq=False)
class PhysicsResult:
    """Expected discovery significance, expected limit on mu, and what they came from.

    ``templates`` are the first channel's (the only one by default); ``channels`` hold
    every channel's own result, ``workspace`` all channels together. The champion's result
    gains ``extra`` entries (observed, impacts, toys) from :mod:`.champion`.
    """

    z0_expected: float
    mu_up_expected: ExpectedLimit
    templates: Templates
    workspace: dict[str, Any]
    seconds: float
    channels: dict[str, ChannelResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_summary(self) -> dict[str, Any]:
        """The keys a model's entry in ``metrics.json`` gets."""
        summary: dict[str, Any] = {
            "z0_expected": self.z0_expected,
            "mu_up_expected": self.mu_up_expected.to_dict(),
        }
        if len(self.channels) > 1 or self.skipped:
            summary["channels"] = {n: c.to_summary() for n, c in self.channels.items()}
        if self.skipped:
            summary["channels_skipped"] = self.skipped
        for key in ("observed", "toys"):
            if key in self.extra:
                summary[key] = self.extra[key]
        return summary

    def to_flat_dict(self) -> dict[str, float]:
        """MLflow metrics (``+``/``-`` are not allowed in metric names: plus1, minus2)."""
        band = self.mu_up_expected.band
        flat = {
            "z0_expected": self.z0_expected,
            "mu_up_expected": self.mu_up_expected.median,
            "mu_up_expected_minus2": band["-2"],
            "mu_up_expected_minus1": band["-1"],
            "mu_up_expected_plus1": band["+1"],
            "mu_up_expected_plus2": band["+2"],
            "result_bins": float(self.templates.n_bins),
        }
        if len(self.channels) > 1:
            for name, channel in self.channels.items():
                flat[f"z0_expected_{metric_key(name)}"] = channel.z0_expected
                if channel.mu_up_expected is not None:
                    flat[f"mu_up_expected_{metric_key(name)}"] = channel.mu_up_expected.median
        observed = self.extra.get("observed")
        if observed:
            flat["z0_observed"] = observed["z0"]
            flat["mu_up_observed"] = observed["mu_up"]
        toys = self.extra.get("toys")
        if toys:
            flat["z0_expected_toys"] = toys["z0_expected"]
            flat["mu_up_expected_toys"] = toys["mu_up_expected"]["median"]
        return flat


def _fit(spec: dict[str, Any], need_limit: bool) -> tuple[float, ExpectedLimit | None]:
    model = model_of(spec)
    z0 = expected_significance(model)
    try:
        return z0, expected_limit(model)
    except InputDataError:
        if need_limit:
            raise
        return z0, None  # a channel too weak alone for a limit in the POI range


def physics_result(
    events: EvaluatedEvents | Mapping[str, EvaluatedEvents],
    config: ResultConfig,
    skipped: Mapping[str, str] | None = None,
) -> PhysicsResult:
    """Bin each channel, build the workspaces and compute Z0 and the expected limits."""
    start = time.perf_counter()
    channels = {SINGLE: events} if isinstance(events, EvaluatedEvents) else dict(events)
    templates = {name: choose_bins(e, config.binning) for name, e in channels.items()}
    warnings = [
        f"channel {name}: {problem}"
        for name, t in templates.items()
        for problem in low_background_bins(t, config.binning)
    ]
    spec, decisions = build_channels(templates, config.systematics)
    results: dict[str, ChannelResult] = {}
    with numpy_backend():
        z0, limit = _fit(spec, need_limit=True)
        for name, t in templates.items():
            if len(templates) == 1:
                results[name] = ChannelResult(t, z0, limit, decisions[name])
                continue
            alone, _ = build_channels({name: t}, config.systematics)
            results[name] = ChannelResult(t, *_fit(alone, need_limit=False), decisions[name])
    assert limit is not None
    first = next(iter(templates.values()))
    return PhysicsResult(
        z0,
        limit,
        first,
        spec,
        time.perf_counter() - start,
        channels=results,
        skipped=dict(skipped or {}),
        warnings=warnings,
    )
