"""The pipeline YAML: one analysis described as data, validated with pydantic.

Everything downstream (ingest, split, normalisation, the zoo, tracking, scoring) reads
its settings from :class:`PipelineConfig`, so the keys here are a contract.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hepclf.errors import ConfigError, InputDataError
from hepclf.events.expressions import parse
from hepclf.files import close_matches, with_hints

RESERVED_COLUMNS = ("label", "weight", "sample", "event_id")
DATA_LABEL = "data"
"""The label of recorded data: never trained on; the physics result's observation."""

MAX_LEADING = 1000
"""The most objects ``leading: N`` keeps per feature (N columns each): beyond, the table
and its validation grow without bound for columns that would all be padding."""
_NOT_IN_BRANCH = re.compile(r"[^A-Za-z0-9_]")


def branch_safe(name: str) -> str:
    """``name`` with every character other than a letter, digit or ``_`` as ``_``: the part
    of an output branch (``score_<model>_<class>``) a label or class name becomes."""
    return _NOT_IN_BRANCH.sub("_", name)


class _Strict(BaseModel):
    # a field's docstring is its description: the configuration reference is built from them
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class StoredSumWeights(_Strict):
    """Where the files keep the sum of weights of all generated events, e.g. NanoAOD's tree
    ``Runs`` with ``genEventSumw``: the branch is summed over every entry of that tree in
    every file of the sample (one entry per file or per job)."""

    tree: str = "Runs"
    """the tree that keeps the sums (one entry per file or job)"""
    branch: str = "genEventSumw"
    """the branch with the generated sum of weights, summed over every entry"""


class SampleConfig(_Strict):
    """One physics process: its files (globs allowed), tree and class label.

    ``label`` names the sample's class: ``signal``/``background`` for the usual two-class
    problem, or any class name (``ttH``, ``ttbb``, ...) for a multi-class one. ``data``
    marks recorded data: it is not a class, not trained on nor evaluated, only scored and
    binned as the observation of the physics result (``result: {unblind: true}``).

    An event's weight is ``weight × scale / sum_weights``. For expected events,
    ``scale`` is σ × BR × L and ``sum_weights`` the sum of the generator weights of all
    generated events (Σw, not the number of events: with negative or varying weights the
    two differ); with ``result.luminosity`` set, leave L out of ``scale``.
    """

    name: str
    """unique sample name, kept in the table's `sample` column"""
    files: list[str] = Field(min_length=1)
    """files or globs, relative to the pipeline file's folder; globs expand in sorted order"""
    tree: str = "Events"
    """the TTree or RNTuple that holds the events"""
    label: str = Field(min_length=1)
    """`signal`, `background`, or a class name (multi-class)"""
    weight: str | None = None
    """per-event weight: a branch or an expression (default 1)"""
    scale: float = 1.0
    """factor of every event: σ × BR × L (L left out when `result.luminosity` gives it),
    divided by the generated Σw unless `sum_weights` gives that"""
    sum_weights: float | StoredSumWeights | Literal["all_events"] | None = None
    """Σw of all generated events, which the weights are divided by: a number, `{tree,
    branch}` stored in the files (NanoAOD: `{tree: Runs, branch: genEventSumw}`), or
    `all_events`: the weight summed over every entry of the files before any selection"""
    selection: str | None = None
    """a cut for this sample only, ANDed with the top-level `selection`"""

    @field_validator("sum_weights")
    @classmethod
    def _positive_sum(cls, value: Any) -> Any:
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"sum_weights must be positive, got {value}")
        return value

    @field_validator("files", mode="before")
    @classmethod
    def _one_file_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class FeatureConfig(_Strict):
    """One input feature: a branch, an expression, or the leading N objects of a jagged one."""

    name: str
    """the column name (for `leading: N`: `NAME_0` ... `NAME_{N-1}`)"""
    branch: str | None = None
    """a branch taken as it is (a plain string feature means this)"""
    expr: str | None = None
    """an expression giving one number per event, e.g. `sum(Jet_pt)`"""
    leading: int | None = Field(default=None, ge=1, le=MAX_LEADING)
    """keep the first N objects of a jagged branch as N columns (at most 1000)"""
    pad: float = 0.0
    """the value of missing objects (fewer than `leading`)"""
    fill: float | None = None  # max/min/mean of an empty list; None: the pad value
    """what `max`/`min`/`mean` of no objects give in `expr` (default: `pad`)"""
    sort_by: str | None = None
    """an expression per object that orders the objects before `leading` takes the first"""
    descending: bool = True
    """the order of `sort_by`"""

    @model_validator(mode="after")
    def _one_source(self) -> FeatureConfig:
        if (self.branch is None) == (self.expr is None):
            raise ValueError(f"feature {self.name!r} needs exactly one of 'branch' or 'expr'")
        if self.sort_by is not None and self.leading is None:
            raise ValueError(f"feature {self.name!r}: 'sort_by' only applies with 'leading: N'")
        return self

    @property
    def empty_value(self) -> float:
        """What ``max``/``min``/``mean`` of an empty list give in this feature's expression."""
        return self.pad if self.fill is None else self.fill

    @property
    def columns(self) -> list[str]:
        """Names of the table columns this feature produces."""
        if self.leading is None:
            return [self.name]
        return [f"{self.name}_{i}" for i in range(self.leading)]


class SplitConfig(_Strict):
    """How events are divided into training, validation (early stopping) and test parts.

    ``kfold`` trains ``folds`` models, each on the other folds, and scores every event with
    the model that did not train on it (folds by ``event_id % folds`` when the pipeline has
    ``event_id``, else a seeded random assignment); ``folds`` defaults to 5 there, 2 else.
    """

    method: Literal["random", "event_id", "kfold"] = "random"
    """`random` (seeded, stratified), `event_id` (`event_id % folds == test_fold` is test) or
    `kfold`"""
    test_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    """share of events in the test part (`random`)"""
    validation_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    """share of the non-test events held out for early stopping"""
    seed: int = 42
    """seed of the split (the models have the top-level `seed`)"""
    folds: int = Field(default=2, ge=2)
    """number of folds (`event_id`, `kfold`; 5 for `kfold` when not given)"""
    test_fold: int = Field(default=0, ge=0)
    """the fold that is the test part (`event_id`)"""

    @model_validator(mode="before")
    @classmethod
    def _kfold_default_folds(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") == "kfold" and "folds" not in data:
            return {**data, "folds": 5}
        return data

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.test_fold >= self.folds:
            raise ValueError(f"test_fold must be below folds ({self.folds}), got {self.test_fold}")
        return self


class NormalizationConfig(_Strict):
    """Feature scaling fitted on the training part only."""

    method: Literal["standard", "minmax", "robust", "none"] = "standard"
    """feature scaling, fitted on the training part and saved inside every model"""
    clip: float | None = Field(default=None, gt=0.0)
    """limit scaled values to ±clip"""


class TuneConfig(_Strict):
    """Budgeted hyperparameter search (Optuna) run before the final fit of each model.

    The objective is the cross-validated AUC on the training events only; trials stop at
    ``timeout_s`` or after ``trials``. The study is kept in SQLite (``storage``, default
    ``hepclf_tuning.db`` beside the tracking store), so an interrupted search resumes.
    """

    timeout_s: float = Field(default=300.0, gt=0.0)
    """wall-clock budget of the search per model, in seconds"""
    trials: int | None = Field(default=None, ge=1)
    """stop after this many trials (default: only the time budget)"""
    folds: int = Field(default=3, ge=2)
    """cross-validation folds of the objective (training events only)"""
    models: list[str] | None = None
    """the models to tune (default: every model of `models:`)"""
    storage: str | None = None
    """Optuna storage URL (default: `hepclf_tuning.db` beside the tracking store)"""
    pruning: bool = True
    """stop unpromising trials early (median pruner)"""


class EvaluationConfig(_Strict):
    """Evaluation and model-selection settings.

    ``skip_flagged``: pass over models flagged over-trained when choosing the champion.
    Default: yes for a single split (their test figures may be optimistic), no under
    k-fold, whose out-of-fold figures are honest; the flag is reported either way.
    """

    ks_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)
    """a KS p-value below this flags the model as overtrained"""
    ks_bins: int | None = Field(default=40, ge=2)
    """bins of ROOT's binned KS test; `null`: the unbinned test"""
    select_metric: str = "auc_test"
    """the `metrics.json` key that picks the best model"""
    skip_flagged: bool | None = None
    """pass over models flagged over-trained for the champion (default: yes, but not under
    k-fold)"""


class _Finite(_Strict):
    """Numbers of the physics result: NaN and ±inf are refused (they would reach the fit and
    be written to JSON as ``Infinity``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class BinningConfig(_Finite):
    """Bins of the discriminant for the physics result: fixed ``edges`` or automatic.

    Automatic binning starts from ``bins`` bins of equal expected signal and merges them,
    from the highest score down, until every bin has at least ``min_background_events``
    background MC events, a relative MC statistical uncertainty of the background of at
    most ``max_background_stat``, an expected background of at least
    ``min_background_yield`` events (where b << 1 the asymptotic formulas are optimistic),
    and no negative sample yield. Fixed edges below ``min_background_yield`` get a warning.
    """

    edges: list[float] | None = Field(default=None, min_length=2)
    """fixed bin edges of the discriminant (default: automatic)"""
    bins: int = Field(default=10, ge=1)
    """automatic: start from this many bins of equal expected signal"""
    min_background_events: int = Field(default=10, ge=1)
    """automatic: merge until every bin has this many background MC events"""
    max_background_stat: float = Field(default=0.2, gt=0.0)
    """automatic: ... and a relative background MC uncertainty of at most this"""
    min_background_yield: float = Field(default=3.0, ge=0.0)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"binning edges must increase strictly, got {value}")
        return value


class VariedFiles(_Strict):
    """A sample's files produced with a systematic variation (e.g. jet energy scale up)."""

    files: list[str] = Field(min_length=1)
    tree: str | None = None  # default: the nominal sample's tree

    @field_validator("files", mode="before")
    @classmethod
    def _one_file_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class VariedInputs(_Strict):
    """The up and (optional) down variation of one sample."""

    up: VariedFiles
    down: VariedFiles | None = None


class ShapeConfig(_Strict):
    """A shape uncertainty: HistFactory ``histosys`` plus its normalisation part ``normsys``.

    Either weight variations, ``up``/``down`` expressions over a sample's branches giving a
    per-event factor on the nominal weight (``samples``: those it applies to, default all),
    or alternative ``inputs`` per sample, scored with the same model. A missing ``down`` is
    the mirror image of ``up`` around the nominal. ``prune``: drop the shape part where it
    is compatible with MC statistical noise (chi2 p-value above ``prune_pvalue``).
    """

    up: str | None = None
    down: str | None = None
    samples: list[str] | None = None
    inputs: dict[str, VariedInputs] | None = None
    prune: bool = True
    prune_pvalue: float = Field(default=0.05, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_source(self) -> ShapeConfig:
        if (self.up is None) == (self.inputs is None):
            raise ValueError("a shape needs exactly one of 'up' (weight factor) or 'inputs'")
        if self.inputs is not None and (self.down is not None or self.samples is not None):
            raise ValueError("with 'inputs', 'down' and 'samples' go inside inputs.<sample>")
        for expression in (self.up, self.down):
            if expression is not None:
                try:
                    parse(expression)
                except InputDataError as err:
                    raise ValueError(str(err)) from None
        return self

    @property
    def sample_names(self) -> list[str] | None:
        """The samples it varies (None: every simulated sample)."""
        return list(self.inputs) if self.inputs is not None else self.samples


class SystematicsConfig(_Finite):
    """Uncertainties of the physics result; MC statistics (staterror) are always included.

    ``normsys``: per-sample normalisation uncertainty, relative (0.1 = ±10 %) or
    ``[down, up]``. ``background``: one flat, shape-free relative uncertainty on all
    background samples together (a single correlated normalisation nuisance).
    ``shapes``: named shape uncertainties (:class:`ShapeConfig`), one nuisance each,
    correlated across samples and channels.
    """

    normsys: dict[str, float | tuple[float, float]] = Field(default_factory=dict)
    """sample name -> relative normalisation uncertainty (0.1 or [down, up])"""
    background: float = Field(default=0.0, ge=0.0, lt=1.0)
    """one correlated relative normalisation uncertainty on all backgrounds"""
    shapes: dict[str, ShapeConfig] = Field(default_factory=dict)

    @field_validator("shapes")
    @classmethod
    def _shape_names(cls, value: dict[str, ShapeConfig]) -> dict[str, ShapeConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(
                    f"shape name {name!r} must be letters, digits and _ (it names histograms "
                    "such as ttbar_<name>Up)"
                )
        return value

    @field_validator("normsys")
    @classmethod
    def _fractions(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, size in value.items():
            sizes = size if isinstance(size, tuple) else (size,)
            if not all(0.0 <= s < 1.0 for s in sizes):
                raise ValueError(f"normsys of {name!r} must be a fraction in [0, 1), got {size}")
        return value


class ResultConfig(_Finite):
    """Expected physics result per model (pyhf): discovery significance and limit on mu.

    Expected yield of an event = weight × sample ``scale`` ÷ ``sum_weights`` ×
    ``luminosity`` ÷ the fraction of its sample that was evaluated (the test part; 1 with
    out-of-fold scores).
    ``signal`` lists the classes or samples scaled by the signal strength ``mu``
    (default: the pipeline's signal class), all of the signal class(es): those are what
    the discriminant is trained to find. Every other sample is background.

    ``channels``: ``single`` (one channel on the signal score, or Σ P(signal classes)),
    ``nodes`` (multi-class: one channel per output node, each event in the node of its
    highest output, binned in that output; CMS ttH(bb)), ``categories`` (one channel per
    analysis category) or ``[categories, nodes]``. ``unblind``: fit the ``data`` samples
    (observed Z0, limit, post-fit yields) for the champion; else everything is expected.
    ``impacts``: pulls and impacts of the nuisance parameters for the champion. ``toys``:
    that many pseudo-experiments per hypothesis for the champion's Z0 and limit (0: off).
    """

    luminosity: float = Field(default=1.0, gt=0.0)
    """multiplies every event weight (e.g. fb⁻¹ when `scale` is σ × BR in fb)"""
    signal: str | list[str] | None = None
    """classes or samples scaled by the signal strength mu (default: the signal class)"""
    channels: Literal["single", "nodes", "categories"] | list[Literal["categories", "nodes"]] = (
        "single"
    )
    binning: BinningConfig = BinningConfig()
    """the bins of the discriminant"""
    systematics: SystematicsConfig = SystematicsConfig()
    """uncertainties beyond MC statistics"""
    unblind: bool = False
    impacts: bool = False
    toys: int = Field(default=0, ge=0)

    @property
    def signal_names(self) -> list[str] | None:
        return [self.signal] if isinstance(self.signal, str) else self.signal

    @property
    def channel_split(self) -> frozenset[str]:
        """What splits events into channels: {} (one channel), {'nodes'}, {'categories'}."""
        chosen = [self.channels] if isinstance(self.channels, str) else self.channels
        return frozenset(c for c in chosen if c != "single")


class CategoryConfig(_Strict):
    """One analysis category: events passing ``selection`` get their own model (TMVA Category)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """the category name (an identifier)"""
    selection: str
    """the events of this category; every event must pass exactly one"""


class PipelineConfig(_Strict):
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


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _whole_zoo() -> dict[str, dict[str, Any]]:
    """Every installed model of the zoo with default parameters (the dnn only with the
    ``dnn`` extra); the zoo is listed once, in models."""
    from hepclf.models import installed_models

    return {name: {} for name in installed_models()}


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """A hint for a misspelt key: the closest key allowed where it stands, or the list."""
    model: Any = PipelineConfig
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item) if isinstance(model, type) else None
        if field is None:
            return ""
        model = _model_in(field.annotation)
        if model is None:
            return ""
    allowed = [k for k in model.model_fields if k != "base_dir"]
    found = close_matches(str(loc[-1]), allowed, n=1)
    return f"; did you mean '{found[0]}'?" if found else f"; allowed here: {', '.join(allowed)}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def parse_pipeline(
    data: Any, source: str = "<pipeline>", base_dir: Path | None = None
) -> PipelineConfig:
    """Validate a mapping as a pipeline, turning pydantic errors into one readable message."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of pipeline keys, got {type(data).__name__}"
        )
    try:
        return PipelineConfig.model_validate({**data, "base_dir": base_dir or Path(".")})
    except ConfigError as err:  # a model's parameters (see _known_model_params)
        raise ConfigError(f"{source}: models: {err}") from None
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = tuple(x for x in e["loc"] if x not in ("function-after",))
            where = _format_location(loc)
            got = e.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            hint = _did_you_mean(loc) if e["type"] == "extra_forbidden" else ""
            lines.append(f"  - {where}: {e['msg']}{shown}{hint}")
        raise ConfigError(
            f"{source}: the pipeline is not valid:\n"
            + "\n".join(lines)
            + "\nSee pipelines/demo.yaml for a complete, commented example."
        ) from None


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML; relative file patterns resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found; give the path to a pipeline YAML")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_pipeline(data, source=str(path), base_dir=path.parent.resolve())
