"""dnn, svm and linear: multi-class, the fast SVM design, the DNN optimisers, the contract
(with the forest's predict-time state)."""

from __future__ import annotations

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from hepclf.models import build_model, load_model

DNN_FAST = {"layers": [16, 16], "epochs": 2, "ensemble": 2, "batch_size": 128, "dropout": 0.0}


def standardised(X: np.ndarray) -> np.ndarray:
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


@pytest.fixture(scope="module")
def three_classes():
    """Train / test halves of a three-class problem with 8 features."""
    X, y = make_classification(
        3000, 8, n_informative=5, n_classes=3, n_clusters_per_class=1, random_state=4
    )
    X = standardised(X)
    return (X[:2000], y[:2000]), (X[2000:], y[2000:])


@pytest.fixture(scope="module")
def two_classes():
    """A non-linear two-class problem where an RBF kernel beats a linear cut."""
    X, y = make_classification(
        8000, 10, n_informative=6, n_clusters_per_class=3, flip_y=0.05, random_state=5
    )
    X = standardised(X)
    return (X[:4000], y[:4000]), (X[4000:], y[4000:])


# -- linear ---------------------------------------------------------------------------


def test_multinomial_logistic_matches_sklearn(three_classes):
    (X, y), (X_test, _) = three_classes
    ours = build_model("linear", {"method": "logistic", "C": 0.5}, seed=0).fit(X, y)
    theirs = LogisticRegression(C=0.5, max_iter=1000).fit(X.astype(np.float64), y)
    assert ours.coef_.shape == (3, 8) and ours.intercept_.shape == (3,)
    np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test), atol=1e-6)


def test_multiclass_fisher_matches_lda(three_classes):
    (X, y), (X_test, _) = three_classes
    ours = build_model("linear", {"method": "fisher"}, seed=0).fit(X, y)
    lda = LinearDiscriminantAnalysis().fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X_test), lda.predict_proba(X_test), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X_test), lda.predict(X_test))


def test_fisher_integer_weights_equal_repeated_events(three_classes):
    (X, y), (X_test, _) = three_classes
    weights = np.random.default_rng(0).integers(1, 4, len(y))
    weighted = build_model("linear", {}, seed=0).fit(X, y, sample_weight=weights)
    repeated = build_model("linear", {}, seed=0).fit(
        np.repeat(X, weights, 0), np.repeat(y, weights)
    )
    np.testing.assert_allclose(weighted.predict_proba(X_test), repeated.predict_proba(X_test))
    plain = build_model("linear", {}, seed=0).fit(X, y)
    assert not np.allclose(plain.predict_proba(X_test), weighted.predict_proba(X_test))


def test_binary_linear_keeps_sklearn_shapes_and_log_odds(two_classes):
    (X, y), (X_test, _) = two_classes
    model = build_model("linear", {"method": "logistic"}, seed=0).fit(X, y)
    assert model.coef_.shape == (1, 10) and model.intercept_.shape == (1,)
    log_odds = X_test.astype(np.float64) @ model.coef_[0] + model.intercept_[0]
    np.testing.assert_allclose(model.decision_function(X_test), log_odds)
    np.testing.assert_allclose(model.predict_proba(X_test)[:, 1], expit(log_odds))


# -- svm ------------------------------------------------------------------------------


def test_default_svm_is_within_0005_auc_of_exact_svc(two_classes):
    """The Nystroem design (the default) against scikit-learn's exact SVC, same C and gamma."""
    (X, y), (X_test, y_test) = two_classes
    ours = build_model("svm", None, seed=0).fit(X, y)
    exact = SVC(C=ours.C, gamma=ours.gamma).fit(X, y)
    auc_ours = roc_auc_score(y_test, ours.predict_proba(X_test)[:, 1])
    auc_exact = roc_auc_score(y_test, exact.decision_function(X_test))
    assert auc_ours > auc_exact - 0.005
    assert not hasattr(ours, "support_vectors_")  # no exact support vectors to show


def test_exact_svm_is_sklearn_svc(two_classes):
    (X, y), (X_test, _) = two_classes
    ours = build_model("svm", {"approximate": False}, seed=0).fit(X[:1500], y[:1500])
    exact = SVC(C=ours.C, gamma=ours.gamma).fit(X[:1500], y[:1500])
    np.testing.assert_array_equal(ours.support_vectors_, exact.support_vectors_)
    margins = ours.svm_.decision_function(X_test)
    np.testing.assert_allclose(margins, exact.decision_function(X_test), rtol=1e-6, atol=1e-9)
    # Platt: P(signal) = sigmoid(a * margin + b), increasing in the margin
    expected = expit(ours.platt_coef_[0] * margins + ours.platt_intercept_[0])
    np.testing.assert_allclose(ours.predict_proba(X_test)[:, 1], expected, rtol=1e-6)
    assert ours.platt_coef_[0] > 0


def test_svm_multiclass_is_calibrated_one_vs_rest(three_classes):
    (X, y), (X_test, y_test) = three_classes
    model = build_model("svm", {"n_components": 300}, seed=0).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y_test, proba, multi_class="ovr") > 0.9
    np.testing.assert_array_equal(
        model.predict(X_test), np.argmax(model.decision_function(X_test), 1)
    )
    # calibrated: per class, the mean probability is close to the class's share
    for k in range(3):
        assert abs(proba[:, k].mean() - (y_test == k).mean()) < 0.05


def test_exact_svm_refuses_more_than_two_classes(three_classes):
    (X, y), _ = three_classes
    with pytest.raises(ValueError, match="approximate: true"):
        build_model("svm", {"approximate": False}, seed=0).fit(X, y)


def test_svm_decision_sign_agrees_with_predict(two_classes):
    (X, y), (X_test, _) = two_classes
    model = build_model("svm", {"n_components": 200}, seed=0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X_test), model.decision_function(X_test) > 0)


# -- dnn ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "optimizer", "settings"),
    [
        ({}, "Adam", {}),
        ({"optimizer": "adamw"}, "AdamW", {"weight_decay": 0.004}),
        ({"optimizer": "adamw", "weight_decay": 0.01}, "AdamW", {"weight_decay": 0.01}),
        (
            {"optimizer": "sgd", "momentum": 0.8, "nesterov": True, "learning_rate": 0.05},
            "SGD",
            {"momentum": 0.8, "nesterov": True},
        ),
        ({"optimizer": "rmsprop", "kernel_initializer": "he_normal"}, "RMSprop", {}),
    ],
)
def test_dnn_optimisers_build_and_train(params, optimizer, settings, two_classes):
    (X, y), (X_test, y_test) = two_classes
    model = build_model("dnn", {**DNN_FAST, **params}, seed=0).fit(X[:2000], y[:2000])
    network = model.network_
    assert type(network.optimizer).__name__ == optimizer
    config = network.optimizer.get_config()
    for key, value in settings.items():
        assert config[key] == pytest.approx(value)
    dense = [layer for layer in network.layers if type(layer).__name__ == "Dense"]
    initializer = params.get("kernel_initializer", "glorot_uniform")
    expected = "".join(part.capitalize() for part in initializer.split("_"))
    assert {type(layer.kernel_initializer).__name__ for layer in dense} == {expected}
    assert len(model.history_["loss"]) == 2
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.65  # it learnt


def test_dnn_multiclass_softmax_weights_and_round_trip(three_classes, tmp_path):
    (X, y), (X_test, y_test) = three_classes
    labels = np.array(["ttH", "ttbb", "ttlf"])[y]
    model = build_model("dnn", {**DNN_FAST, "epochs": 4}, seed=0).fit(X, labels)
    assert list(model.classes_) == ["ttH", "ttbb", "ttlf"]
    assert model.network_.output_shape == (None, 2, 3)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert roc_auc_score(y_test, proba, multi_class="ovr") > 0.85
    assert 0.5 < model.history_["val_auc"][-1] <= 1.0
    # the forward pass is the Keras network: softmax per tower, averaged
    logits = model.network_.predict(X_test, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(proba, expected.mean(axis=1), atol=1e-5)
    # event weights: upweighting one class raises its probabilities
    heavy = build_model("dnn", {**DNN_FAST, "epochs": 4}, seed=0).fit(
        X, labels, sample_weight=np.where(labels == "ttlf", 5.0, 1.0)
    )
    assert heavy.predict_proba(X_test)[:, 2].mean() > proba[:, 2].mean() + 0.05
    model.save(tmp_path / "dnn")
    loaded = load_model(tmp_path / "dnn")
    np.testing.assert_array_equal(loaded.predict_proba(X_test), proba)


def test_dnn_binary_prediction_is_the_tower_average(two_classes):
    (X, y), (X_test, _) = two_classes
    model = build_model("dnn", DNN_FAST, seed=0).fit(X[:1000], y[:1000])
    logits = model.network_.predict(X_test, verbose=0)
    assert logits.shape == (len(X_test), 2)
    expected = expit(logits.astype(np.float64)).mean(axis=1)
    np.testing.assert_allclose(model.predict_proba(X_test)[:, 1], expected, atol=1e-6)


# -- the scikit-learn contract ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [("dnn", DNN_FAST), ("svm", {"n_components": 100}), ("linear", {"method": "logistic"})],
)
def test_clone_and_not_fitted(name, params, two_classes):
    (X, y), (X_test, _) = two_classes
    model = build_model(name, params, seed=3)
    with pytest.raises(NotFittedError):
        model.predict_proba(X_test)
    with pytest.raises(NotFittedError):
        model.predict(X_test)
    fitted = clone(model).fit(X[:1000], y[:1000])
    copy = clone(fitted)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "classes_")
    assert fitted.n_features_in_ == 10 and list(fitted.classes_) == [0, 1]
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(X_test[:, :5])


def state(model) -> dict[str, object]:
    """The estimator's attributes: joblib hashes of each, the Keras network by its weights."""
    return {
        key: joblib.hash([w.numpy() for w in value.weights] if key == "network_" else value)
        for key, value in vars(model).items()
    }


def test_dnn_prediction_leaves_the_estimator_unchanged(two_classes, tmp_path):
    """The traced forward pass is cached beside the model, not in it, yet built once."""
    from hepclf.models import dnn

    (X, y), (X_test, _) = two_classes
    fitted = build_model("dnn", DNN_FAST, seed=0).fit(X[:1000], y[:1000])
    fitted.save(tmp_path / "dnn")
    loaded = load_model(tmp_path / "dnn")  # never predicted yet
    for model in (fitted, loaded):
        # parameters and public fitted attributes only: nothing cached in the model by fit
        fitted_names = {key for key in vars(model) if key not in model.get_params()}
        assert [key for key in fitted_names if key.startswith("_") or not key.endswith("_")] == []
        before, network = state(model), model.network_
        proba = model.predict_proba(X_test)
        model.predict(X_test[:7])
        assert state(model) == before and model.network_ is network
        np.testing.assert_array_equal(proba, fitted.predict_proba(X_test))
        # batches of any length reuse one graph: the speed the cache is for
        assert dnn._FORWARD.cached(model).experimental_get_tracing_count() == 1


def test_forest_prediction_leaves_the_forest_unchanged(two_classes):
    """Prediction runs the trees on one thread without setting n_jobs on the fitted forest."""
    (X, y), (X_test, _) = two_classes
    model = build_model("rf", {"n_estimators": 20, "n_jobs": -1}, seed=0).fit(X, y)
    before, forest_before = state(model), state(model.forest_)
    proba = model.predict_proba(X_test)
    assert state(model) == before and state(model.forest_) == forest_before
    assert model.forest_.n_jobs == -1
    # the trees' class fractions averaged, as a single-threaded scikit-learn forest sums them
    expected = sum(tree.predict_proba(X_test) for tree in model.estimators_) / 20
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_array_equal(model.predict_proba(X_test), proba)


def test_tensorflow_start_up_is_quiet():
    """No CUDA probing lines on a machine without a GPU (issue 9), unless HEPCLF_VERBOSE=1."""
    code = (
        "import numpy as np\n"
        "from hepclf.models import build_model\n"
        "X = np.random.default_rng(0).normal(size=(300, 4)).astype('float32')\n"
        "m = build_model('dnn', {'layers': [4], 'epochs': 1, 'ensemble': 1}, seed=0)\n"
        "m.fit(X, (X[:, 0] > 0).astype(int)).predict_proba(X)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("HEPCLF_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")
    }
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    for noise in ("cuInit", "cuda", "oneDNN", "absl", "tensorflow"):
        assert noise not in run.stderr, run.stderr


@pytest.mark.parametrize("n_events", [1, 1024, 2500])
def test_svm_onnx_graph_scores_in_blocks(n_events, three_classes):
    """The exported kernel runs block by block (bounded memory); padding must not leak."""
    import onnxruntime as ort

    from hepclf.scoring.onnx_export.svm import BLOCK, to_graph

    (X, y), _ = three_classes
    X_many = np.tile(X, (2, 1))[:n_events]
    for labels in (y, (y == 1).astype(int)):
        model = build_model("svm", {"n_components": 100}, seed=0).fit(X, labels)
        graph = to_graph(model, X.shape[1])
        session = ort.InferenceSession(
            graph.model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        (onnx_out,) = session.run([graph.output], {"x": X_many})
        proba = model.predict_proba(X_many)
        expected = proba if proba.shape[1] > 2 else proba[:, 1:]
        assert onnx_out.shape == expected.shape
        np.testing.assert_allclose(onnx_out, expected, rtol=0, atol=1e-6)
    assert BLOCK < 2500  # the largest case spans several blocks
