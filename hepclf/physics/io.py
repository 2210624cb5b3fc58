"""Files of a physics result: workspace.json, templates.root, the plot and result.json.

Each file is written under a temporary name and renamed when complete (``hepclf.files``),
so an interrupted run never leaves a truncated workspace next to an earlier good one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import hist
import uproot

from hepclf.files import atomic_path, write_atomic
from hepclf.physics.analysis import PhysicsResult
from hepclf.physics.plots import plot_templates
from hepclf.physics.templates import Templates

WORKSPACE = "workspace.json"
TEMPLATES = "templates.root"
PLOT = "templates.png"
SUMMARY = "result.json"


def histogram_name(sample: str) -> str:
    """A ROOT-safe object name for a sample (``/`` and ``;`` have meanings in ROOT paths)."""
    return re.sub(r"[/;:\s]", "_", sample)


def write_templates(templates: Templates, path: Path) -> Path:
    """One TH1D per sample, named after it, with its Σw² (written by uproot)."""
    with atomic_path(path) as temporary, uproot.recreate(temporary) as file:
        for i, name in enumerate(templates.names):
            h = hist.Hist(
                hist.axis.Variable(templates.edges, name="score"), storage=hist.storage.Weight()
            )
            h.view().value = templates.sumw[i]
            h.view().variance = templates.sumw2[i]
            file[histogram_name(name)] = h
    return path


def write_result(result: PhysicsResult, folder: Path, model: str) -> dict[str, Path]:
    """Write the result files of one model into ``folder``; returns them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        **result.to_summary(),
        "seconds": result.seconds,
        "templates": result.templates.to_dict(),
    }
    files = {
        "workspace": write_atomic(
            json.dumps(result.workspace, indent=2).encode(), folder / WORKSPACE
        ),
        "templates": write_templates(result.templates, folder / TEMPLATES),
        "summary": write_atomic(json.dumps(summary, indent=2).encode(), folder / SUMMARY),
    }
    limit = result.mu_up_expected
    text = (
        f"Z0 = {result.z0_expected:.2f} σ\n"
        f"μ95 = {limit.median:.3g} [{limit.band['-1']:.3g}, {limit.band['+1']:.3g}]"
    )
    with atomic_path(folder / PLOT) as temporary:
        plot_templates(result.templates, temporary, model, text)
    files["plot"] = folder / PLOT
    return files
