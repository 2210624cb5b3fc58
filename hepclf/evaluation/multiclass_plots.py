"""Plots of a multi-class model: ROC per class, confusion matrix, node outputs, train vs test.

Same conventions as :mod:`hepclf.evaluation.plots`: one PNG per call in mplhep's ROOT
style, built on an Agg canvas so no pyplot state is left behind, histograms filled with
numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import mplhep
import numpy as np
from matplotlib.ticker import NullLocator
from numpy.typing import ArrayLike

from hepclf.evaluation.multiclass import (
    MulticlassReport,
    check_probabilities,
    row_normalised,
)
from hepclf.evaluation.plots import PathLike, styled_figure

MAX_CURVE_POINTS = 4000


def _colors(n: int) -> list[str]:
    cycle = ["#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _grid(n: int) -> tuple[int, int]:
    ncols = n if n <= 3 else math.ceil(math.sqrt(n))
    return math.ceil(n / ncols), ncols


def plot_multiclass_roc(report: MulticlassReport, path: PathLike, model_name: str) -> Path:
    """One-vs-rest ROC of every output node: efficiency of its class against the rest's."""
    with styled_figure(path, (10.0, 10.0)) as fig:
        ax = fig.subplots()
        for color, name, roc in zip(
            _colors(len(report.classes)), report.classes, report.roc_test, strict=True
        ):
            step = max(1, roc.eff_s.size // MAX_CURVE_POINTS)
            ax.plot(
                roc.eff_b[::step],
                roc.eff_s[::step],
                lw=2,
                color=color,
                label=f"{name} vs rest (AUC = {roc.auc:.3f})",
            )
        ax.plot([0, 1], [0, 1], ls="--", color="grey", label="Random")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("Efficiency of the other classes")
        ax.set_ylabel("Efficiency of the node's class")
        ax.legend(loc="lower right", title=f"{model_name}, macro AUC = {report.auc_test:.3f}")
    return Path(path)


def plot_confusion(report: MulticlassReport, path: PathLike, model_name: str) -> Path:
    """Row-normalised weighted confusion matrix (true class against assigned node)."""
    matrix = row_normalised(report.confusion_test)
    n = len(report.classes)
    side = max(8.0, 1.2 * n + 4.0)
    with styled_figure(path, (side + 1.5, side), {"font.size": 16}) as fig:
        ax = fig.subplots()
        image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label="Fraction of the true class")
        ticks = np.arange(n)
        ax.set_xticks(ticks, report.classes, rotation=45)
        ax.set_yticks(ticks, report.classes)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("Assigned node (highest output)")
        ax.set_ylabel("True class")
        ax.set_title(f"{model_name}: accuracy {report.accuracy_test:.3f}")
        for (i, j), value in np.ndenumerate(matrix):
            color = "white" if value > 0.6 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=color)
    return Path(path)


def plot_node_outputs(
    y: ArrayLike,
    proba: ArrayLike,
    weight: ArrayLike | None,
    classes: Sequence[str],
    path: PathLike,
    model_name: str,
    *,
    bins: int = 20,
    yield_scale: float = 1.0,
) -> Path:
    """Node categorisation: per node, its output for the events it wins, by true class.

    Stacked expected yields (weights times ``yield_scale``), the distributions a
    multi-class analysis fits node by node.
    """
    labels, p, w = check_probabilities(y, proba, weight, len(classes))
    node = np.argmax(p, axis=1)
    nrows, ncols = _grid(len(classes))
    colors = _colors(len(classes))
    rc = {"font.size": 14, "legend.fontsize": "x-small", "xaxis.labellocation": "center"}
    with styled_figure(path, (5.5 * ncols, 4.5 * nrows), rc) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        lower = 1.0 / len(classes)  # the winning output is never below 1/K
        edges = np.linspace(lower, 1.0, bins + 1)
        for j, (ax, name) in enumerate(zip(axes, classes, strict=False)):
            rows = node == j
            contents = [
                np.histogram(
                    p[rows & (labels == i), j], edges, weights=w[rows & (labels == i)] * yield_scale
                )[0]
                for i in range(len(classes))
            ]
            mplhep.histplot(
                contents,
                edges,
                stack=True,
                histtype="fill",
                color=colors,
                label=list(classes),
                ax=ax,
            )
            ax.set_xlabel(f"{name} node output")
            ax.set_ylabel("Expected events")
            ax.set_xlim(edges[0], edges[-1])
            ax.set_title(f"{name} node", fontsize="small")
        axes[0].legend(title=model_name)
        for ax in axes[len(classes) :]:
            ax.set_axis_off()
    return Path(path)


def plot_multiclass_overtraining(
    y_train: ArrayLike,
    proba_train: ArrayLike,
    w_train: ArrayLike | None,
    y_test: ArrayLike,
    proba_test: ArrayLike,
    w_test: ArrayLike | None,
    report: MulticlassReport,
    path: PathLike,
    model_name: str,
    *,
    bins: int = 30,
) -> Path:
    """TMVA's overtraining check per output node: test as lines, training as points.

    Every true class is shown normalised to unit area; its KS p-value is in the legend.
    """
    k = len(report.classes)
    y_tr, p_tr, w_tr = check_probabilities(y_train, proba_train, w_train, k)
    y_te, p_te, w_te = check_probabilities(y_test, proba_test, w_test, k)
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    nrows, ncols = _grid(k)
    colors = _colors(k)
    rc = {"font.size": 14, "legend.fontsize": "xx-small", "xaxis.labellocation": "center"}
    with styled_figure(path, (5.5 * ncols, 4.5 * nrows), rc) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for j, (ax, node) in enumerate(zip(axes, report.classes, strict=False)):
            for i, (cls, color) in enumerate(zip(report.classes, colors, strict=True)):
                test, _ = _density(p_te[y_te == i, j], w_te[y_te == i], edges)
                train, err = _density(p_tr[y_tr == i, j], w_tr[y_tr == i], edges)
                ax.stairs(test, edges, color=color, lw=1.5)
                p_value = report.ks[node][cls].pvalue
                ax.errorbar(
                    centres,
                    train,
                    yerr=err,
                    fmt="o",
                    ms=3,
                    color=color,
                    label=f"{cls}, KS p = {p_value:.2g}",
                )
            ax.set_yscale("log")
            ax.set_ylim(top=ax.get_ylim()[1] * 30)  # room for the legend above the curves
            ax.set_xlabel(f"{node} node output")
            ax.set_ylabel("(1/N) dN/dx")
            ax.legend(loc="upper center", title="line: test, points: train")
        for ax in axes[k:]:
            ax.set_axis_off()
    return Path(path)


def _density(
    values: np.ndarray, weight: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    total = weight.sum()
    content, _ = np.histogram(values, bins=edges, weights=weight)
    sumw2, _ = np.histogram(values, bins=edges, weights=weight * weight)
    norm = total * np.diff(edges)
    return content / norm, np.sqrt(sumw2) / norm


def plot_multiclass(
    report: MulticlassReport,
    scores: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    folder: PathLike,
    model_name: str,
) -> dict[str, Path]:
    """Every multi-class plot of one model; ``scores``: 'train'/'test' -> (y, proba, w).

    The node plots show expected yields: test weights times the report's ``yield_scale``.
    """
    folder = Path(folder)
    y_tr, p_tr, w_tr = scores["train"]
    y_te, p_te, w_te = scores["test"]
    return {
        "roc": plot_multiclass_roc(report, folder / f"{model_name}_roc_per_class.png", model_name),
        "confusion": plot_confusion(report, folder / f"{model_name}_confusion.png", model_name),
        "nodes": plot_node_outputs(
            y_te,
            p_te,
            w_te,
            report.classes,
            folder / f"{model_name}_node_outputs.png",
            model_name,
            yield_scale=report.yield_scale,
        ),
        "overtraining": plot_multiclass_overtraining(
            y_tr,
            p_tr,
            w_tr,
            y_te,
            p_te,
            w_te,
            report,
            folder / f"{model_name}_overtraining.png",
            model_name,
        ),
    }
