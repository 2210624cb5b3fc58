"""The expected physics result of a classifier: HistFactory fit of its binned output (pyhf).

For each model the events are routed into channels (:mod:`.channels`: one, per output
node, per category), each channel's discriminant is binned (:mod:`.binning`), filled into
one template per sample with its shape variations (:mod:`.templates`, yields from
:mod:`.yields`, variations from :mod:`.inputs`), turned into a pyhf workspace with the
configured systematics (:mod:`.workspace`, :mod:`.shapes`), and fitted for the expected
discovery significance and the expected CLs limit on the signal strength
(:mod:`.inference`), per channel and combined (:mod:`.analysis`). The champion alone gets
observed results on data, impacts and toys (:mod:`.champion`, :mod:`.toys`). :mod:`.io`
writes workspace.json, templates.root, the plots and result.json.
"""

from hepclf.physics.analysis import PhysicsResult, physics_result
from hepclf.physics.inference import ExpectedLimit, expected_limit, expected_significance
from hepclf.physics.templates import Templates, build_templates
from hepclf.physics.yields import (
    EvaluatedEvents,
    evaluated_fractions,
    events_for_result,
    expected_yields,
    signal_samples,
)

__all__ = [
    "EvaluatedEvents",
    "ExpectedLimit",
    "PhysicsResult",
    "Templates",
    "build_templates",
    "evaluated_fractions",
    "events_for_result",
    "expected_limit",
    "expected_significance",
    "expected_yields",
    "physics_result",
    "signal_samples",
]
