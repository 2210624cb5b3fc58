"""Multi-class classifier performance: one-vs-rest ROC, confusion matrix, node categories.

A multi-class model gives each event one output per class (``predict_proba`` columns, in
``classes`` order, summing to 1). Analyses judge it the way the CMS ttH(bb) analysis does:
each class against the rest (a ROC curve and AUC per output node, their unweighted mean as
the macro AUC), the weighted confusion matrix of "most probable class" against the true
class, train-vs-test KS per output node and true class (TMVA's overtraining check, node by
node), and node categorisation: every event goes to the node with the highest output, and
each node's output distribution by true class is what the final fit uses, so the expected
signal and background yields per node are reported.

Labels are class indices ``0..K-1``; weights are physical event weights, with the same
sign conventions as :mod:`hepclf.evaluation.metrics`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import as_weights
from hepclf.evaluation.overtraining import KSResult, ks_test
from hepclf.evaluation.roc import RocCurve, roc_curve

_NOT_IN_KEY = re.compile(r"[^A-Za-z0-9_.]")


def metric_key(name: str) -> str:
    """A class name as part of an MLflow metric key (letters, digits, ``_`` and ``.``)."""
    return _NOT_IN_KEY.sub("_", name)


def check_probabilities(
    y: ArrayLike, proba: ArrayLike, weight: ArrayLike | None, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, probabilities, weights), checked: every class needs a positive total weight."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != n_classes or p.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (events, {n_classes}), got {p.shape}")
    bad = np.count_nonzero(~np.isfinite(p))
    if bad:
        raise ValueError(f"probabilities contain {bad} non-finite values (NaN or inf)")
    labels = np.asarray(y)
    if labels.shape != (p.shape[0],):
        raise ValueError(f"labels have shape {labels.shape}, probabilities {p.shape}")
    if not np.isin(labels, np.arange(n_classes)).all():
        raise ValueError(f"labels must be class indices 0..{n_classes - 1}")
    w = as_weights(weight, p.shape[0])
    totals = np.bincount(labels.astype(np.intp), weights=w, minlength=n_classes)
    empty = np.flatnonzero(~(totals > 0))
    if empty.size:
        raise ValueError(
            f"classes {empty.tolist()} have a total weight <= 0; every class needs a positive "
            "total weight to define its efficiencies"
        )
    return labels.astype(np.intp), p, w


def confusion_matrix(
    y: ArrayLike, proba: ArrayLike, weight: ArrayLike | None, n_classes: int
) -> np.ndarray:
    """Weighted counts, rows = true class, columns = node with the highest output."""
    labels, p, w = check_probabilities(y, proba, weight, n_classes)
    node = np.argmax(p, axis=1)
    flat = np.bincount(labels * n_classes + node, weights=w, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum: the fraction of a true class ending in each node."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals != 0)


def one_vs_rest_rocs(
    y: ArrayLike, proba: ArrayLike, weight: ArrayLike | None, n_classes: int
) -> list[RocCurve]:
    """ROC curve of output node k separating class k from all other classes, per k."""
    labels, p, w = check_probabilities(y, proba, weight, n_classes)
    return [roc_curve(labels == k, p[:, k], w) for k in range(n_classes)]


@dataclass(frozen=True, eq=False)
class MulticlassReport:
    """Everything ``evaluate_multiclass`` measured, for K classes.

    ``ks[node][true_class]`` compares the training and test distributions of one output
    node for the events of one true class. ``node_yields[node][true_class]`` is the
    expected weighted number of events of each class assigned to each node (test events,
    scaled by ``yield_scale``).
    """

    classes: tuple[str, ...]
    signal_classes: tuple[str, ...]
    roc_test: tuple[RocCurve, ...]
    roc_train: tuple[RocCurve, ...]
    confusion_test: np.ndarray
    confusion_train: np.ndarray
    ks: dict[str, dict[str, KSResult]]
    ks_threshold: float
    node_yields: dict[str, dict[str, float]]
    yield_scale: float = 1.0

    @property
    def signal_roc_test(self) -> RocCurve:
        """The one-vs-rest ROC of the (first) signal class's node: what a two-class plot shows."""
        return self.roc_test[self.classes.index((self.signal_classes or self.classes)[0])]

    @property
    def auc_test_per_class(self) -> dict[str, float]:
        return {c: r.auc for c, r in zip(self.classes, self.roc_test, strict=True)}

    @property
    def auc_train_per_class(self) -> dict[str, float]:
        return {c: r.auc for c, r in zip(self.classes, self.roc_train, strict=True)}

    @property
    def auc_test(self) -> float:
        """Macro one-vs-rest AUC: the unweighted mean over classes, as scikit-learn's."""
        return float(np.mean(list(self.auc_test_per_class.values())))

    @property
    def auc_train(self) -> float:
        return float(np.mean(list(self.auc_train_per_class.values())))

    @property
    def accuracy_test(self) -> float:
        return float(np.trace(self.confusion_test) / self.confusion_test.sum())

    @property
    def accuracy_train(self) -> float:
        return float(np.trace(self.confusion_train) / self.confusion_train.sum())

    @property
    def ks_pvalue_min(self) -> float:
        return min(r.pvalue for per_class in self.ks.values() for r in per_class.values())

    @property
    def ks_threshold_per_test(self) -> float:
        """Šidák's per-test threshold for the K×K node-by-class tests.

        Without it a well-trained K-class model would be flagged far more often than a
        two-class one at the same ``ks_threshold`` (16 tests for four classes); with it, the
        chance that any test falls below is ``ks_threshold`` (less: the tests are correlated).
        """
        tests = sum(len(per_class) for per_class in self.ks.values())
        return 1.0 - (1.0 - self.ks_threshold) ** (1.0 / tests)

    @property
    def overtrained(self) -> bool:
        """TMVA's criterion, node by node: some class's train and test outputs differ."""
        return self.ks_pvalue_min < self.ks_threshold_per_test

    def signal_background_yields(self) -> dict[str, dict[str, float]]:
        """Per node, the expected signal (``signal_classes``) and background yields."""
        out = {}
        for node, per_class in self.node_yields.items():
            signal = sum(v for c, v in per_class.items() if c in self.signal_classes)
            background = sum(v for c, v in per_class.items() if c not in self.signal_classes)
            out[node] = {"signal": signal, "background": background}
        return out

    def to_flat_dict(self) -> dict[str, float]:
        """Metrics for ``mlflow.log_metrics`` (class names made key-safe)."""
        flat = {
            "auc_test": self.auc_test,
            "auc_train": self.auc_train,
            "accuracy_test": self.accuracy_test,
            "accuracy_train": self.accuracy_train,
        }
        for c in self.classes:
            flat[f"auc_test_{metric_key(c)}"] = self.auc_test_per_class[c]
            flat[f"auc_train_{metric_key(c)}"] = self.auc_train_per_class[c]
        for node, per_class in self.ks.items():
            for c, result in per_class.items():
                flat[f"ks_pvalue_node_{metric_key(node)}_class_{metric_key(c)}"] = result.pvalue
        flat["ks_pvalue_min"] = self.ks_pvalue_min
        flat["overtrained"] = float(self.overtrained)
        for node, sb in self.signal_background_yields().items():
            flat[f"yield_signal_node_{metric_key(node)}"] = sb["signal"]
            flat[f"yield_background_node_{metric_key(node)}"] = sb["background"]
        return flat

    def to_summary(self) -> dict[str, Any]:
        """Nested, JSON-ready view for ``metrics.json``."""
        return {
            "auc_test": self.auc_test,
            "auc_train": self.auc_train,
            "auc_test_per_class": self.auc_test_per_class,
            "auc_train_per_class": self.auc_train_per_class,
            "accuracy_test": self.accuracy_test,
            "accuracy_train": self.accuracy_train,
            "classes": list(self.classes),
            "signal_classes": list(self.signal_classes),
            "confusion_test": {
                "classes": list(self.classes),
                "weighted": self.confusion_test.tolist(),
                "row_normalised": row_normalised(self.confusion_test).tolist(),
            },
            "ks_pvalue": {
                node: {c: r.pvalue for c, r in per_class.items()}
                for node, per_class in self.ks.items()
            },
            "ks_pvalue_min": self.ks_pvalue_min,
            "ks_threshold": self.ks_threshold,
            "ks_threshold_per_test": self.ks_threshold_per_test,
            "overtrained": self.overtrained,
            "node_yields": self.node_yields,
            "node_signal_background": self.signal_background_yields(),
        }


def evaluate_multiclass(
    y_test: ArrayLike,
    proba_test: ArrayLike,
    w_test: ArrayLike | None,
    y_train: ArrayLike,
    proba_train: ArrayLike,
    w_train: ArrayLike | None,
    classes: Sequence[str],
    signal_classes: Sequence[str] = (),
    *,
    ks_threshold: float = 0.05,
    ks_bins: int | None = 40,
    yield_scale: float = 1.0,
) -> MulticlassReport:
    """Measure a trained multi-class model on its test and training samples.

    ``yield_scale`` turns test-sample weight sums into expected yields (e.g. the inverse
    of the test fraction when the weights are normalised to the full dataset).
    """
    k = len(classes)
    unknown = [c for c in signal_classes if c not in classes]
    if unknown:
        raise ValueError(f"signal classes {unknown} are not among the classes {list(classes)}")
    y_te, p_te, w_te = check_probabilities(y_test, proba_test, w_test, k)
    y_tr, p_tr, w_tr = check_probabilities(y_train, proba_train, w_train, k)
    ks = {
        node: {
            c: ks_test(
                p_tr[y_tr == i, j], p_te[y_te == i, j], w_tr[y_tr == i], w_te[y_te == i], ks_bins
            )
            for i, c in enumerate(classes)
        }
        for j, node in enumerate(classes)
    }
    confusion_test = confusion_matrix(y_te, p_te, w_te, k)
    yields = confusion_test * yield_scale
    return MulticlassReport(
        classes=tuple(classes),
        signal_classes=tuple(signal_classes),
        roc_test=tuple(one_vs_rest_rocs(y_te, p_te, w_te, k)),
        roc_train=tuple(one_vs_rest_rocs(y_tr, p_tr, w_tr, k)),
        confusion_test=confusion_test,
        confusion_train=confusion_matrix(y_tr, p_tr, w_tr, k),
        ks=ks,
        ks_threshold=ks_threshold,
        node_yields={
            node: {c: float(yields[i, j]) for i, c in enumerate(classes)}
            for j, node in enumerate(classes)
        },
        yield_scale=yield_scale,
    )
