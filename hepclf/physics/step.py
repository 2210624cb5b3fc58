"""The physics result as one step of a pipeline: which events, which score, which yields.

The pipeline (and ``hepclf result``) hand over the feature table, the rows the model was
evaluated on and its scores there. Yields are scaled up by (events of a sample) / (its
evaluated events): ÷ the test fraction for a test part, nothing for k-fold, whose
out-of-fold scores cover every event (``rows`` is then every row, or ``None``).

The events are routed into channels (:mod:`.channels`: one, one per output node, one per
category); weight-variation factors follow their events, and the files of systematic
variations are scored with the same model (``inputs`` and ``bundle``) and routed alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.ingest import FeatureTable
from hepclf.physics.analysis import PhysicsResult, physics_result
from hepclf.physics.channels import Routing, discriminant, route
from hepclf.physics.inputs import PhysicsInputs
from hepclf.physics.io import write_result
from hepclf.physics.yields import (
    EvaluatedEvents,
    VariedEvents,
    evaluated_fractions,
    expected_yields,
    require_evaluated_samples,
    signal_samples,
)
from hepclf.runtime.errors import InputDataError
from hepclf.training.bundle import ModelBundle
from hepclf.training.results import ModelResult

__all__ = [
    "RESULTS_DIR",
    "check_model_name",
    "discriminant",
    "finish_champion",
    "model_physics",
    "write_model_physics",
]

RESULTS_DIR = "results"
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def model_physics(
    config: PipelineConfig,
    table: FeatureTable,
    rows: np.ndarray | None,
    scores: np.ndarray,
    inputs: PhysicsInputs | None = None,
    bundle: ModelBundle | None = None,
) -> PhysicsResult:
    """Z0 and the expected limit of one model from its scores on ``rows`` of ``table``
    (``inputs`` and ``bundle``: for shape uncertainties from varied files)."""
    if config.result is None:
        raise ValueError("model_physics needs a pipeline with a 'result:' block")
    scores = np.asarray(scores, dtype=np.float64)
    selected = slice(None) if rows is None else rows
    bad = ~np.isfinite(scores if scores.ndim == 1 else scores.sum(axis=1))
    if bad.any():
        raise InputDataError(
            f"{int(bad.sum())} evaluated events have no score (NaN: not routed to any "
            "category?); the physics result needs a score for every event"
        )
    fractions = evaluated_fractions(table.sample, rows, len(table.sample_names))
    require_evaluated_samples(fractions, table.sample, table.weight, table.sample_names)
    sample = np.asarray(table.sample[selected])
    expected = expected_yields(table.weight[selected], sample, fractions, config.result.luminosity)
    category = None if table.category is None else table.category[selected]
    routing = Routing.of(config)
    factors = {}
    varied: dict[str, dict[str, tuple[dict[str, VariedEvents], dict[str, VariedEvents] | None]]]
    varied = {}
    if inputs is not None:
        factors = {
            k: (up[selected], None if down is None else down[selected])
            for k, (up, down) in inputs.factors().items()
        }
        if any(s.inputs for s in inputs.shapes.values()):
            if bundle is None:
                raise ValueError("shapes from varied files need the model's bundle")
            for shape, per_sample in inputs.varied(bundle, rows).items():
                for name, (up, down) in per_sample.items():
                    varied.setdefault(shape, {})[name] = (
                        route(routing, up),
                        None if down is None else route(routing, down),
                    )
    channels: dict[str, EvaluatedEvents] = {}
    skipped: dict[str, str] = {}
    for name, (mask, score) in routing.split(scores, category).items():
        try:
            channels[name] = EvaluatedEvents(
                score=score[mask],
                expected=expected[mask],
                sample=sample[mask],
                sample_names=list(table.sample_names),
                signal=signal_samples(config, config.result),
                factors={
                    k: (up[mask], None if down is None else down[mask])
                    for k, (up, down) in factors.items()
                },
                varied={
                    shape: {
                        n: (up[name], None if down is None else down[name])
                        for n, (up, down) in per_sample.items()
                    }
                    for shape, per_sample in varied.items()
                },
            )
        except InputDataError as err:
            if len(routing.names) == 1:
                raise
            skipped[name] = str(err)
    if not channels:
        raise InputDataError(
            "no channel has both signal and background events: "
            + "; ".join(f"{n}: {why}" for n, why in skipped.items())
        )
    return physics_result(channels, config.result, skipped)


def check_model_name(name: str, where: str) -> str:
    """``name`` if it is a model name (letters, digits, ``_``, ``-``): it becomes a folder
    ``results/<name>/``, so a name from a run's tags may not lead out of it (``../``)."""
    if not _MODEL_NAME.fullmatch(name):
        raise InputDataError(
            f"{where}: {name!r} is not a model name (letters, digits, '_' and '-' only); "
            "nothing was written. Give the run of `hepclf train` or a model URI whose model "
            "has a plain name"
        )
    return name


def write_model_physics(result: PhysicsResult, output: Path, model: str) -> dict[str, Path]:
    """Files of one model under ``output/results/<model>/``."""
    check_model_name(model, "the result's model")
    return write_result(result, Path(output) / RESULTS_DIR / model, model)


def finish_champion(
    result: ModelResult,
    config: PipelineConfig,
    inputs: PhysicsInputs | None,
    bundle: ModelBundle | None,
    output: Path,
) -> None:
    """The champion's observed results, impacts and toys (as configured); its files are
    written again with them."""
    from hepclf.physics.champion import champion_physics

    if result.physics is None:
        return
    folder = Path(output) / RESULTS_DIR / result.name
    champion_physics(result.physics, config, inputs, bundle, folder, result.name)
    result.physics_files = write_model_physics(result.physics, output, result.name)
