"""The classifier zoo: interface, save/load, parameter errors, and each model's own promises."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import numpy as np
import pytest
import xgboost
from scipy.stats import ks_2samp
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from hepclf.models import MODEL_TYPES, build_model, compiled_trees, load_model
from hepclf.models.bdt import BDT
from hepclf.runtime.errors import ConfigError

# small settings per model so the whole file runs in seconds
FAST = {
    "dnn": {"layers": [32, 32], "epochs": 4, "ensemble": 2, "batch_size": 128, "dropout": 0.1},
    "bdt": {"n_trees": 60},
    # one thread: tiny fits only lose to thread start-up, badly so on a busy machine
    "xgb": {"n_estimators": 60, "learning_rate": 0.3, "early_stopping_rounds": 10, "n_jobs": 1},
    "rf": {"n_estimators": 30},
    "svm": {},
    "linear": {},
}


@pytest.fixture(scope="module")
def data():
    """Train / validation / test splits of a moderately hard 10-feature problem."""
    X, y = make_classification(
        3000,
        10,
        n_informative=6,
        n_redundant=2,
        flip_y=0.05,
        class_sep=0.8,
        shuffle=False,
        random_state=3,
    )
    order = np.random.default_rng(0).permutation(len(y))  # rows only: features stay in place
    X, y = X[order], y[order]
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return (X[:1600], y[:1600]), (X[1600:2000], y[1600:2000]), (X[2000:], y[2000:])


@pytest.fixture(scope="module")
def fitted(data):
    """Every model type fitted once with its FAST settings."""
    (X, y), (X_val, y_val), _ = data
    return {
        name: build_model(name, FAST[name], seed=7).fit(X, y, X_val=X_val, y_val=y_val)
        for name in MODEL_TYPES
    }


def test_registry_lists_all_models():
    assert set(MODEL_TYPES) == {"dnn", "bdt", "xgb", "rf", "svm", "linear"}
    with pytest.raises(ConfigError, match=r"'gbdt'.*bdt, dnn, linear, rf, svm, xgb"):
        build_model("gbdt", None, seed=1)


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_unknown_parameter_names_key_model_and_allowed(name):
    with pytest.raises(ConfigError) as err:
        build_model(name, {"n_treez": 5}, seed=1)
    message = str(err.value)
    assert "n_treez" in message and f"'{name}'" in message
    assert all(key in message for key in MODEL_TYPES[name].Params.model_fields)


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_defaults_validate_and_are_reported(name):
    model = build_model(name, None, seed=1)
    assert model.hyperparameters == MODEL_TYPES[name].Params().model_dump()
    assert model.get_params()["seed"] == 1
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.predict_proba(np.zeros((2, 10), np.float32))


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_init_defaults_equal_the_documented_params(name):
    """One keyword per ``Params`` field plus ``seed``, with the same defaults (scikit-learn
    stores them unchanged; the YAML documents ``Params``)."""
    cls = MODEL_TYPES[name]
    signature = inspect.signature(cls.__init__).parameters
    assert set(signature) - {"self"} == {*cls.Params.model_fields, "seed"}
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for k, p in signature.items() if k != "self"
    )
    assert cls().hyperparameters == cls.Params().model_dump()


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match="max_depth"):
        build_model("bdt", {"max_depth": "deep"}, seed=1)


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_fit_predict_separates(name, fitted, data):
    X, y = data[2]
    proba = fitted[name].predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y, proba[:, 1]) > 0.85


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_save_load_round_trip_is_identical(name, fitted, data, tmp_path):
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    X = data[2][0]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.history_ == model.history_ and loaded.device_ == model.device_
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.n_features_in_ == model.n_features_in_ == 10
    if getattr(model, "feature_importances_", None) is None:
        assert getattr(loaded, "feature_importances_", None) is None
    else:
        np.testing.assert_array_equal(loaded.feature_importances_, model.feature_importances_)


def test_load_with_wrong_class_is_refused(fitted, tmp_path):
    fitted["linear"].save(tmp_path)
    with pytest.raises(ConfigError, match="'linear' model"):
        BDT.load(tmp_path)


@pytest.mark.parametrize("name", ["bdt", "xgb", "rf", "linear"])
def test_feature_importances_find_the_informative_features(name, fitted):
    importances = fitted[name].feature_importances_
    assert importances.shape == (10,) and np.isclose(importances.sum(), 1.0)
    # make_classification puts the 8 informative/redundant features first, noise last
    assert importances[:8].sum() > 0.8


def test_learning_curves(fitted):
    assert len(fitted["dnn"].history_["loss"]) == 4
    assert {"val_loss", "val_auc"} <= set(fitted["dnn"].history_)
    bdt = fitted["bdt"].history_
    assert len(bdt["train_error"]) == len(bdt["val_error"]) == len(bdt["tree_error"]) > 0
    assert bdt["train_error"][-1] < bdt["train_error"][0]
    assert {"train_logloss", "val_logloss", "val_auc"} <= set(fitted["xgb"].history_)


def test_dnn_records_device(fitted):
    device = fitted["dnn"].device_
    assert device == "CPU" or device.startswith("GPU:")


@pytest.mark.parametrize("name", ["bdt", "xgb", "rf", "dnn"])
def test_same_seed_same_model(name, fitted, data):
    (X, y), (X_val, y_val), (X_test, _) = data
    again = build_model(name, FAST[name], seed=7).fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_array_equal(again.predict_proba(X_test), fitted[name].predict_proba(X_test))


def test_bdt_bagging_follows_the_seed(data):
    (X, y), _, (X_test, _) = data
    bagged = [BDT(seed=seed, n_trees=30, use_bagging=True).fit(X, y) for seed in (7, 7, 8)]
    scores = [model.predict_proba(X_test) for model in bagged]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.array_equal(scores[0], scores[2])


def test_bdt_matches_sklearn_adaboost(data):
    """Same boosting (discrete AdaBoost, alpha = beta*ln((1-err)/err)) and depth-3 trees:
    with a cut between every pair of training values and no minimum node size, the forest
    is scikit-learn's AdaBoost of depth-3 trees."""
    (X, y), _, (X_test, y_test) = data
    ours = BDT(seed=0, n_trees=300, beta=0.5, min_node_size=0, n_cuts=len(X)).fit(X, y)
    theirs = AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=3), n_estimators=300, learning_rate=0.5, random_state=0
    ).fit(X, y)
    auc_ours = roc_auc_score(y_test, ours.predict_proba(X_test)[:, 1])
    auc_theirs = roc_auc_score(y_test, theirs.decision_function(X_test))
    assert abs(auc_ours - auc_theirs) < 0.003
    np.testing.assert_allclose(ours.alpha_[:10], theirs.estimator_weights_[:10], rtol=1e-6)


def _leaves(model: BDT, X: np.ndarray) -> np.ndarray:
    """Leaf of every event in every tree (events, trees), routed through the public
    arrays (right when x >= threshold)."""
    n_trees, n_inner = model.feature_.shape
    node = np.zeros((len(X), n_trees), dtype=np.intp)
    trees = np.arange(n_trees)
    for d in range(int(np.log2(n_inner + 1))):
        heap = 2**d - 1 + node
        value = np.take_along_axis(X, model.feature_[trees, heap].astype(np.intp), axis=1)
        node = 2 * node + (value >= model.threshold_[trees, heap])
    return node


def test_bdt_min_node_size_is_a_count_or_a_fraction(data):
    (X, y), _, (X_test, _) = data
    as_count = BDT(seed=0, n_trees=40, min_node_size=80).fit(X, y)
    as_fraction = BDT(seed=0, n_trees=40, min_node_size=80 / len(X)).fit(X, y)
    np.testing.assert_array_equal(as_count.predict_proba(X_test), as_fraction.predict_proba(X_test))
    leaves = _leaves(as_count, X)
    counts = np.stack([np.bincount(leaves[:, t], minlength=8) for t in range(40)])
    assert ((counts == 0) | (counts >= 80)).all()  # an unsplit node leaves one leaf empty
    assert ((counts > 0) & (counts < 120)).any()  # the limit is reached, not just respected
    for bad in (0.7, 2.5):
        with pytest.raises(ConfigError, match=r"min_node_size.*whole number of events"):
            BDT(min_node_size=bad).fit(X, y)


def test_bdt_trains_on_every_event_unless_it_prunes(data):
    """Without pruning the pipeline's validation events train as well (uses_validation)."""
    assert not BDT().uses_validation
    assert BDT(prune_on_validation=True).uses_validation


def test_bdt_zero_weight_is_like_dropping_the_event(data):
    (X, y), _, (X_test, _) = data
    weights = np.ones(len(y))
    weights[::3] = 0.0
    keep = weights > 0
    weighted = BDT(seed=0, n_trees=40, use_bagging=False).fit(X, y, sample_weight=weights)
    dropped = BDT(seed=0, n_trees=40, use_bagging=False).fit(X[keep], y[keep])
    np.testing.assert_allclose(weighted.predict_proba(X_test), dropped.predict_proba(X_test))
    plain = BDT(seed=0, n_trees=40, use_bagging=False).fit(X, y)
    assert not np.allclose(plain.predict_proba(X_test), weighted.predict_proba(X_test))


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_upweighting_signal_raises_scores(name, fitted, data):
    (X, y), (X_val, y_val), (X_test, _) = data
    heavy = build_model(name, FAST[name], seed=7).fit(
        X, y, np.where(y == 1, 4.0, 1.0), X_val=X_val, y_val=y_val, w_val=np.where(y_val, 4.0, 1.0)
    )
    plain = fitted[name].predict_proba(X_test)[:, 1]
    assert heavy.predict_proba(X_test)[:, 1].mean() > plain.mean() + 0.05


def test_negative_weights_warn_and_train_on_absolute_values(data):
    (X, y), _, (X_test, _) = data
    weights = np.ones(len(y))
    weights[::10] = -1.0
    with pytest.warns(UserWarning, match=r"bdt: 160 events have negative weights; bdt trains"):
        model = BDT(seed=0, n_trees=40, use_bagging=False).fit(X, y, sample_weight=weights)
    absolute = BDT(seed=0, n_trees=40, use_bagging=False).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X_test), absolute.predict_proba(X_test))


def test_fisher_trains_on_signed_weights_as_weighted_least_squares():
    """negative_weights: keep means kept for Fisher: its direction is that of the weighted
    least-squares fit of the class label with the signed weights (an independent route to
    the same discriminant), and differs from the |w| fit."""
    import warnings

    rng = np.random.default_rng(5)
    n = 6000
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 3)) + np.outer(y, [1.0, 0.5, 0.0])
    w = rng.uniform(0.5, 1.5, n)
    w[(y == 0) & (X[:, 2] > 0.8)] *= -1  # negative weights where they move the covariance
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no |w| warning for Fisher
        signed = build_model("linear", {"method": "fisher"}, seed=0).fit(X, y, w)
    assert signed.keeps_signed_weights
    A = np.column_stack([np.ones(n), X])
    beta = np.linalg.solve(A.T @ (w[:, None] * A), A.T @ (w * y))
    cosine = signed.coef_[0] @ beta[1:] / np.linalg.norm(signed.coef_[0]) / np.linalg.norm(beta[1:])
    assert cosine == pytest.approx(1.0, abs=1e-9)
    absolute = build_model("linear", {"method": "fisher"}, seed=0).fit(X, y, np.abs(w))
    a = absolute.coef_[0]
    assert signed.coef_[0] @ a / np.linalg.norm(signed.coef_[0]) / np.linalg.norm(a) < 0.999
    logistic = build_model("linear", {"method": "logistic"}, seed=0)
    assert not logistic.keeps_signed_weights
    with pytest.warns(UserWarning, match=r"linear: \d+ events have negative weights"):
        logistic.fit(X, y, w)


def test_bdt_staged_error_ends_at_the_final_models_error(fitted, data, three_classes):
    """The held-out learning curve: after the last tree it is the error of the model."""
    (_, _), (_, _), (X_test, y_test) = data
    w = np.random.default_rng(2).uniform(0.5, 1.5, len(y_test))
    bdt = fitted["bdt"]
    staged = bdt.staged_error(X_test, y_test, w)
    assert staged.shape == (len(bdt.alpha_),)
    wrong = (bdt.decision_function(X_test) > 0) != (y_test == 1)
    assert staged[-1] == pytest.approx(w[wrong].sum() / w.sum())
    (X3, y3), _, (X3_test, y3_test) = three_classes
    multi = build_model("bdt", {"n_trees": 30}, seed=0).fit(X3, y3)
    staged3 = multi.staged_error(X3_test, y3_test)
    assert staged3[-1] == pytest.approx(np.mean(multi.predict(X3_test) != y3_test))
    assert staged3[0] > staged3[-1]


def test_svm_max_iter_is_a_parameter_and_its_warning_names_svm(data):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    (X, y), _, _ = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_model("svm", {"max_iter": 2, "n_components": 50}, seed=0).fit(X, y)
    messages = [str(w.message) for w in caught]
    assert any("svm: the linear SVM did not converge in max_iter=2" in m for m in messages)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_importances_say_which_importance(name, fitted):
    has = getattr(fitted[name], "feature_importances_", None) is not None
    assert bool(fitted[name].importance_type) == has


def test_overtraining_configuration_exists_and_regularised_forest_generalises():
    """Kolmogorov-Smirnov train-vs-test: the fully grown forest fails, one with 1 % leaves and
    half-size bootstraps not (the default, 10-event leaves, sits between: README "Defaults")."""
    X, y = make_classification(8000, 10, n_informative=6, flip_y=0.05, random_state=3)
    X, half = X.astype(np.float32), len(y) // 2

    def ks_pvalues(params):
        model = build_model("rf", {"n_estimators": 30, **params}, seed=0).fit(X[:half], y[:half])
        train, test = (model.predict_proba(part)[:, 1] for part in (X[:half], X[half:]))
        return [
            ks_2samp(train[y[:half] == label], test[y[half:] == label]).pvalue for label in (0, 1)
        ]

    assert max(ks_pvalues({"min_samples_leaf": 1, "max_samples": None})) < 1e-20
    assert min(ks_pvalues({"min_samples_leaf": 0.01, "max_samples": 0.5})) > 1e-4


def test_fisher_equals_lda_without_weights(data):
    (X, y), _, (X_test, _) = data
    ours = build_model("linear", {"method": "fisher"}, seed=0).fit(X, y)
    lda = LinearDiscriminantAnalysis().fit(X, y)
    np.testing.assert_allclose(
        ours.predict_proba(X_test), lda.predict_proba(X_test), rtol=1e-5, atol=1e-6
    )


def test_logistic_method(data):
    (X, y), _, (X_test, y_test) = data
    model = build_model("linear", {"method": "logistic"}, seed=0).fit(X, y)
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.85


def test_svm_subsamples_above_cap_and_approximates(data):
    (X, y), (X_val, y_val), (X_test, y_test) = data
    with pytest.warns(UserWarning, match="subsample of 500"):
        build_model("svm", {"max_train_events": 500}, seed=0).fit(X, y)
    approx = build_model("svm", {"approximate": True, "n_components": 200}, seed=0)
    approx.fit(X, y, X_val=X_val, y_val=y_val)
    assert roc_auc_score(y_test, approx.predict_proba(X_test)[:, 1]) > 0.85


def test_inputs_are_checked(data):
    (X, y), _, _ = data
    with pytest.raises(ValueError, match="at least two classes"):
        BDT().fit(X, np.ones_like(y))
    with pytest.raises(ValueError, match="NaN"):
        BDT().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="continuous"):
        BDT().fit(X, y + 0.5)


def test_bdt_does_not_import_tensorflow():
    code = (
        "import sys, numpy as np\n"
        "from hepclf.models import build_model\n"
        "X = np.random.default_rng(0).normal(size=(200, 3)).astype('float32')\n"
        "build_model('bdt', {'n_trees': 5}, seed=0).fit(X, (X[:, 0] > 0).astype(int))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bdt_keeps_the_shortest_prefix_on_the_validation_plateau(data):
    """The pruned forest is the full forest cut at the first tenth tree whose validation
    AUC (scikit-learn on the prefix's votes) is within the tolerance of the best prefix."""
    (X, y), (X_val, y_val), _ = data
    settings = {"n_trees": 200, "beta": 0.5, "seed": 2}
    full = BDT(**settings).fit(X, y, X_val=X_val, y_val=y_val)
    pruned = BDT(**settings, prune_on_validation=True, prune_tolerance=0.003).fit(
        X, y, X_val=X_val, y_val=y_val
    )
    n_trees = len(full.alpha_)
    signed = 2 * full.leaf_class_ - 1  # TMVA's +-1 leaves
    per_tree = signed[np.arange(n_trees), _leaves(full, X_val)] * full.alpha_  # (events, trees)
    lengths = list(range(10, n_trees + 1, 10))
    aucs = [roc_auc_score(y_val, per_tree[:, :n].sum(axis=1)) for n in lengths]
    expected = next(n for n, a in zip(lengths, aucs, strict=True) if a >= max(aucs) - 0.003)
    assert expected < n_trees  # the plateau is reached: pruning has something to do
    assert len(pruned.alpha_) == expected
    np.testing.assert_array_equal(pruned.alpha_, full.alpha_[:expected])
    np.testing.assert_array_equal(pruned.threshold_, full.threshold_[:expected])


def test_xgb_keeps_the_fewest_rounds_on_the_validation_plateau(data):
    """Cut at the first round whose validation AUC (scikit-learn on the staged scores) is
    within the tolerance of the best; tolerance 0 keeps the best round."""
    import xgboost

    (X, y), (X_val, y_val), _ = data
    # the early-stopped booster itself (refit: false), not one refitted on every event
    params = {"n_estimators": 300, "learning_rate": 0.3, "n_jobs": 1, "refit": False}
    pruned = build_model("xgb", {**params, "prune_tolerance": 0.003}, seed=2).fit(
        X, y, X_val=X_val, y_val=y_val
    )
    best = build_model("xgb", {**params, "prune_tolerance": 0.0}, seed=2).fit(
        X, y, X_val=X_val, y_val=y_val
    )
    booster, dval = best.booster_, xgboost.DMatrix(X_val)
    rounds = booster.num_boosted_rounds()
    aucs = [
        roc_auc_score(y_val, booster.predict(dval, iteration_range=(0, n)))
        for n in range(1, rounds + 1)
    ]
    assert int(np.argmax(aucs)) + 1 == rounds
    expected = next(n for n, a in enumerate(aucs, start=1) if a >= max(aucs) - 0.003)
    assert expected < rounds
    assert pruned.booster_.num_boosted_rounds() == expected


# -- scikit-learn contract and multi-class for the tree models ---------------------------
TREES = ["bdt", "xgb", "rf"]


@pytest.mark.parametrize("name", TREES)
def test_clone_refits_to_the_same_model(name, fitted, data):
    (X, y), (X_val, y_val), (X_test, _) = data
    model = fitted[name]
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    copy.fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))
    assert clone(model).set_params(seed=8).get_params()["seed"] == 8


@pytest.mark.parametrize("name", TREES)
def test_classes_and_n_features_behave_as_in_sklearn(name, data):
    (X, y), _, (X_test, y_test) = data
    labels = np.array(["background", "signal"])
    model = build_model(name, FAST[name], seed=3).fit(X, labels[y])
    reference = DecisionTreeClassifier(max_depth=2).fit(X, labels[y])
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    assert model.n_features_in_ == reference.n_features_in_ == 10
    assert set(model.predict(X_test)) <= set(labels)
    assert (model.predict(X_test) == labels[y_test]).mean() > 0.75
    proba = model.predict_proba(X_test)
    np.testing.assert_array_equal(model.predict(X_test), model.classes_[proba.argmax(axis=1)])
    with pytest.raises(ValueError, match=r"X has 9 features, but .* is expecting 10 features"):
        model.predict_proba(X_test[:, :9])


@pytest.fixture(scope="module")
def three_classes():
    """A three-class problem (think ttH / ttbb / ttcc): train, validation and test splits."""
    X, y = make_classification(
        3600, 10, n_informative=6, n_redundant=2, n_classes=3, n_clusters_per_class=1,
        flip_y=0.05, class_sep=0.8, random_state=5,
    )  # fmt: skip
    X = X.astype(np.float32)
    labels = np.array(["ttH", "ttbb", "ttcc"])[y]
    return (X[:2000], labels[:2000]), (X[2000:2600], labels[2000:2600]), (X[2600:], labels[2600:])


def per_class_auc(labels, proba, classes):
    return np.array([roc_auc_score(labels == c, proba[:, k]) for k, c in enumerate(classes)])


@pytest.mark.parametrize(
    ("name", "params", "reference"),
    [
        (
            "bdt",
            {"n_trees": 200},
            AdaBoostClassifier(
                DecisionTreeClassifier(max_depth=3),
                n_estimators=200,
                learning_rate=0.5,
                random_state=0,
            ),
        ),
        ("xgb", {"n_jobs": 1}, xgboost.XGBClassifier(n_jobs=1, random_state=0)),
        ("rf", {"n_estimators": 100}, RandomForestClassifier(100, random_state=0)),
    ],
)
def test_multiclass_probabilities_match_the_library_models(name, params, reference, three_classes):
    (X, y), (X_val, y_val), (X_test, y_test) = three_classes
    model = build_model(name, params, seed=1).fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_array_equal(model.classes_, ["ttH", "ttbb", "ttcc"])
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    ours = per_class_auc(y_test, proba, model.classes_)
    codes = np.searchsorted(model.classes_, y)  # xgboost's estimator wants 0..K-1
    theirs_model = clone(reference).fit(X, codes)
    theirs = per_class_auc(y_test, theirs_model.predict_proba(X_test), model.classes_)
    assert np.all(ours > 0.85)
    assert np.all(ours > theirs - 0.02), (ours, theirs)
    assert (model.predict(X_test) == y_test).mean() > 0.7


def test_multiclass_bdt_is_samme(three_classes):
    """Unpruned, without bagging: alphas follow SAMME's rule, probabilities its formula."""
    (X, y), _, (X_test, _) = three_classes
    model = BDT(n_trees=30, beta=0.5, seed=0).fit(X, y)
    assert model.leaf_class_.max() == 2 and set(np.unique(model.leaf_class_)) == {0, 1, 2}
    errors = np.array(model.history_["tree_error"])
    np.testing.assert_allclose(model.alpha_, 0.5 * (np.log((1 - errors) / errors) + np.log(2)))
    decision = model.decision_function(X_test)
    np.testing.assert_allclose(decision.sum(axis=1), 0.0, atol=1e-12)  # SAMME's symmetric code
    expected = np.exp(decision / 2) / np.exp(decision / 2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)
    assert model.history_["train_error"][-1] < model.history_["train_error"][0]


def test_two_class_bdt_score_is_tmva_response(fitted, data):
    X = data[2][0]
    model = fitted["bdt"]
    response = model.decision_function(X)
    assert response.min() >= -1 and response.max() <= 1
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], (response + 1) / 2, rtol=1e-14)
    # TMVA's response from the public arrays: sum(alpha * h) / sum(alpha), h = +-1 per leaf
    h = 2 * model.leaf_class_ - 1
    n_trees = len(model.alpha_)
    votes = h[np.arange(n_trees), _leaves(model, X)] @ model.alpha_
    np.testing.assert_allclose(response, votes / model.alpha_.sum(), rtol=1e-12, atol=1e-15)
    assert set(np.unique(h)) == {-1, 1} and len(np.unique(response)) > 50


def tree_by_tree_votes(model: BDT, X: np.ndarray) -> np.ndarray:
    """The votes from the public arrays: each tree's leaf value added in tree order, in
    double precision from 0.0 (the kernel's order, so the bits must agree)."""
    X = X.astype(np.float32)
    rows, k = np.arange(len(X)), len(model.classes_)
    n_inner = model.threshold_.shape[1]
    votes = np.zeros(len(X)) if k == 2 else np.zeros((len(X), k))
    for t, alpha in enumerate(model.alpha_):
        node = np.zeros(len(X), dtype=np.intp)
        while (node < n_inner).any():  # complete trees: every event is at the same depth
            node = 2 * node + 1 + (X[rows, model.feature_[t, node]] >= model.threshold_[t, node])
        leaf = model.leaf_class_[t, node - n_inner]
        votes += alpha * (2 * leaf - 1) if k == 2 else alpha * (leaf[:, None] == np.arange(k))
    return votes


@pytest.mark.parametrize(
    ("n_classes", "depth"), [(2, 3), (3, 3), (2, 1), (2, 2), (2, 5), (3, 5), (3, 1)]
)
def test_bdt_kernel_equals_a_tree_by_tree_sum_bit_for_bit(
    n_classes, depth, data, three_classes, monkeypatch
):
    (X_fit, y_fit), _, (X, _) = data if n_classes == 2 else three_classes
    model = BDT(n_trees=40, max_depth=depth, min_node_size=0.0, seed=0).fit(X_fit, y_fit)
    X = np.concatenate([X, X * 3, X[:, ::-1]])[:-1]  # far out and mixed-up events; odd count
    reference = tree_by_tree_votes(model, X)
    np.testing.assert_array_equal(model.class_votes(X), reference)
    # split between threads (small shares), and a fresh copy (a new process, say)
    monkeypatch.setattr(compiled_trees, "MIN_SHARE", 7)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.class_votes(X), reference)
    np.testing.assert_array_equal(again.class_votes(X[:5]), reference[:5])


def test_bdt_kernel_refuses_events_with_too_few_features(fitted, data):
    model = fitted["bdt"]
    forest = compiled_trees.CompiledForest(
        model.feature_, model.threshold_, np.ones(model.leaf_class_.shape)
    )
    assert forest.predict(data[2][0][:0]).shape == (0,)
    with pytest.raises(ValueError, match=f"reads {forest.n_features} features"):
        forest.predict(data[2][0][:, : forest.n_features - 1])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_bdt_scores_do_not_depend_on_the_batch(n_classes, fitted, data, three_classes):
    """k-fold scoring must reproduce out-of-fold scores exactly, whatever the chunking."""
    if n_classes == 2:
        model, X = fitted["bdt"], data[2][0]
    else:
        (X_fit, y_fit), _, (X, _) = three_classes
        model = BDT(n_trees=30, seed=0).fit(X_fit, y_fit)
    whole = model.predict_proba(X)
    parts = [model.predict_proba(X[i : i + 7]) for i in range(0, 70, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole[:70])
    np.testing.assert_array_equal(model.predict_proba(X[::-1])[::-1], whole)


def test_xgb_refuses_weights_that_leave_one_class(data):
    (X, y), _, _ = data
    with pytest.raises(ValueError, match="only class 1 with positive weight"):
        build_model("xgb", FAST["xgb"], seed=0).fit(X, y, sample_weight=y.astype(float))


def test_derived_objects_follow_their_source_and_go_with_the_model():
    import gc
    import weakref

    from hepclf.models.derived import DerivedCache

    class Fitted:
        source_ = np.zeros(3)

    cache: DerivedCache[int] = DerivedCache()
    model, builds = Fitted(), []
    build = lambda: builds.append(1) or len(builds)  # noqa: E731
    assert cache.get(model, model.source_, build) == 1
    assert cache.get(model, model.source_, build) == 1  # built once
    model.source_ = np.zeros(3)  # a refit replaces the attribute: built anew
    assert cache.get(model, model.source_, build) == 2
    assert vars(model) == {"source_": model.source_}  # nothing stored in the model
    other = Fitted()
    assert cache.cached(other) is None
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # the cache does not keep the model alive


@pytest.mark.parametrize(("events", "cuts"), [(1600, 160), (150, 20)])
def test_bdt_auto_cuts_follow_the_number_of_events(data, events, cuts):
    """'auto': one quantile cut per 10 training events, at least 20 (at most 1000)."""
    (X, y), _, (X_test, _) = data
    X, y = X[:events], y[:events]
    auto = BDT(seed=0, n_trees=20).fit(X, y)
    given = BDT(seed=0, n_trees=20, n_cuts=cuts).fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X_test), given.predict_proba(X_test))
    assert not np.array_equal(
        auto.threshold_, BDT(seed=0, n_trees=20, n_cuts=cuts + 40).fit(X, y).threshold_
    )
    with pytest.raises(ConfigError, match="n_cuts is 'auto' or a number of cuts"):
        BDT(n_cuts=True).fit(X, y)
