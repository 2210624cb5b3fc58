"""Which plots a pipeline run draws, from its results: one home for every figure of a run.

:mod:`hepclf.evaluation.plots` knows how to draw one plot; this module decides what a run
shows (input correlations and distributions, per-model overtraining, learning curves and
feature importance, the ROC overlay) and where the files go. Everything returns paths, so
reporting and tracking only pass files on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepclf.evaluation import plots
from hepclf.evaluation.feature_plots import plot_feature_distributions
from hepclf.evaluation.folds import CrossValReport
from hepclf.evaluation.multiclass import MulticlassReport
from hepclf.evaluation.multiclass_plots import plot_multiclass

if TYPE_CHECKING:
    from hepclf.training.results import ModelResult

MAX_PLOT_EVENTS = 200_000
"""Input plots use at most this many events: a seeded uniform sample estimates correlations
and normalised distributions to well below a line width, at a fraction of the cost."""


def plot_sample(n: int, cap: int = MAX_PLOT_EVENTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded uniform sample of at most ``cap`` of ``n`` rows."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def input_plots(
    X: np.ndarray,
    columns: Sequence[str],
    y: np.ndarray,
    w: np.ndarray,
    folder: Path,
    *,
    cap: int = MAX_PLOT_EVENTS,
    pads: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Weighted input correlations (signal, background) and feature distributions;
    ``pads``: the padding value of each padded column (leading-N objects)."""
    rows = plot_sample(len(y), cap)
    X, y, w = X[rows], y[rows], w[rows]
    signal, background = plots.plot_correlation_matrices(
        X,
        columns,
        y,
        w,
        folder / "correlation_signal.png",
        folder / "correlation_background.png",
    )
    features = plot_feature_distributions(X, columns, y, w, folder / "features.png", pads=pads)
    return {p.stem: p for p in (signal, background, features)}


def model_plots(
    result: ModelResult,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    columns: Sequence[str],
    folder: Path,
    held_out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Overtraining check, learning curve and feature importance of one model.

    ``train`` and ``test`` are (labels, physical weights) of the events whose scores are in
    ``result.scores``. ``held_out``: (normalised features, labels, weights) of test events,
    for the learning curve of a model that recorded none on held-out events (the bdt
    trains on its validation events too). The paths are also stored in ``result.plots``.
    """
    (y_tr, w_tr), (y_te, w_te) = train, test
    s_tr, s_te = result.scores["train"], result.scores["test"]
    report, name, model = result.report, result.name, result.classifier
    if s_te.ndim == 2:  # multi-class: per-class ROC, confusion, node outputs, per-node KS
        scores = {"train": (y_tr, s_tr, w_tr), "test": (y_te, s_te, w_te)}
        files = list(
            plot_multiclass(getattr(report, "combined", report), scores, folder, name).values()
        )
    else:
        files = [_overtraining(result, train, test, folder)]
    per_category = getattr(report, "per_category", None)
    if per_category and s_te.ndim == 1:  # each category's ROC beside the combined one
        curves = {"combined": report.roc_test, **{c: r.roc_test for c, r in per_category.items()}}
        files.append(
            plots.plot_roc_overlay(
                {c: (roc.eff_s, roc.eff_b) for c, roc in curves.items()},
                folder / f"{name}_roc_categories.png",
                aucs={c: roc.auc for c, roc in curves.items()},
            )
        )
    if result.folds is not None:  # k-fold: out-of-fold ROC with the band of the folds
        files.append(plot_fold_roc(result.folds, folder / f"{name}_roc_folds.png", name))
    curves = per_iteration_curves(model.history_)
    staged = getattr(model, "staged_error", None)
    if curves and staged is not None and held_out is not None and "val_error" not in curves:
        X_held, y_held, w_held = held_out
        test_error = staged(X_held, y_held, w_held)
        if len(test_error) == len(next(iter(curves.values()))):
            curves["test_error"] = list(test_error)
    if curves:
        files.append(
            plots.plot_learning_curves(
                curves, folder / f"{name}_learning_curve.png", f"{name} learning curve"
            )
        )
    importances = getattr(model, "feature_importances_", None)
    if importances is not None:
        files.append(
            plots.plot_feature_importance(
                importances,
                columns,
                folder / f"{name}_importance.png",
                name,
                getattr(model, "importance_type", ""),
            )
        )
    result.plots.update({p.stem: p for p in files})
    return {p.stem: p for p in files}


def _overtraining(
    result: ModelResult,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    folder: Path,
) -> Path:
    """TMVA's two-class overtraining plot (signal = label 1)."""
    (y_tr, w_tr), (y_te, w_te) = train, test
    s_tr, s_te = result.scores["train"], result.scores["test"]
    report, name = result.report, result.name
    return plots.plot_overtraining(
        s_tr[y_tr == 1],
        w_tr[y_tr == 1],
        s_tr[y_tr == 0],
        w_tr[y_tr == 0],
        s_te[y_te == 1],
        w_te[y_te == 1],
        s_te[y_te == 0],
        w_te[y_te == 0],
        report.ks_signal.pvalue,
        report.ks_background.pvalue,
        folder / f"{name}_overtraining.png",
        name,
    )


def roc_overlay(results: Mapping[str, ModelResult], folder: Path) -> Path:
    """The test-sample ROC curves of all models in one plot, ``roc.png``."""
    # multi-class: the signal node against the rest (the per-class curves are per model)
    curves = {
        n: getattr(r.report, "signal_roc_test", None) or r.report.roc_test
        for n, r in results.items()
    }
    multiclass = any(getattr(r.report, "signal_roc_test", None) for r in results.values())
    macro = {n: r.report.auc_test for n, r in results.items()}
    return plots.plot_roc_overlay(
        {n: (roc.eff_s, roc.eff_b) for n, roc in curves.items()},
        folder / "roc.png",
        aucs={n: roc.auc for n, roc in curves.items()},
        # the table's auc_test is the macro one-vs-rest AUC: say which one this plot shows
        title="signal node vs rest; macro: the table's AUC" if multiclass else "",
        auc_label="AUC" if not multiclass else "signal AUC",
        notes={n: f"macro {a:.3f}" for n, a in macro.items()} if multiclass else None,
    )


def per_iteration_curves(history: Mapping[str, list[float]]) -> dict[str, list[float]]:
    """Curves sharing one x axis (an entry per epoch or tree); the schedule is left out.

    A model may also record the learning rate or checkpoints every few trees; drawn on the
    same axis those would mislead, so only the longest, aligned curves are plotted.
    """
    curves = {k: v for k, v in history.items() if k != "learning_rate" and v}
    longest = max((len(v) for v in curves.values()), default=0)
    return {k: v for k, v in curves.items() if len(v) == longest}


def plot_fold_roc(result: CrossValReport, path: Path, model_name: str) -> Path:
    """The ROC of the out-of-fold scores with the band spanned by the folds (PNG); for more
    than two classes, that of the signal class's node against the rest."""
    report = result.report
    if isinstance(report, MulticlassReport):
        roc = report.signal_roc_test
        signal = (report.signal_classes or report.classes)[0]
        title, auc_folds = f"{model_name}: {signal} vs rest", [r.auc for r in result.roc_folds]
    else:
        roc, title, auc_folds = report.roc_test, model_name, result.auc_folds
    return plots.plot_roc_folds(
        [(r.eff_s, r.eff_b) for r in result.roc_folds],
        (roc.eff_s, roc.eff_b),
        path,
        title,
        auc_out_of_fold=roc.auc,
        auc_folds=auc_folds,
    )
