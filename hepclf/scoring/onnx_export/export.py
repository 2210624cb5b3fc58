"""``hepclf export --format onnx``: pick the converter, wrap, verify, write atomically.

Every export is checked before it is written: ONNX Runtime scores a sample of events and
the result must agree with the Python model (``ModelBundle.score_features``), so a file on
disk is one that gives the model's numbers.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepclf.models.folds import FoldEnsemble
from hepclf.models.registry import MODELS, ONNX_CONVERTERS
from hepclf.runtime.errors import HepclfError
from hepclf.runtime.files import write_atomic
from hepclf.runtime.version import __version__
from hepclf.scoring.onnx_export.graph import TOLERANCE
from hepclf.training.bundle import ModelBundle, warn_fold_average

if TYPE_CHECKING:
    import onnx

CONVERTERS = ONNX_CONVERTERS
"""Model type -> converter module (imported only when used: the dnn one loads TensorFlow);
each model names its own in :mod:`hepclf.models.registry`."""
CHECK_EVENTS = 512
MAX_BYTES = 2**31 - 2**20  # protobuf's 2 GiB message limit, with room for the file's header


@dataclass(frozen=True)
class ExportResult:
    """What was written and how well it agrees with the Python model."""

    path: Path
    model_type: str
    n_features: int
    checked_events: int
    max_abs_diff: float | None
    tolerance: float = TOLERANCE


def require_packages(model_type: str) -> None:
    """Name the missing packages and the extra that installs them."""
    spec = MODELS.get(model_type)
    needed = ("onnx", "onnxruntime", *(spec.onnx_packages if spec else ()))
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise HepclfError(
            f"ONNX export of a {model_type} model needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; install with `pip install "
            f"{' '.join(missing)}` (all are in hepclf's 'onnx' extra)"
        )


def build_onnx(
    bundle: ModelBundle, extra_metadata: dict[str, str] | None = None
) -> tuple[onnx.ModelProto, float]:
    """The complete ONNX model (raw ``features`` in, ``score`` out, or ``probabilities`` for
    K > 2 classes; columns and classes in metadata) and the largest score difference to the
    Python model it may show."""
    import onnx

    from hepclf.scoring.onnx_export.graph import wrap

    if bundle.routing_columns:
        raise HepclfError(
            f"model {bundle.name!r} has one classifier per category; export it with "
            "export_onnx_categories (one file per category, `hepclf export` does this)"
        )
    model_type = bundle.classifier.name
    if model_type not in CONVERTERS:
        raise HepclfError(
            f"model {bundle.name!r} is of type {model_type!r}, which has no ONNX export; "
            f"supported types: {', '.join(sorted(CONVERTERS))}"
        )
    folds = isinstance(bundle.classifier, FoldEnsemble)  # k-fold: one graph, the fold average
    if folds:
        warn_fold_average(bundle.name, "is exported to ONNX, whose input has no event id")
    converter = importlib.import_module(
        "hepclf.scoring.onnx_export.folds" if folds else CONVERTERS[model_type]
    )
    graph = converter.to_graph(bundle.classifier, len(bundle.columns))
    clip = bundle.normalizer.clip
    n_classes = len(bundle.classifier.classes_)
    metadata = {
        "model_name": bundle.name,
        "model_type": model_type,
        "pipeline": bundle.pipeline,
        "hepclf_version": __version__,
        "normalization": bundle.normalizer.method + ("" if clip is None else f", clip {clip:g}"),
        "classes": json.dumps(bundle.classes),
    }
    if n_classes == 2:
        metadata["score"] = "signal score in [0, 1] (higher: more signal-like)"
    else:
        metadata["probabilities"] = "class probabilities, one column per entry of 'classes'"
    metadata.update(extra_metadata or {})
    model = wrap(graph, bundle.normalizer, bundle.columns, metadata, n_classes)
    size = model.ByteSize()
    if size >= MAX_BYTES:
        raise HepclfError(
            f"the ONNX graph of model {bundle.name!r} ({model_type}) would be {size / 2**30:.1f} "
            "GiB, over the 2 GiB limit of an ONNX file; train it with fewer or shallower trees "
            "(e.g. a larger min_samples_leaf) to export it"
        )
    onnx.checker.check_model(model, full_check=True)
    return model, graph.tolerance


def check_events(bundle: ModelBundle, n: int = CHECK_EVENTS, seed: int = 0) -> np.ndarray:
    """Raw feature rows spread like the training data (its centre and scale)."""
    rng = np.random.default_rng(seed)
    norm = bundle.normalizer
    z = rng.normal(size=(n, len(bundle.columns)))
    return (norm.center + norm.scale * z).astype(np.float32)


def onnx_scores(model: onnx.ModelProto, X: np.ndarray) -> np.ndarray:
    """ONNX Runtime's output for raw feature rows: the scores [N] of a two-class model, the
    class probabilities [N, K] of a multi-class one."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = (o.name for o in model.graph.output)
    return session.run([output], {"features": np.asarray(X, np.float32)})[0]


def python_scores(bundle: ModelBundle, X: np.ndarray) -> np.ndarray:
    """What the ONNX file must reproduce: signal scores, or all class probabilities."""
    if len(bundle.classifier.classes_) == 2:
        return bundle.score_features(X)
    return bundle.probabilities(X)


def compare(
    model: onnx.ModelProto, bundle: ModelBundle, X: np.ndarray, tolerance: float = TOLERANCE
) -> float:
    """Largest |ONNX output - Python output| on ``X``; an error above ``tolerance``."""
    diff = np.abs(onnx_scores(model, X) - python_scores(bundle, X))
    diff = float(np.max(diff, initial=0.0))
    if not diff <= tolerance:
        raise HepclfError(
            f"the ONNX graph of model {bundle.name!r} ({bundle.classifier.name}) disagrees with "
            f"the model: max |score difference| {diff:.3g} on {len(X)} events (tolerance "
            f"{tolerance:g}); nothing was written. Please report this with the model."
        )
    return diff


def export_onnx(
    bundle: ModelBundle,
    out: Path,
    check: bool = True,
    extra_metadata: dict[str, str] | None = None,
) -> ExportResult:
    """Convert ``bundle``, verify it with ONNX Runtime (unless ``check`` is off), write it."""
    require_packages(bundle.classifier.name)
    model, tolerance = build_onnx(bundle, extra_metadata)
    diff = compare(model, bundle, check_events(bundle), tolerance) if check else None
    path = write_atomic(model.SerializeToString(), Path(out))
    checked = CHECK_EVENTS if check else 0
    return ExportResult(path, bundle.classifier.name, len(bundle.columns), checked, diff, tolerance)


def export_onnx_categories(
    bundle: ModelBundle, out: Path, check: bool = True
) -> dict[str, ExportResult]:
    """One ONNX file per category of a category model: ``<out stem>_<category>.onnx``.

    ONNX has no notion of the branches that route an event (|eta| need not be a feature),
    so the caller routes: each file's metadata holds its ``category``, the
    ``category_selection`` (hepclf's expression syntax, which reads as C++ for comparisons,
    ``&&``, ``||`` and ``abs``) and ``categories``, the JSON list of every category in order.
    An event must pass exactly one selection; that file scores it.
    """
    model = bundle.classifier
    categories = json.dumps([c.model_dump() for c in model.categories])
    results = {}
    for category, classifier in zip(model.categories, model.models, strict=True):
        part = ModelBundle(
            f"{bundle.name}_{category.name}",
            bundle.features,
            bundle.normalizer,
            classifier,
            bundle.pipeline,
            bundle.class_names,
        )
        meta = {
            "category": category.name,
            "category_selection": category.selection,
            "categories": categories,
        }
        path = out.with_name(f"{out.stem}_{category.name}{out.suffix or '.onnx'}")
        results[category.name] = export_onnx(part, path, check, meta)
    return results
