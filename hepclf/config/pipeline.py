"""The whole pipeline: every section together, and the checks that span sections (the
classes, the categories, and the names ``result:`` gives to samples and classes)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hepclf.config.base import StrictModel
from hepclf.config.features import RESERVED_COLUMNS, FeatureConfig
from hepclf.config.result import ResultConfig
from hepclf.config.samples import DATA_LABEL, SampleConfig, branch_safe
from hepclf.config.training import (
    CategoryConfig,
    EvaluationConfig,
    NormalizationConfig,
    SplitConfig,
    TuneConfig,
)
from hepclf.ingest.events.expressions import parse
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import with_hints


class PipelineConfig(StrictModel):
    """A whole analysis: samples, features, split, normalisation, models."""

    name: str
    """the analysis; also the MLflow experiment unless `experiment` is set"""
    samples: list[SampleConfig] = Field(min_length=2)
    """one entry per process, at least two classes"""
    features: list[FeatureConfig] = Field(min_length=1)
    """the inputs of the models: a branch name, or a mapping"""
    selection: str | None = None
    """a cut for every sample (ROOT `&&`/`||` or NumPy `&`/`|` syntax)"""
    classes: list[str] | None = None
    """output order of the classes (multi-class; default: first appearance)"""
    signal: str | list[str] | None = None
    """the class(es) the physics is about (default: `signal`, else the first)"""
    categories: list[CategoryConfig] | None = None
    """analysis categories, one model per category (TMVA's Category method)"""
    event_id: str | None = None
    """a branch with a unique event number (default: the entry number)"""
    split: SplitConfig = SplitConfig()
    """training / validation / test division"""
    normalization: NormalizationConfig = NormalizationConfig()
    """feature scaling; a method name is short for `{method: NAME}`"""
    class_balance: Literal["none", "equal_weight"] = "equal_weight"
    """`equal_weight`: every class has the same sum of training weights"""
    negative_weights: Literal["keep", "abs", "drop"] = "keep"
    """negative weights in training: as they are, |w|, or left out"""
    nan_policy: Literal["error", "drop"] = "error"
    """NaN or inf features: stop with counts per feature, or drop those events"""
    step_size: str | int = "25 MB"
    """chunk size for reading (uproot `step_size`: bytes or entries)"""
    models: dict[str, dict[str, Any]] = Field(default_factory=lambda: _whole_zoo())
    """model name -> hyperparameters (`{}`: defaults; a list of names too); default: the whole
    installed zoo"""
    evaluation: EvaluationConfig = EvaluationConfig()
    """evaluation and model selection"""
    tune: TuneConfig | None = None
    """budgeted hyperparameter search before the final fits"""
    result: ResultConfig | None = None
    """expected physics result per model (pyhf)"""
    experiment: str | None = None
    """MLflow experiment name (default: `name`)"""
    seed: int = 42
    """seeds the models"""
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("features", mode="before")
    @classmethod
    def _plain_names_are_branches(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [{"name": f, "branch": f} if isinstance(f, str) else f for f in value]

    @field_validator("normalization", mode="before")
    @classmethod
    def _method_shorthand(cls, value: Any) -> Any:
        return {"method": value} if isinstance(value, str) else value

    @field_validator("models", mode="before")
    @classmethod
    def _model_list_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {name: (params or {}) for name, params in value.items()}
        return value

    @field_validator("models", mode="after")
    @classmethod
    def _known_model_params(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Check every model's parameters now, not after ingest and earlier models trained."""
        from hepclf.models import check_model_params  # ConfigError propagates unchanged

        for name, params in value.items():
            check_model_params(name, params)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        names = [s.name for s in self.samples]
        if len(set(names)) != len(names):
            raise ValueError(f"sample names must be unique, got {names}")
        _check_classes(self)
        if self.categories is not None:
            _check_categories(self.categories)
            if "category" in self.feature_columns:
                raise ValueError("with 'categories', no feature may be called 'category'")
        columns = self.feature_columns
        duplicates = sorted(c for c, n in Counter(columns).items() if n > 1)
        if duplicates:
            raise ValueError(f"feature columns must be unique, repeated: {duplicates}")
        reserved = sorted(set(columns) & set(RESERVED_COLUMNS))
        if reserved:
            raise ValueError(
                f"feature names {reserved} clash with the table's own columns "
                f"{list(RESERVED_COLUMNS)}; rename the feature (keep 'branch:' as it is)"
            )
        if self.split.method == "event_id" and self.event_id is None:
            raise ValueError("split.method 'event_id' needs the top-level key 'event_id: BRANCH'")
        return self

    @model_validator(mode="after")
    def _result_names_exist(self) -> PipelineConfig:
        if self.result is not None:
            _check_result(self, self.result)
        elif self.evaluation.select_metric in ("z0_expected", "mu_up_expected"):
            raise ValueError(
                f"evaluation.select_metric {self.evaluation.select_metric!r} needs a 'result:' "
                "block (the physics result computes it)"
            )
        return self

    @property
    def skip_flagged(self) -> bool:
        """``evaluation.skip_flagged``, or its default for the split (no under k-fold)."""
        chosen = self.evaluation.skip_flagged
        return self.split.method != "kfold" if chosen is None else chosen

    @property
    def class_names(self) -> list[str]:
        """The classes in label order: a table's ``label`` holds indices into this list.

        Two classes are ordered (other, signal) so that label 1 and ``predict_proba``
        column 1 are the signal, exactly as in the two-class pipeline.
        """
        names = list(self.classes or dict.fromkeys(s.label for s in self.simulated_samples))
        if len(names) == 2:
            signal = self.signal_classes[0]
            names = [n for n in names if n != signal] + [signal]
        return names

    @property
    def signal_classes(self) -> list[str]:
        """The class(es) the physics is about: ``signal:``, else ``signal``, else the first."""
        if self.signal is not None:
            return [self.signal] if isinstance(self.signal, str) else list(self.signal)
        labels = list(self.classes or dict.fromkeys(s.label for s in self.simulated_samples))
        return ["signal"] if "signal" in labels else labels[:1]

    @property
    def simulated_samples(self) -> list[SampleConfig]:
        """The samples that are trained on and evaluated: all but ``label: data``."""
        return [s for s in self.samples if s.label != DATA_LABEL]

    @property
    def data_samples(self) -> list[SampleConfig]:
        """Recorded data (``label: data``): only the physics result's observation."""
        return [s for s in self.samples if s.label == DATA_LABEL]

    @property
    def multiclass(self) -> bool:
        """More than two classes: per-class outputs instead of one signal score."""
        return len(self.class_names) > 2

    @property
    def feature_columns(self) -> list[str]:
        """All table columns produced by the features, in order."""
        return [c for f in self.features for c in f.columns]

    @property
    def padding_values(self) -> dict[str, float]:
        """The padding value of every column of a leading-N feature (plots mark them)."""
        return {c: f.pad for f in self.features if f.leading is not None for c in f.columns}

    def ingest_fingerprint(self) -> str:
        """A hash of everything that changes the ingested table (not models or split)."""
        keys = {"samples", "features", "selection", "event_id", "nan_policy"}
        if self.classes or self.signal:  # unset keeps two-class fingerprints unchanged
            keys |= {"classes", "signal"}
        if self.categories:
            keys.add("categories")
        dumped = self.model_dump(include=keys, mode="json")
        # data is not in the table: adding a data sample keeps the table (and its cache)
        dumped["samples"] = [s for s in dumped["samples"] if s["label"] != DATA_LABEL]
        for sample in dumped["samples"]:  # unset keeps earlier fingerprints (and caches) valid
            if sample["sum_weights"] is None:
                del sample["sum_weights"]
        payload = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def resolve(self, pattern: str) -> str:
        """A file pattern relative to the YAML's folder, as an absolute glob."""
        path = Path(pattern).expanduser()
        return str(path if path.is_absolute() else (self.base_dir / path).resolve())


def _check_classes(config: PipelineConfig) -> None:
    labels = list(dict.fromkeys(s.label for s in config.simulated_samples))
    if config.classes is not None and DATA_LABEL in config.classes:
        raise ValueError("'classes' must not list 'data': recorded data is never a class")
    if config.classes is not None:
        if len(set(config.classes)) != len(config.classes):
            raise ValueError(f"'classes' must not repeat a name, got {config.classes}")
        unused = [c for c in config.classes if c not in labels]
        unknown = [c for c in labels if c not in config.classes]
        if unknown or unused:
            raise ValueError(
                f"'classes' {config.classes} must list exactly the sample labels {labels}"
                + (f"; missing {unknown}" if unknown else "")
                + (f"; no sample has {unused}" if unused else "")
            )
    if len(labels) < 2:
        raise ValueError(
            f"samples need at least two classes, got only {labels}: at least one 'signal' and "
            "one 'background' entry, or a class name per process for a multi-class problem"
        )
    if len(labels) == 2 and config.signal is None and "signal" not in labels:
        odd = next(
            i for i, s in enumerate(config.samples) if s.label not in ("background", DATA_LABEL)
        )
        raise ValueError(
            f"the labels {labels} make two classes and none is 'signal': label signal samples "
            f"'signal' (samples[{odd}].label is {config.samples[odd].label!r}), or name the "
            "signal class with 'signal: NAME'"
        )
    signal = config.signal_classes
    unknown = [c for c in signal if c not in labels]
    if unknown:
        raise ValueError(f"'signal' names {unknown}, which no sample has; labels are {labels}")
    if len(labels) == 2 and len(signal) != 1:
        raise ValueError(f"with two classes 'signal' must name one of them {labels}")
    if len(labels) > 2 and len(signal) == len(labels):
        raise ValueError("'signal' names every class; leave at least one as background")
    if len(labels) > 2:  # one score branch per class: score_<model>_<class>
        seen: dict[str, str] = {}
        for label in labels:
            first = seen.setdefault(branch_safe(label), label)
            if first != label:
                raise ValueError(
                    f"the classes {first!r} and {label!r} would both be written to the score "
                    f"branch score_<model>_{branch_safe(label)} (characters other than letters, "
                    "digits and _ become _); rename one of them in the samples' 'label:'"
                )


def _check_result(config: PipelineConfig, result: ResultConfig) -> None:
    """The names in ``result:`` exist in the pipeline, and what it asks for can be done."""
    samples = [s.name for s in config.simulated_samples]
    labels = list(dict.fromkeys(s.label for s in config.simulated_samples))
    names = result.signal_names or []
    unknown = [n for n in names if n not in samples + labels]
    if unknown:
        raise ValueError(
            f"result.signal names {with_hints(unknown, samples + labels)}, which is neither "
            f"a class {labels} nor a sample {samples}"
        )
    # mu scales what the discriminant was trained to find: samples of the signal class(es)
    signal = config.signal_classes
    wrong = [
        s for s in config.samples if (s.name in names or s.label in names) and s.label not in signal
    ]
    if wrong:
        shown = ", ".join(f"{s.name!r} (class {s.label!r})" for s in wrong)
        allowed = [s.name for s in config.samples if s.label in signal]
        raise ValueError(
            f"result.signal scales {shown} by mu, but the models are trained to find the "
            f"signal class(es) {signal}; name samples of those classes {allowed} or the "
            "classes themselves, or change the pipeline's 'signal:'"
        )
    simulated = [s.name for s in config.simulated_samples]
    unknown = [n for n in result.systematics.normsys if n not in simulated]
    if unknown:
        raise ValueError(f"result.systematics.normsys names {unknown}; samples are {simulated}")
    for name, shape in result.systematics.shapes.items():
        unknown = [n for n in shape.sample_names or [] if n not in simulated]
        if unknown:
            raise ValueError(
                f"result.systematics.shapes.{name} names {with_hints(unknown, simulated)}; "
                f"simulated samples are {simulated}"
            )
    varied = [name for name, shape in result.systematics.shapes.items() if shape.inputs]
    if varied and config.event_id is None:
        scored = (
            "scored by the average of all fold models, also those trained on their nominal twins"
            if config.split.method == "kfold"
            else "counted even where their nominal twins were trained on"
        )
        raise ValueError(
            f"result.systematics.shapes {varied}: varied files need the pipeline's 'event_id: "
            "BRANCH' (each event's number, the same in the nominal and varied files, e.g. "
            f"'event'); without it their events are {scored}, and the shape uncertainty "
            "comes out wrong. Add 'event_id:' and train again"
        )
    split = result.channel_split
    if "nodes" in split and not config.multiclass:
        raise ValueError(
            "result.channels 'nodes' needs a multi-class model (more than two classes); a "
            "two-class model has one output: use 'single' or 'categories'"
        )
    if "categories" in split and not config.categories:
        raise ValueError("result.channels 'categories' needs the pipeline's 'categories:'")
    if result.unblind and not config.data_samples:
        raise ValueError(
            "result.unblind needs recorded data: a sample with 'label: data' (its files are "
            "scored and binned as the observation)"
        )


def _check_categories(categories: list[CategoryConfig]) -> None:
    names = [c.name for c in categories]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"'categories' needs at least one entry and unique names, got {names}")
    for category in categories:
        try:
            parse(category.selection)
        except InputDataError as err:
            raise ValueError(f"category {category.name!r}: {err}") from None


def _whole_zoo() -> dict[str, dict[str, Any]]:
    """Every installed model of the zoo with default parameters (the dnn only with the
    ``dnn`` extra); the zoo is listed once, in models."""
    from hepclf.models import installed_models

    return {name: {} for name in installed_models()}
