"""Models trained from rows of a table (normalised block by block) learn what they learn from
the arrays; Fisher from sufficient statistics equals scikit-learn's LDA; the cap on training
events and the refit option do what they say."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import roc_auc_score

from hepclf.models import build_model
from hepclf.models.rows import BLOCK_EVENTS, Rows, capped, joined, refit_rounds

FAST = {
    "xgb": {"n_estimators": 40, "learning_rate": 0.3, "early_stopping_rounds": 10, "n_jobs": 1},
    "linear": {},
    "svm": {"n_components": 100, "max_train_events": 600},
    "rf": {"n_estimators": 20, "n_jobs": 1},
    "bdt": {"n_trees": 20},
}


@pytest.fixture(scope="module")
def table():
    """A raw (unnormalised, column-major) table, a normaliser and a row selection."""
    X, y = make_classification(4000, 6, n_informative=4, n_redundant=1, flip_y=0.05, random_state=5)
    X = np.asfortranarray((X * [1, 10, 100, 0.1, 5, 2] + 3).astype(np.float32))
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    center, scale = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)

    def transform(raw: np.ndarray) -> np.ndarray:
        return ((raw.astype(np.float64) - center) / scale).astype(np.float32)

    rows = np.sort(np.random.default_rng(2).choice(len(y), 3000, replace=False))
    return X, y, w, transform, rows


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_rows_equals_fit_on_the_normalised_arrays(name, table):
    X, y, w, transform, rows = table
    fit_rows, val_rows = rows[:2400], rows[2400:]
    by_rows = build_model(name, FAST[name], seed=3).fit_rows(
        Rows(X, fit_rows, y[fit_rows], w[fit_rows], transform),
        Rows(X, val_rows, y[val_rows], w[val_rows], transform),
    )
    by_arrays = build_model(name, FAST[name], seed=3).fit(
        transform(X[fit_rows]),
        y[fit_rows],
        w[fit_rows],
        transform(X[val_rows]),
        y[val_rows],
        w[val_rows],
    )
    Z = transform(X)
    np.testing.assert_allclose(by_rows.predict_proba(Z), by_arrays.predict_proba(Z), atol=1e-12)
    assert by_rows.n_features_in_ == X.shape[1]


def test_weighted_fisher_from_blocks_equals_lda_on_repeated_events():
    """Integer weights: LDA (which ignores weights) on every event repeated w times is the
    weighted Fisher discriminant; more than one block of rows is summed."""
    n = BLOCK_EVENTS + 20_000
    X, y = make_classification(n, 5, n_informative=3, n_redundant=0, random_state=0)
    X = X.astype(np.float32) + 50.0  # far from 0: the sums must not lose precision
    w = np.random.default_rng(0).integers(1, 4, n)
    ours = build_model("linear", {}, seed=0).fit_rows(Rows(X, None, y, w.astype(float)))
    repeated = np.repeat(X.astype(np.float64), w, axis=0)  # float64: LDA computes in X.dtype
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(repeated, np.repeat(y, w))
    X_test = X[:2000]
    np.testing.assert_allclose(
        ours.predict_proba(X_test),
        lda.predict_proba(X_test.astype(np.float64)),
        rtol=1e-6,
        atol=1e-8,
    )


@pytest.mark.parametrize("name", ["bdt", "rf", "svm"])
def test_models_that_keep_their_events_train_on_a_capped_stratified_subsample(name, table):
    X, y, w, transform, rows = table
    train = Rows(X, rows, y[rows], w[rows], transform)
    params = {**FAST[name], "max_train_events": 500}
    with pytest.warns(UserWarning, match=f"{name}: training on a stratified subsample of 500"):
        model = build_model(name, params, seed=4).fit_rows(train)
    # the same model as one fitted on the subsample itself: the cap is all that changed
    subsample = capped(train, 500, name, seed=4)
    assert len(subsample) == 500
    assert abs(subsample.y.mean() - train.y.mean()) < 0.01  # stratified
    if name != "svm":  # the svm calibrates on every training event
        alone = build_model(name, params, seed=4).fit(subsample.array(), subsample.y, subsample.w)
        Z = transform(X)
        np.testing.assert_allclose(model.predict_proba(Z), alone.predict_proba(Z), atol=1e-12)


@pytest.mark.parametrize("name", ["xgb"])
def test_refit_trains_on_every_event_with_the_rounds_found_scaled(name, table):
    X, y, w, transform, rows = table
    train = Rows(X, rows, y[rows], w[rows], transform)
    stopped = build_model(name, {**FAST[name], "refit": False}, seed=3).fit_rows(train)
    refitted = build_model(name, {**FAST[name], "refit": True}, seed=3).fit_rows(train)
    found = stopped.booster_.best_iteration + 1
    assert refitted.booster_.num_boosted_rounds() == refit_rounds(found, 2400, 600)
    assert refitted.history_["refit_rounds"] == [refit_rounds(found, 2400, 600)]
    rest = np.setdiff1d(np.arange(len(y)), rows)
    auc = roc_auc_score(y[rest], refitted.predict_proba(transform(X[rest]))[:, 1])
    assert auc > 0.85


def test_refit_rounds_scale_with_the_sample():
    assert refit_rounds(100, 800, 200) == 125
    assert refit_rounds(1, 10, 1) == 1


def test_joined_rows_share_the_table():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    a = Rows(X, np.array([0, 2]), np.array([0, 1]), np.ones(2))
    b = Rows(X, np.array([5]), np.array([1]), np.ones(1))
    both = joined(a, b)
    assert both.X is X and both.index.tolist() == [0, 2, 5]
    np.testing.assert_array_equal(both.array(), X[[0, 2, 5]])


def test_dnn_trains_from_batches_of_rows_and_refits_for_the_epochs_found(table):
    X, y, w, transform, rows = table
    train = Rows(X, rows, y[rows], w[rows], transform)
    params = {"layers": [16], "ensemble": 2, "epochs": 4, "batch_size": 100, "refit": True}
    model = build_model("dnn", params, seed=3).fit_rows(train)
    best = int(np.argmax(model.history_["val_auc"])) + 1
    assert model.history_["refit_epochs"] == [refit_rounds(best, 2400, 600)]
    rest = np.setdiff1d(np.arange(len(y)), rows)
    assert roc_auc_score(y[rest], model.predict_proba(transform(X[rest]))[:, 1]) > 0.85
