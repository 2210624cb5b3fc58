"""The HistFactory workspace (pyhf JSON) of one discriminant: one channel, one sample each.

Signal samples carry the normalisation factor ``mu`` (the POI); every sample carries the
shared ``staterror`` (Barlow–Beeston lite: one nuisance per bin for the total MC
uncertainty); configured ``normsys`` uncertainties add one nuisance per sample, and the flat
background uncertainty one nuisance shared by all backgrounds. The observation is the
Asimov background-only data (the sum of the background templates), so the workspace
describes the *expected* result and ``pyhf cls`` on it gives the expected CLs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf

from hepclf.config import SystematicsConfig
from hepclf.physics.templates import Templates

CHANNEL = "discriminant"
POI = "mu"
MEASUREMENT = "expected"
STAT_ERROR = f"staterror_{CHANNEL}"
BACKGROUND_NORM = "background_norm"
SCHEMA_VERSION = "1.0.0"


def _normsys(name: str, size: float | tuple[float, float]) -> dict[str, Any]:
    down, up = size if isinstance(size, tuple) else (size, size)
    return {"name": name, "type": "normsys", "data": {"hi": 1.0 + up, "lo": 1.0 - down}}


def poi_upper_bound(templates: Templates, systematics: SystematicsConfig) -> float:
    """A POI range that surely holds the limit: 50× a rough σ(mu), at least 10.

    σ(mu) ≈ 1/sqrt(Σ s²/V) with V the background variance per bin from data statistics,
    MC statistics and the normalisation uncertainties added linearly; the limit is about
    twice σ. The range only bounds the fits, so generous costs nothing.
    """
    s, b = templates.signal_yield, templates.background_yield
    fraction = systematics.background + sum(
        max(size) if isinstance(size, tuple) else size for size in systematics.normsys.values()
    )
    variance = b + templates.background_sumw2 + (fraction * b) ** 2
    information = float(np.sum(s * s / variance))
    sigma = 1.0 / np.sqrt(information) if information > 0 else np.inf
    return float(min(max(10.0, 50.0 * sigma), 1e6))


def build_workspace(templates: Templates, systematics: SystematicsConfig) -> dict[str, Any]:
    """The pyhf workspace specification (validated against pyhf's schema)."""
    samples = []
    for i, name in enumerate(templates.names):
        modifiers: list[dict[str, Any]] = []
        signal = name in templates.signal
        if signal:
            modifiers.append({"name": POI, "type": "normfactor", "data": None})
        modifiers.append(
            {"name": STAT_ERROR, "type": "staterror", "data": np.sqrt(templates.sumw2[i]).tolist()}
        )
        if not signal and systematics.background > 0:
            modifiers.append(_normsys(BACKGROUND_NORM, systematics.background))
        if name in systematics.normsys:
            modifiers.append(_normsys(f"norm_{name}", systematics.normsys[name]))
        samples.append({"name": name, "data": templates.sumw[i].tolist(), "modifiers": modifiers})
    bounds = [[0.0, poi_upper_bound(templates, systematics)]]
    spec = {
        "channels": [{"name": CHANNEL, "samples": samples}],
        "observations": [{"name": CHANNEL, "data": templates.background_yield.tolist()}],
        "measurements": [
            {
                "name": MEASUREMENT,
                "config": {
                    "poi": POI,
                    "parameters": [{"name": POI, "bounds": bounds}],
                },
            }
        ],
        "version": SCHEMA_VERSION,
    }
    pyhf.schema.validate(spec, "workspace.json")
    return spec
