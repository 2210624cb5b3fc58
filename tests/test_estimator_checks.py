"""scikit-learn's own estimator checks on the zoo (all but the dnn, too slow for them).

Passing them is what lets ``clone``, ``cross_val_score``, ``GridSearchCV`` and
``CalibratedClassifierCV`` take a zoo model. The few checks a model cannot pass are listed
with the reason, so a new failure anywhere else fails this test.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.utils.estimator_checks import parametrize_with_checks

from hepclf.models import Classifier, build_model

# small, fast settings: the checks fit each estimator dozens of times on tiny data
ESTIMATORS = [
    build_model("bdt", {"n_trees": 10}, seed=0),
    build_model(
        "xgb",
        {"n_estimators": 50, "learning_rate": 0.3, "min_child_weight": 1, "n_jobs": 1},
        seed=0,
    ),
    build_model("rf", {"n_estimators": 10, "n_jobs": 1}, seed=0),
    build_model("svm", {"n_components": 50}, seed=0),
    build_model("linear", {}, seed=0),
]

WEIGHT_EQUIVALENCE = "check_sample_weight_equivalence_on_dense_data"
# checks a model cannot pass, and why (any other failing check fails this test)
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "bdt": {
        WEIGHT_EQUIVALENCE: "the cut grid is the quantiles of the events (as TMVA bins "
        "events), so a repeated event moves the cuts where weight 2 does not"
    },
    "xgb": {
        WEIGHT_EQUIVALENCE: "subsample draws events at random, and repeated events change the "
        "validation split carved for early stopping",
    },
    "rf": {
        WEIGHT_EQUIVALENCE: "bootstrap samples draw events, not weights (as scikit-learn's "
        "own RandomForestClassifier)"
    },
    "svm": {
        WEIGHT_EQUIVALENCE: "the k-means landmarks count a repeated event twice (repeats "
        "shift the centres) and liblinear's solver stops at a tolerance"
    },
    "linear": {
        WEIGHT_EQUIVALENCE: "Fisher is weight-equivalent in exact arithmetic; on the "
        "check's near-singular data the two fits agree to ~1e-7 relative, at its rtol"
    },
}


def expected_failed_checks(estimator: Classifier) -> dict[str, str]:
    return EXPECTED_FAILURES.get(estimator.name, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator: Classifier, check: Callable) -> None:
    check(estimator)
