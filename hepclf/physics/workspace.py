"""The HistFactory workspace (pyhf JSON) of a discriminant: one channel per node or
category (or one in all), one sample each.

Signal samples carry the normalisation factor ``mu`` (the POI), shared by all channels;
every sample carries its channel's ``staterror`` (Barlow–Beeston lite: one nuisance per bin
for the total MC uncertainty); configured ``normsys`` uncertainties add one nuisance per
sample, the flat background uncertainty one nuisance shared by all backgrounds, and each
shape uncertainty one nuisance (``normsys`` + ``histosys``, :mod:`.shapes`), all correlated
across channels. The observation is the Asimov background-only data (the sum of the
background templates), so the workspace describes the *expected* result and ``pyhf cls``
on it gives the expected CLs; :func:`with_observation` puts recorded data in its place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyhf

from hepclf.config.result import SystematicsConfig
from hepclf.physics.shapes import ShapeDecision, shape_modifiers
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


def poi_upper_bound(
    templates: Templates | list[Templates], systematics: SystematicsConfig
) -> float:
    """A POI range that surely holds the limit: 50× a rough σ(mu), at least 10.

    σ(mu) ≈ 1/sqrt(Σ s²/V) with V the background variance per bin from data statistics,
    MC statistics and the normalisation uncertainties (shape ones by their largest
    normalisation change) added linearly; the limit is about twice σ. The range only
    bounds the fits, so generous costs nothing.
    """
    channels = templates if isinstance(templates, list) else [templates]
    fraction = systematics.background + sum(
        max(size) if isinstance(size, tuple) else size for size in systematics.normsys.values()
    )
    for shape in systematics.shapes:
        changes = [0.0]
        for t in channels:
            for name, v in t.variations.get(shape, {}).items():
                total = t.sumw[t.names.index(name)].sum()
                if total > 0:
                    changes += [abs(v.up.sum() / total - 1), abs(v.down.sum() / total - 1)]
        fraction += min(max(changes), 1.0)
    information = 0.0
    for t in channels:
        s, b = t.signal_yield, t.background_yield
        variance = b + t.background_sumw2 + (fraction * b) ** 2
        information += float(np.sum(s * s / variance))
    sigma = 1.0 / np.sqrt(information) if information > 0 else np.inf
    return float(min(max(10.0, 50.0 * sigma), 1e6))


def channel_spec(
    name: str, templates: Templates, systematics: SystematicsConfig
) -> tuple[dict[str, Any], list[ShapeDecision]]:
    """One channel's samples and modifiers, and the shape decisions taken for it."""
    shaped, decisions = shape_modifiers(templates, systematics.shapes)
    samples = []
    for i, sample in enumerate(templates.names):
        modifiers: list[dict[str, Any]] = []
        signal = sample in templates.signal
        if signal:
            modifiers.append({"name": POI, "type": "normfactor", "data": None})
        modifiers.append(
            {
                "name": f"staterror_{name}",
                "type": "staterror",
                "data": np.sqrt(templates.sumw2[i]).tolist(),
            }
        )
        if not signal and systematics.background > 0:
            modifiers.append(_normsys(BACKGROUND_NORM, systematics.background))
        if sample in systematics.normsys:
            modifiers.append(_normsys(f"norm_{sample}", systematics.normsys[sample]))
        modifiers += shaped[sample]
        samples.append({"name": sample, "data": templates.sumw[i].tolist(), "modifiers": modifiers})
    return {"name": name, "samples": samples}, decisions


def build_channels(
    channels: Mapping[str, Templates], systematics: SystematicsConfig
) -> tuple[dict[str, Any], dict[str, list[ShapeDecision]]]:
    """The pyhf workspace of all channels fitted together (validated against the schema),
    and per channel the shape decisions."""
    specs, decisions = [], {}
    for name, templates in channels.items():
        spec, decisions[name] = channel_spec(name, templates, systematics)
        specs.append(spec)
    bounds = [[0.0, poi_upper_bound(list(channels.values()), systematics)]]
    workspace = {
        "channels": specs,
        "observations": [
            {"name": name, "data": t.background_yield.tolist()} for name, t in channels.items()
        ],
        "measurements": [
            {
                "name": MEASUREMENT,
                "config": {"poi": POI, "parameters": [{"name": POI, "bounds": bounds}]},
            }
        ],
        "version": SCHEMA_VERSION,
    }
    pyhf.schema.validate(workspace, "workspace.json")
    return workspace, decisions


def build_workspace(templates: Templates, systematics: SystematicsConfig) -> dict[str, Any]:
    """The one-channel workspace (channel ``discriminant``) of a set of templates."""
    return build_channels({CHANNEL: templates}, systematics)[0]


def with_observation(
    workspace: dict[str, Any], observed: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The workspace with recorded data per channel instead of the Asimov data."""
    spec = copy.deepcopy(workspace)
    spec["observations"] = [
        {"name": o["name"], "data": np.asarray(observed[o["name"]], np.float64).tolist()}
        for o in spec["observations"]
    ]
    spec["measurements"][0]["name"] = "observed"
    pyhf.schema.validate(spec, "workspace.json")
    return spec
