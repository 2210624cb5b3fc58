"""The physics result as one step of a pipeline: which events, which score, which yields.

The pipeline (and ``hepclf result``) hand over the feature table, the rows the model was
evaluated on and its scores there. Yields are scaled up by (events of a sample) / (its
evaluated events): ÷ the test fraction for a test part, nothing for k-fold, whose
out-of-fold scores cover every event (``rows`` is then every row, or ``None``).

Multi-class models: the discriminant is the summed probability of the signal class(es),
fitted in one channel. Per-node fits (one channel per output node) and per-category
channels are not done yet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.errors import InputDataError
from hepclf.ingest import FeatureTable
from hepclf.physics.analysis import PhysicsResult, physics_result
from hepclf.physics.io import write_result
from hepclf.physics.yields import (
    evaluated_fractions,
    events_for_result,
    require_evaluated_samples,
)
from hepclf.results import ModelResult

RESULTS_DIR = "results"
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def discriminant(
    scores: np.ndarray, class_names: Sequence[str], signal_classes: Sequence[str]
) -> np.ndarray:
    """The one-dimensional score to bin: the signal score, or Σ P(signal classes)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        return scores
    columns = [i for i, name in enumerate(class_names) if name in signal_classes]
    if not columns:
        raise InputDataError(
            f"the model's classes {list(class_names)} include none of the signal classes "
            f"{list(signal_classes)}"
        )
    return scores[:, columns].sum(axis=1)


def model_physics(
    config: PipelineConfig, table: FeatureTable, rows: np.ndarray | None, scores: np.ndarray
) -> PhysicsResult:
    """Z0 and the expected limit of one model from its scores on ``rows`` of ``table``."""
    if config.result is None:
        raise ValueError("model_physics needs a pipeline with a 'result:' block")
    score = discriminant(scores, config.class_names, config.signal_classes)
    selected = slice(None) if rows is None else rows
    bad = ~np.isfinite(score)
    if bad.any():
        raise InputDataError(
            f"{int(bad.sum())} evaluated events have no score (NaN: not routed to any "
            "category?); the physics result needs a score for every event (per-category "
            "results are not done yet)"
        )
    fractions = evaluated_fractions(table.sample, rows, len(table.sample_names))
    require_evaluated_samples(fractions, table.sample, table.weight, table.sample_names)
    events = events_for_result(
        config,
        score,
        table.weight[selected],
        table.sample[selected],
        table.sample_names,
        fractions,
    )
    return physics_result(events, config.result)


def add_physics(
    result: ModelResult,
    config: PipelineConfig,
    table: FeatureTable,
    rows: np.ndarray | None,
    output: Path,
) -> None:
    """Fill ``result.physics`` from its test scores and write its files under ``output``."""
    result.physics = model_physics(config, table, rows, result.scores["test"])
    files = write_model_physics(result.physics, output, result.name)
    result.physics_files = files


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
