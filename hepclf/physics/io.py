"""Files of a physics result: workspace.json, templates.root, the plots and result.json.

``templates.root`` is laid out as ``combine`` datacards and HistFactory expect: one TH1D
per sample named after it, its variations as ``<sample>_<shape>Up``/``Down`` and the
observation as ``data_obs`` (the background-only Asimov data while blinded, the recorded
data once unblinded); with several channels each channel is a directory
(``shapes * * templates.root $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC``), with one
channel everything is at the top (``$PROCESS $PROCESS_$SYSTEMATIC``).

Each file is written under a temporary name and renamed when complete (``hepclf.runtime.files``),
so an interrupted run never leaves a truncated workspace next to an earlier good one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hist
import numpy as np
import uproot

from hepclf.physics.analysis import PhysicsResult
from hepclf.physics.plots import plot_templates
from hepclf.physics.templates import Templates
from hepclf.runtime.files import atomic_path, write_atomic

WORKSPACE = "workspace.json"
OBSERVED_WORKSPACE = "workspace_observed.json"
TEMPLATES = "templates.root"
PLOT = "templates.png"
SUMMARY = "result.json"
DATA = "data_obs"


def histogram_name(sample: str) -> str:
    """A ROOT-safe object name for a sample (``/`` and ``;`` have meanings in ROOT paths)."""
    return re.sub(r"[/;:\s]", "_", sample)


def _th1(edges: np.ndarray, values: np.ndarray, variances: np.ndarray) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges, name="score"), storage=hist.storage.Weight())
    h.view().value = values
    h.view().variance = variances
    return h


def channel_histograms(templates: Templates, prefix: str = "") -> dict[str, hist.Hist]:
    """The histograms of one channel by object path (``prefix``: its directory)."""
    out = {}
    edges = templates.edges
    for i, name in enumerate(templates.names):
        out[prefix + histogram_name(name)] = _th1(edges, templates.sumw[i], templates.sumw2[i])
    for shape, per_sample in templates.variations.items():
        for name, v in per_sample.items():
            base = prefix + histogram_name(name)
            out[f"{base}_{shape}Up"] = _th1(edges, v.up, v.up_noise)
            out[f"{base}_{shape}Down"] = _th1(edges, v.down, v.down_noise)
    data = templates.background_yield if templates.observed is None else templates.observed
    out[prefix + DATA] = _th1(edges, data, data)
    return out


def write_templates(channels: dict[str, Templates], path: Path) -> Path:
    """All channels' histograms with their Σw² (written by uproot)."""
    with atomic_path(path) as temporary, uproot.recreate(temporary) as file:
        for channel, templates in channels.items():
            prefix = "" if len(channels) == 1 else f"{histogram_name(channel)}/"
            for key, h in channel_histograms(templates, prefix).items():
                file[key] = h
    return path


def summary_of(result: PhysicsResult) -> dict[str, Any]:
    """result.json: the numbers, and every channel's yields, variations and decisions."""
    unblinded = "observed" in result.extra
    summary = {
        **result.to_summary(),
        "seconds": result.seconds,
        "templates": result.templates.to_dict(observed=unblinded),
    }
    if len(result.channels) > 1 or result.skipped:
        for name, channel in result.channels.items():
            summary["channels"][name]["templates"] = channel.templates.to_dict(unblinded)
    else:
        (channel,) = result.channels.values()
        if channel.shapes:
            summary["shapes"] = channel.to_summary()["shapes"]
    if result.warnings:
        summary["warnings"] = result.warnings
    for key in ("impacts", "postfit"):
        if key in result.extra:
            summary[key] = result.extra[key]
    return summary


def write_result(result: PhysicsResult, folder: Path, model: str) -> dict[str, Path]:
    """Write the result files of one model into ``folder``; returns them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    channels = {name: c.templates for name, c in result.channels.items()}
    files = {
        "workspace": write_atomic(
            json.dumps(result.workspace, indent=2).encode(), folder / WORKSPACE
        ),
        "templates": write_templates(channels, folder / TEMPLATES),
        "summary": write_atomic(
            json.dumps(summary_of(result), indent=2).encode(), folder / SUMMARY
        ),
    }
    if "observed_workspace" in result.extra:
        files["observed_workspace"] = write_atomic(
            json.dumps(result.extra["observed_workspace"], indent=2).encode(),
            folder / OBSERVED_WORKSPACE,
        )
    for name, channel in result.channels.items():
        path = folder / (PLOT if name == next(iter(channels)) else f"templates_{name}.png")
        limit = channel.mu_up_expected
        text = f"Z0 = {channel.z0_expected:.2f} σ" + (
            ""
            if limit is None
            else f"\nμ95 = {limit.median:.3g} [{limit.band['-1']:.3g}, {limit.band['+1']:.3g}]"
        )
        title = model if len(channels) == 1 else f"{model} {name}"
        with atomic_path(path) as temporary:
            plot_templates(channel.templates, temporary, title, text)
        files["plot" if path.name == PLOT else f"plot_{name}"] = path
    for key, path in result.extra.get("files", {}).items():
        files[key] = path
    return files
