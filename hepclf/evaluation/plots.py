"""Standard HEP classifier plots as PNG files, in mplhep's ROOT style.

Each function writes one file (creating its folder), returns its path, and leaves no
global state behind: figures are built with the object-oriented API on an Agg canvas, so
pyplot never holds them, and the style is applied only inside a context. Histograms are
filled with numpy, so millions of events cost no more to draw than a thousand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import as_weights
from hepclf.evaluation.stats import weighted_correlation

PathLike = str | os.PathLike[str]

SIGNAL_COLOR = "#3f90da"
BACKGROUND_COLOR = "#bd1f01"
DPI = 100
MAX_CURVE_POINTS = 2000
MAX_ANNOTATED_FEATURES = 15
"""Correlation matrices with more features than this are not annotated with numbers."""


@contextmanager
def styled_figure(
    path: PathLike, figsize: tuple[float, float], rc: Mapping[str, Any] | None = None
) -> Iterator[Figure]:
    """Yield a styled figure and save it to ``path`` as PNG when the block ends without error
    (PNG whatever the suffix, so an atomic temporary name works too)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.style.context([mplhep.style.ROOT, dict(rc or {})]):
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        fig.savefig(out, dpi=DPI, format="png")


def _density(
    values: ArrayLike, weight: ArrayLike | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram normalised to unit area, and its error sqrt(Σw²) on the same scale."""
    x = np.asarray(values, dtype=np.float64)
    w = as_weights(weight, x.size)
    total = w.sum()
    if not total > 0:
        raise ValueError(f"cannot normalise a histogram with total weight {total:g}")
    content, _ = np.histogram(x, bins=edges, weights=w)
    sumw2, _ = np.histogram(x, bins=edges, weights=w * w)
    norm = total * np.diff(edges)
    return content / norm, np.sqrt(sumw2) / norm


def _check_names(n_features: int, feature_names: Sequence[str]) -> list[str]:
    names = list(feature_names)
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names given for {n_features} features")
    return names


def _as_matrix(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(x, dtype=np.float64)
    labels = np.asarray(y)
    if data.ndim != 2 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"X must be (events × features) and y (events,): {data.shape}, {labels.shape}"
        )
    bad = np.count_nonzero(~np.isfinite(data))
    if bad:
        raise ValueError(f"X contains {bad} non-finite values; drop or fill them first")
    return data, labels == 1


def plot_roc_overlay(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: PathLike,
    log_rejection: bool = True,
    *,
    aucs: Mapping[str, float] | None = None,
    title: str = "",
    auc_label: str = "AUC",
    notes: Mapping[str, str] | None = None,
) -> Path:
    """Background rejection 1/eff_b against signal efficiency, one line per model.

    ``curves`` maps model name to ``(eff_s, eff_b)``. The legend shows each model's AUC
    (named ``auc_label``), taken from ``aucs`` or, for models missing there, integrated
    from its curve, and any of its ``notes``; ``title`` says what the curves are when that
    is not obvious.
    """
    if not curves:
        raise ValueError("no ROC curves to plot")
    with styled_figure(path, (10.0, 10.0)) as fig:
        ax = fig.subplots()
        for name, (eff_s, eff_b) in curves.items():
            s, b = np.asarray(eff_s, dtype=np.float64), np.asarray(eff_b, dtype=np.float64)
            auc = (aucs or {}).get(name, float(np.trapezoid(s, b)))
            passing = b > 0
            s, b = s[passing], b[passing]
            shown = _thin(s.size)
            note = f"; {notes[name]}" if notes and name in notes else ""
            label = f"{name} ({auc_label} = {auc:.3f}{note})"
            ax.plot(s[shown], 1.0 / b[shown], lw=2, label=label)
        random_s = np.linspace(0.01, 1.0, 100)
        ax.plot(random_s, 1.0 / random_s, ls="--", color="grey", label="Random")
        ax.set_xlim(0.0, 1.0)
        if log_rejection:
            ax.set_yscale("log")
        ax.set_xlabel("Signal efficiency")
        ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
        ax.legend(loc="upper right")
        if title:
            ax.set_title(title, fontsize="medium")
    return Path(path)


def _thin(n: int) -> np.ndarray:
    """Indices of at most 2 × MAX_CURVE_POINTS of n curve points, for speed on big samples.

    Log-spaced indices keep the steep start (tight cuts, high rejection), evenly spaced ones
    the rest; a line through them is indistinguishable from the full curve.
    """
    if n <= MAX_CURVE_POINTS:
        return np.arange(n)
    spaced = np.concatenate(
        [np.geomspace(1, n, MAX_CURVE_POINTS), np.linspace(1, n, MAX_CURVE_POINTS)]
    )
    return np.unique(spaced.astype(np.int64) - 1)


class _ClassScores(NamedTuple):
    label: str
    color: str
    hatch: str | None
    test: ArrayLike
    w_test: ArrayLike | None
    train: ArrayLike
    w_train: ArrayLike | None
    ks_p: float


def plot_overtraining(
    score_train_s: ArrayLike,
    w_train_s: ArrayLike | None,
    score_train_b: ArrayLike,
    w_train_b: ArrayLike | None,
    score_test_s: ArrayLike,
    w_test_s: ArrayLike | None,
    score_test_b: ArrayLike,
    w_test_b: ArrayLike | None,
    ks_p_signal: float,
    ks_p_background: float,
    path: PathLike,
    model_name: str,
    *,
    bins: int = 40,
) -> Path:
    """TMVA's overtraining check: test scores as filled areas, training scores as points.

    All four distributions are normalised to unit area on common bins spanning every score;
    the KS p-values of train against test are in the legend.
    """
    classes = (
        _ClassScores(
            "Signal",
            SIGNAL_COLOR,
            None,
            score_test_s,
            w_test_s,
            score_train_s,
            w_train_s,
            ks_p_signal,
        ),
        _ClassScores(
            "Background",
            BACKGROUND_COLOR,
            "//",
            score_test_b,
            w_test_b,
            score_train_b,
            w_train_b,
            ks_p_background,
        ),
    )
    scores = np.concatenate(
        [np.ravel(c.test) for c in classes] + [np.ravel(c.train) for c in classes]
    )
    lo, hi = float(scores.min()), float(scores.max())
    edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
    centres = 0.5 * (edges[1:] + edges[:-1])
    with styled_figure(path, (10.0, 8.0), {"legend.fontsize": "x-small"}) as fig:
        ax = fig.subplots()
        top = 0.0
        for c in classes:
            test_density, _ = _density(c.test, c.w_test, edges)
            train_density, train_err = _density(c.train, c.w_train, edges)
            ax.stairs(
                test_density,
                edges,
                fill=True,
                alpha=0.35,
                color=c.color,
                hatch=c.hatch,
                label=f"{c.label} (test)",
            )
            ax.stairs(test_density, edges, color=c.color, lw=1.5)
            ax.errorbar(
                centres,
                train_density,
                yerr=train_err,
                fmt="o",
                ms=5,
                color=c.color,
                label=f"{c.label} (train), KS p = {c.ks_p:.3g}",
            )
            top = max(top, float(np.max(test_density)), float(np.max(train_density + train_err)))
        ax.set_ylim(0.0, 1.45 * top)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(f"{model_name} score")
        ax.set_ylabel("(1/N) dN/dx")
        ax.legend(loc="upper center", ncols=2, title=model_name)
    return Path(path)


def plot_learning_curves(
    history: Mapping[str, Sequence[float]], path: PathLike, title: str
) -> Path:
    """One line per recorded series against epoch or iteration: losses and error rates in
    one panel, AUCs in another (their scales differ), each with its own labelled axis."""
    series = {name: np.asarray(v, dtype=np.float64) for name, v in history.items() if len(v)}
    if not series:
        raise ValueError("the training history has no values to plot")
    groups = {
        "auc": {n: v for n, v in series.items() if "auc" in n.lower()},
        "loss": {n: v for n, v in series.items() if "auc" not in n.lower()},
    }
    groups = {k: g for k, g in groups.items() if g}
    with styled_figure(path, (10.0 * len(groups), 8.0)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(groups)))
        for ax, (kind, curves) in zip(axes, groups.items(), strict=True):
            for name, values in curves.items():
                steps = np.arange(1, values.size + 1)
                marker = "o" if values.size <= 30 else None
                ax.plot(steps, values, lw=2, marker=marker, label=name)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("Epoch / iteration")
            ax.set_ylabel("AUC" if kind == "auc" else _loss_label(curves))
            ax.legend()
        fig.suptitle(title)
    return Path(path)


def _loss_label(curves: Mapping[str, np.ndarray]) -> str:
    """The y label of the loss panel, from the series' names (loss, logloss, error)."""
    names = " ".join(curves).lower()
    if "error" in names and "loss" not in names:
        return "Misclassification rate (weighted)"
    return "Loss" if "error" not in names else "Loss / error rate"


def plot_correlation_matrices(
    X: ArrayLike,
    feature_names: Sequence[str],
    y: ArrayLike,
    w: ArrayLike | None,
    path_signal: PathLike,
    path_background: PathLike,
) -> tuple[Path, Path]:
    """Weighted linear correlation (in %) of the input features, for signal and background.

    Numbers are written in the cells for up to ``MAX_ANNOTATED_FEATURES`` features.
    """
    data, is_signal = _as_matrix(X, y)
    names = _check_names(data.shape[1], feature_names)
    weight = as_weights(w, data.shape[0])
    for label, mask, path in (
        ("signal", is_signal, path_signal),
        ("background", ~is_signal, path_background),
    ):
        corr = 100.0 * weighted_correlation(data[mask], weight[mask])
        _correlation_figure(corr, names, f"Correlation, {label} [%]", path)
    return Path(path_signal), Path(path_background)


def _correlation_figure(corr: np.ndarray, names: list[str], title: str, path: PathLike) -> None:
    n = len(names)
    side = max(8.0, 0.3 * n + 5.0)
    with styled_figure(path, (side + 1.5, side), {"font.size": 16}) as fig:
        ax = fig.subplots()
        image = ax.imshow(corr, cmap="RdBu_r", vmin=-100.0, vmax=100.0, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ticks = np.arange(n)
        ax.set_xticks(ticks, names, rotation=90)
        ax.set_yticks(ticks, names)
        _no_minor_ticks(ax)
        ax.set_title(title)
        if n <= MAX_ANNOTATED_FEATURES:
            for (i, j), value in np.ndenumerate(corr):
                text = "–" if np.isnan(value) else str(round(value))
                color = "white" if abs(value) > 60 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color=color)


def plot_feature_importance(
    importances: ArrayLike,
    feature_names: Sequence[str],
    path: PathLike,
    model_name: str,
    kind: str = "",
) -> Path:
    """Horizontal bars of feature importance, most important at the top; ``kind`` says
    which importance it is (the model's ``importance_type``)."""
    values = np.asarray(importances, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"importances must be 1-D, got shape {values.shape}")
    names = _check_names(values.size, feature_names)
    order = np.argsort(values)[::-1]
    positions = np.arange(values.size)
    rc = {"font.size": 16, "xaxis.labellocation": "center"}
    with styled_figure(path, (10.0, max(4.0, 0.45 * values.size + 2.0)), rc) as fig:
        ax = fig.subplots()
        ax.barh(positions, values[order], color=SIGNAL_COLOR)
        ax.set_yticks(positions, [names[i] for i in order])
        ax.invert_yaxis()
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"Importance: {kind}" if kind else "Importance")
        ax.set_title(f"{model_name}: feature importance")
    return Path(path)


def _no_minor_ticks(ax: Axes) -> None:
    """Category-like axes (feature names, unlabelled density) read better without them."""
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())


def plot_roc_folds(
    fold_curves: Sequence[tuple[ArrayLike, ArrayLike]],
    out_of_fold: tuple[ArrayLike, ArrayLike],
    path: PathLike,
    model_name: str,
    *,
    auc_out_of_fold: float,
    auc_folds: Sequence[float],
) -> Path:
    """Background rejection of a k-fold model: out-of-fold curve and the band of its folds.

    Curves are ``(eff_s, eff_b)``; each fold's rejection is interpolated on a common signal
    efficiency grid, and the band spans the lowest to highest fold, so its width shows how
    much one fold's model and test events move the curve (TMVA prints fold ROC integrals).
    """
    grid = np.linspace(0.02, 1.0, 200)

    def rejection(eff_s: ArrayLike, eff_b: ArrayLike) -> np.ndarray:
        s = np.maximum.accumulate(np.asarray(eff_s, dtype=np.float64))
        b = np.maximum.accumulate(np.asarray(eff_b, dtype=np.float64))
        at = np.interp(grid, s, b)
        return np.divide(1.0, at, out=np.full(grid.shape, np.inf), where=at > 0)

    folds = np.array([rejection(*c) for c in fold_curves])
    aucs = np.asarray(auc_folds, dtype=np.float64)
    with styled_figure(path, (10.0, 10.0)) as fig:
        ax = fig.subplots()
        ax.fill_between(
            grid,
            folds.min(axis=0),
            folds.max(axis=0),
            color=SIGNAL_COLOR,
            alpha=0.3,
            label=f"{len(folds)} folds: AUC {aucs.mean():.4f} ± {aucs.std(ddof=1):.4f}",
        )
        ax.plot(
            grid,
            rejection(*out_of_fold),
            lw=2,
            color=SIGNAL_COLOR,
            label=f"out-of-fold (AUC = {auc_out_of_fold:.4f})",
        )
        ax.plot(grid, 1.0 / grid, ls="--", color="grey", label="Random")
        ax.set_xlim(0.0, 1.0)
        ax.set_yscale("log")
        ax.set_xlabel("Signal efficiency")
        ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
        ax.legend(loc="upper right", title=model_name)
    return Path(path)
