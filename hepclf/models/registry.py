"""Every zoo model's facts in one place: its class, what tuning searches, how it is exported
to ONNX and what a logged model needs installed.

Adding a model is one class in its own module (``hepclf/models/<name>.py``, scikit-learn's
estimator contract, a ``Params`` model), its search space in :mod:`.search_spaces` and one
:class:`ModelSpec` below; training, tuning, export and tracking read everything from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hepclf.models import search_spaces
from hepclf.models.base import Classifier
from hepclf.models.bdt import BDT
from hepclf.models.dnn import DNN
from hepclf.models.forest import Forest
from hepclf.models.linear import Linear
from hepclf.models.svm import SVM
from hepclf.models.xgb import XGB

if TYPE_CHECKING:
    from optuna import Trial

SearchSpace = Callable[["Trial"], dict[str, Any]]


@dataclass(frozen=True)
class ModelSpec:
    """What hepclf knows about one zoo model."""

    cls: type[Classifier]
    search_space: SearchSpace | None = None
    """The parameters a tuning trial draws (None: the model is not tunable)."""
    onnx_converter: str | None = None
    """The module that turns a fitted model into an ONNX graph (imported on export only)."""
    onnx_packages: tuple[str, ...] = ()
    """Packages that converter needs beyond onnx and onnxruntime."""
    requirements: tuple[str, ...] = ()
    """Packages a logged (pyfunc) model needs beyond hepclf's core ones."""

    @property
    def name(self) -> str:
        return self.cls.name


_ONNX = "hepclf.scoring.onnx_export"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            DNN,
            search_spaces.dnn,
            f"{_ONNX}.dnn",
            onnx_packages=("tf2onnx",),
            requirements=("tensorflow", "keras"),
        ),
        ModelSpec(BDT, search_spaces.bdt, f"{_ONNX}.bdt"),
        ModelSpec(XGB, search_spaces.xgb, f"{_ONNX}.xgb", onnx_packages=("onnxmltools",)),
        ModelSpec(Forest, search_spaces.rf, f"{_ONNX}.forest"),
        ModelSpec(SVM, search_spaces.svm, f"{_ONNX}.svm"),
        ModelSpec(Linear, search_spaces.linear, f"{_ONNX}.linear"),
    )
}
"""The zoo, by model name."""

MODEL_TYPES: dict[str, type[Classifier]] = {name: spec.cls for name, spec in MODELS.items()}
SEARCH_SPACES: dict[str, SearchSpace] = {
    name: spec.search_space for name, spec in MODELS.items() if spec.search_space is not None
}
"""Per model, the parameters a trial draws (ranges in :mod:`.search_spaces`, README table)."""
ONNX_CONVERTERS: dict[str, str] = {
    name: spec.onnx_converter for name, spec in MODELS.items() if spec.onnx_converter
}
