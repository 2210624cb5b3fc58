"""hepclf: separate signal from background events in ROOT files.

The public Python API (what ``hepclf train``/``score`` do, from a notebook or a script)::

    import hepclf

    config = hepclf.load_pipeline("pipelines/demo.yaml")     # validated pipeline YAML
    table = hepclf.ingest(config)                            # ROOT files -> feature table
    result = hepclf.run_pipeline(config, output="results")   # train, evaluate, track
    bundle = hepclf.load_bundle("models:/demo@champion")     # a trained model + features
    scores = bundle.score_features(table.X)                  # signal scores
    models = hepclf.load_scoring_models(["models:/demo@champion"])
    settings = hepclf.ScoreSettings(out_dir=Path("scored"))   # outputs: scored/*_scores.root
    summary = hepclf.score_files(["data.root"], models, settings)

and :func:`build_model`/:data:`MODEL_TYPES` (the classifier zoo, scikit-learn estimators),
:func:`evaluate_classifier` (HEP metrics of any scores), :func:`evaluate_multiclass` (per-class
metrics of K-class probabilities), :class:`CategoryModel` (one model per analysis category).
Names are imported on first use,
so ``import hepclf`` stays cheap (no TensorFlow, MLflow or matplotlib).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hepclf.runtime.version import __version__

_API = {
    "load_pipeline": "hepclf.config",
    "parse_pipeline": "hepclf.config",
    "PipelineConfig": "hepclf.config",
    "ingest": "hepclf.ingest",  # the package, callable: hepclf.ingest(config)
    "FeatureTable": "hepclf.ingest",
    "run_pipeline": "hepclf.workflows.train",
    "PipelineResult": "hepclf.training.results",
    "ModelResult": "hepclf.training.results",
    "ModelBundle": "hepclf.training.bundle",
    "load_bundle": "hepclf.tracking.registry",
    "load_scoring_models": "hepclf.scoring.scorers",
    "score_files": "hepclf.scoring.runner",
    "ScoreSettings": "hepclf.scoring.file_job",
    "build_model": "hepclf.models",
    "load_model": "hepclf.models",
    "MODEL_TYPES": "hepclf.models",
    "evaluate_classifier": "hepclf.evaluation",
    "evaluate_multiclass": "hepclf.evaluation.multiclass",
    "CategoryModel": "hepclf.ingest.events.categories",
    "HepclfError": "hepclf.runtime.errors",
}

__all__ = [
    "MODEL_TYPES",
    "CategoryModel",
    "FeatureTable",
    "HepclfError",
    "ModelBundle",
    "ModelResult",
    "PipelineConfig",
    "PipelineResult",
    "ScoreSettings",
    "__version__",
    "build_model",
    "evaluate_classifier",
    "evaluate_multiclass",
    "ingest",
    "load_bundle",
    "load_model",
    "load_pipeline",
    "load_scoring_models",
    "parse_pipeline",
    "run_pipeline",
    "score_files",
]

if TYPE_CHECKING:
    from hepclf.config import PipelineConfig, load_pipeline, parse_pipeline
    from hepclf.evaluation import evaluate_classifier
    from hepclf.evaluation.multiclass import evaluate_multiclass
    from hepclf.ingest import FeatureTable, ingest
    from hepclf.ingest.events.categories import CategoryModel
    from hepclf.models import MODEL_TYPES, build_model, load_model
    from hepclf.runtime.errors import HepclfError
    from hepclf.scoring.file_job import ScoreSettings
    from hepclf.scoring.runner import score_files
    from hepclf.scoring.scorers import load_scoring_models
    from hepclf.tracking.registry import load_bundle
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.results import ModelResult, PipelineResult
    from hepclf.workflows.train import run_pipeline


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first access (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'hepclf' has no attribute {name!r}")
    imported = importlib.import_module(module)
    if module == f"{__name__}.{name}":  # hepclf.ingest: the package itself is callable
        return imported
    value = getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
