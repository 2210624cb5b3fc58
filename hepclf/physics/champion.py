"""What only the champion gets: observed results on data, pulls and impacts, toys.

Models are compared and the champion chosen on *expected* results; data are looked at
afterwards, for the champion alone (``result: {unblind: true}``), so the choice cannot be
tuned on the data's fluctuations. The fits (:mod:`.fits`, pyhf with MINUIT): observed Z0,
the maximum-likelihood fit with its post-fit yields (cabinetry's prediction), and the
ranking of every constrained nuisance parameter, MC statistical ones included, by its
impact on mu. Blinded, the impacts are computed on the Asimov data for mu = 1 (the
expected impacts). The observed CLs limit is pyhf's (:func:`.inference.observed_limit`).
``toys`` adds pseudo-experiment Z0 and limit (:mod:`.toys`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.result import ResultConfig
from hepclf.physics.analysis import PhysicsResult
from hepclf.physics.channels import Routing, route
from hepclf.physics.fits import best_fit, ranking, significance
from hepclf.physics.impact_plot import plot_impacts
from hepclf.physics.inference import asimov_data, model_of, numpy_backend, observed_limit
from hepclf.physics.inputs import PhysicsInputs
from hepclf.physics.plots import plot_templates
from hepclf.physics.templates import histogram
from hepclf.physics.toys import toy_results
from hepclf.physics.workspace import POI, with_observation
from hepclf.training.bundle import ModelBundle

IMPACTS_PLOT = "impacts.png"


def best_expected(results: Mapping[str, PhysicsResult], metric: str) -> str:
    """The model with the best expected result: the lowest median limit when ``metric`` is
    ``mu_up_expected``, else the highest Z0 (``hepclf result`` has no other metrics)."""
    if metric == "mu_up_expected":
        return min(results, key=lambda n: results[n].mu_up_expected.median)
    return max(results, key=lambda n: results[n].z0_expected)


def champion_physics(
    physics: PhysicsResult,
    config: PipelineConfig,
    inputs: PhysicsInputs | None,
    bundle: ModelBundle | None,
    folder: Path,
    model: str,
) -> None:
    """Add observed results, impacts and toys (as configured) to ``physics.extra``;
    plots go into ``folder``."""
    result = config.result
    if result is None:
        return
    logging.getLogger("cabinetry").setLevel(logging.WARNING)
    spec = physics.workspace
    if result.unblind and inputs is not None and bundle is not None:
        spec = _unblind(physics, config, inputs, bundle)
    physics.extra["files"] = fit_champion(physics, spec, result, config.seed, folder, model)


def fit_champion(
    physics: PhysicsResult,
    spec: dict[str, Any],
    result: ResultConfig,
    seed: int,
    folder: Path,
    model: str,
) -> dict[str, Path]:
    """The fits on ``spec`` (with data when ``result.unblind``); returns the plots."""
    files: dict[str, Path] = {}
    with numpy_backend():
        pdf = model_of(spec)
        data = np.asarray(_data_of(spec, pdf)) if result.unblind else asimov_data(pdf, 1.0)
        fit = None
        if result.unblind:
            z0, p0 = significance(pdf, data)
            limit = observed_limit(pdf, data, physics.mu_up_expected.median)
            fit = best_fit(pdf, data, f"of {model} to the data")
            mu = fit.labels.index(POI)
            physics.extra["observed"] = {
                "z0": z0,
                "p0": p0,
                "mu_up": limit,
                "mu_hat": float(fit.bestfit[mu]),
                "mu_hat_uncertainty": float(fit.uncertainty[mu]),
            }
            physics.extra["postfit"] = _postfit(pdf, fit)
            files |= _postfit_plots(physics, folder, model)
        if result.impacts:
            fit = fit or best_fit(pdf, data, f"of {model} to the Asimov data for mu = 1")
            physics.extra["impacts"], failed = ranking(pdf, data, fit)
            if failed:
                physics.warnings.append(
                    f"impacts: the refits with {', '.join(failed)} fixed found no valid "
                    "minimum; their impacts (marked valid: false) are approximate"
                )
            path = folder / IMPACTS_PLOT
            folder.mkdir(parents=True, exist_ok=True)
            plot_impacts(physics.extra["impacts"], path, f"{model}: impacts on μ")
            files["impacts_plot"] = path
        if result.toys:
            physics.extra["toys"] = toy_results(
                model_of(physics.workspace), result.toys, physics.mu_up_expected, seed
            )
    return files


def _data_of(spec: dict[str, Any], pdf: Any) -> list[float]:
    import pyhf

    return list(pyhf.Workspace(spec).data(pdf))


def _unblind(
    physics: PhysicsResult, config: PipelineConfig, inputs: PhysicsInputs, bundle: ModelBundle
) -> dict[str, Any]:
    """Bin the data in every channel; returns the workspace with the data as observation."""
    routed = route(Routing.of(config), inputs.data(bundle))
    observed = {
        name: histogram(routed[name], channel.templates.edges)[0]
        for name, channel in physics.channels.items()
    }
    return set_observation(physics, observed)


def set_observation(physics: PhysicsResult, observed: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Put the data counts per channel into the templates; the workspace with them."""
    for name, channel in physics.channels.items():
        physics.channels[name] = replace(
            channel, templates=replace(channel.templates, observed=np.asarray(observed[name]))
        )
    physics.templates = next(iter(physics.channels.values())).templates
    spec = with_observation(physics.workspace, observed)
    physics.extra["observed_workspace"] = spec
    return spec


def _postfit(pdf: Any, fit: Any) -> dict[str, Any]:
    """Post-fit yields per channel and sample, and the total's uncertainty per bin."""
    import cabinetry

    prediction = cabinetry.model_utils.prediction(pdf, fit_results=fit)
    out = {}
    for c, channel in enumerate(pdf.config.channels):
        out[channel] = {
            "samples": {
                sample: [float(v) for v in prediction.model_yields[c][s]]
                for s, sample in enumerate(pdf.config.samples)
            },
            "total_uncertainty": [float(v) for v in prediction.total_stdev_model_bins[c][-1]],
        }
    return out


def _postfit_plots(physics: PhysicsResult, folder: Path, model: str) -> dict[str, Path]:
    """Per channel, the stacked post-fit yields with the data points."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    observed = physics.extra["observed"]
    for name, channel in physics.channels.items():
        post = physics.extra["postfit"][name]
        t = channel.templates
        sumw = np.array([post["samples"][n] for n in t.names])
        sumw2 = np.zeros_like(sumw)
        background = int(np.flatnonzero(~t.is_signal)[0])
        sumw2[background] = np.square(post["total_uncertainty"])
        postfit = replace(t, sumw=sumw, sumw2=sumw2, variations={})
        path = folder / f"postfit_{name}.png"
        text = (
            f"post-fit μ̂ = {observed['mu_hat']:.2f} ± {observed['mu_hat_uncertainty']:.2f}\n"
            f"Z0 obs = {observed['z0']:.2f} σ, μ95 obs = {observed['mu_up']:.3g}"
        )
        plot_templates(
            postfit, path, f"{model} {name} (post-fit)", text, band_label="post-fit unc."
        )
        files[f"postfit_{name}"] = path
    return files
