"""From event weights to expected yields: the rule that makes a template a prediction.

An evaluated event stands for ``weight × scale / sum_weights × luminosity`` expected events
of its sample (the table's weight already holds ``scale`` (σ × BR) divided by the generated
sum of weights),
divided by the fraction of that sample that was evaluated. With a test part of half the
events every test event counts twice; with out-of-fold scores (every event scored by a
model that did not train on it) the fraction is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.result import ResultConfig
from hepclf.runtime.errors import ConfigError, InputDataError
from hepclf.training.weights import evaluated_fractions, expected_yields

__all__ = [
    "EvaluatedEvents",
    "Scored",
    "VariedEvents",
    "evaluated_fractions",
    "events_for_result",
    "expected_yields",
    "require_evaluated_samples",
    "signal_samples",
]


@dataclass(frozen=True, eq=False)
class VariedEvents:
    """Scored events outside the nominal samples (a systematic variation's files, data):
    the discriminant and the expected events each stands for (data: its weight, 1)."""

    score: np.ndarray
    expected: np.ndarray

    def subset(self, mask: np.ndarray, score: np.ndarray | None = None) -> VariedEvents:
        chosen = self.score[mask] if score is None else score[mask]
        return VariedEvents(np.asarray(chosen, np.float64), self.expected[mask])


@dataclass(frozen=True, eq=False)
class Scored:
    """Events scored by a model, before they are routed into channels: the model's outputs
    (signal score or one column per class), expected events per event, categories."""

    scores: np.ndarray
    expected: np.ndarray
    category: np.ndarray | None


@dataclass(frozen=True, eq=False)
class EvaluatedEvents:
    """The events a model was evaluated on, with what the physics result needs of them.

    ``score`` is the discriminant, ``expected`` the expected number of events each one
    stands for, ``sample`` an index into ``sample_names``; ``signal`` names the samples
    scaled by the signal strength mu. Shape uncertainties: ``factors[shape]`` holds the
    per-event (up, down) factors on ``expected`` of a weight variation (down None: mirrored),
    ``varied[shape][sample]`` the (up, down) events of an alternative input.
    """

    score: np.ndarray
    expected: np.ndarray
    sample: np.ndarray
    sample_names: list[str]
    signal: list[str]
    factors: Mapping[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    varied: Mapping[str, Mapping[str, tuple[VariedEvents, VariedEvents | None]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        n = self.score.shape
        if self.score.ndim != 1 or self.expected.shape != n or self.sample.shape != n:
            raise ValueError(
                f"score {self.score.shape}, expected {self.expected.shape} and sample "
                f"{self.sample.shape} must be 1-D arrays of one length"
            )
        if not np.isfinite(self.score).all():
            raise InputDataError("the discriminant has non-finite scores (NaN or inf)")
        unknown = [s for s in self.signal if s not in self.sample_names]
        if unknown or not self.signal:
            raise ConfigError(
                f"signal sample(s) {unknown or self.signal} are not among the samples "
                f"{self.sample_names}; set result.signal to a class or sample name"
            )
        present = {self.sample_names[i] for i in np.unique(self.sample)}
        if not present & set(self.signal):
            raise InputDataError(
                f"no evaluated event belongs to the signal sample(s) {self.signal}; the "
                "evaluated part holds only "
                f"{sorted(present)}. Check result.signal, the selection and the split."
            )
        if not present - set(self.signal):
            raise InputDataError(
                f"no evaluated event is background: only the signal sample(s) {self.signal} "
                "were evaluated; a result needs at least one background sample"
            )

    @property
    def is_signal(self) -> np.ndarray:
        """Per-event flag: the event belongs to a sample scaled by mu."""
        codes = [self.sample_names.index(s) for s in self.signal]
        return np.isin(self.sample, codes)


def require_evaluated_samples(
    fractions: np.ndarray, sample_all: np.ndarray, weight_all: np.ndarray, names: Sequence[str]
) -> None:
    """A sample with weight but no evaluated event would drop out of the templates and make
    the result optimistic: refuse it, naming the sample and the cure."""
    weight = np.bincount(sample_all, weights=np.abs(weight_all), minlength=len(names))
    missing = [names[i] for i in np.flatnonzero((fractions == 0) & (weight > 0))]
    if missing:
        raise InputDataError(
            f"sample(s) {missing} have events but none among the evaluated (test) events: "
            "every one of them landed in training, so they would drop out of the templates "
            "and the result would be optimistic. Use `split: {method: kfold}` (every event "
            "is evaluated out of fold) or a larger split.test_fraction, or check the "
            "event-id folds of the 'event_id' split"
        )


def signal_samples(config: PipelineConfig, result: ResultConfig) -> list[str]:
    """Samples scaled by mu: ``result.signal`` (classes or samples), else the signal class."""
    names = result.signal_names or config.signal_classes
    return [s.name for s in config.samples if s.name in names or s.label in names]


def events_for_result(
    config: PipelineConfig,
    score: np.ndarray,
    weight: np.ndarray,
    sample: np.ndarray,
    sample_names: Sequence[str],
    fractions: np.ndarray,
) -> EvaluatedEvents:
    """The evaluated events of a pipeline as the physics result sees them."""
    result = config.result or ResultConfig()
    return EvaluatedEvents(
        score=np.asarray(score, np.float64),
        expected=expected_yields(weight, sample, fractions, result.luminosity),
        sample=np.asarray(sample),
        sample_names=list(sample_names),
        signal=signal_samples(config, result),
    )
