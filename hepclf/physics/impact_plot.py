"""The ranking plot physicists read first: nuisance parameters by impact on mu, with pulls.

Bars (bottom axis): the change of mu when a parameter is fixed at its best-fit value ±
its post-fit uncertainty (filled) and ± its pre-fit one (open). Points (top axis): the
pull (θ̂ - θ0)/Δθ with its post-fit uncertainty σ̂/Δθ as error bar, in units of the
pre-fit uncertainty Δθ (θ0 = 0, Δθ = 1 for Gaussian-constrained parameters; θ0 = 1 and
Δθ the bin's relative MC uncertainty for the staterror ones), so both read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hepclf.evaluation.plots import styled_figure

MAX_PARAMETERS = 20


def plot_impacts(impacts: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Write the ranking of the ``MAX_PARAMETERS`` largest impacts as a PNG."""
    shown = impacts[:MAX_PARAMETERS][::-1]
    y = np.arange(len(shown))
    with styled_figure(path, (10.0, 4.5 + 0.45 * max(len(shown), 1))) as fig:
        ax = fig.subplots()
        for key, style in (("prefit", {"fill": False}), ("postfit", {"alpha": 0.7})):
            down = [r[key][0] for r in shown]
            up = [r[key][1] for r in shown]
            ax.barh(y, up, color="#3f90da", edgecolor="#3f90da", label=f"{key} +1σ", **style)
            ax.barh(y, down, color="#bd1f01", edgecolor="#bd1f01", label=f"{key} -1σ", **style)
        ax.set_yticks(y, [r["parameter"] for r in shown])
        ax.set_xlabel("Δμ")
        ax.axvline(0.0, color="black", linewidth=0.8)
        pulls = ax.twiny()
        pulls.errorbar(
            [(r["pull"] - r["nominal"]) / r["prefit_uncertainty"] for r in shown],
            y,
            xerr=[r["constraint"] / r["prefit_uncertainty"] for r in shown],
            fmt="o",
            color="black",
            label="pull",
        )
        pulls.set_xlim(-2.5, 2.5)
        pulls.set_xlabel(r"pull $(\hat{\theta} - \theta_0) / \Delta\theta$")
        fig.legend(loc="outside lower center", ncols=4, fontsize="small")
        ax.set_title(title, pad=40)
    return path
