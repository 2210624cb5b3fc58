"""A readable account of an ingested table, as plain rows: per-sample bookkeeping and
per-class feature statistics. The command line draws them (``hepclf.cli.render``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepclf.ingest.table import FeatureTable


@dataclass(frozen=True)
class Rows:
    """A titled table of text cells: ``text_columns`` name columns, then numbers."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    text_columns: int = 1


def sample_rows(table: FeatureTable) -> Rows:
    """Events per sample before/after selection, weights, and events dropped for NaN/inf."""
    headers = [
        "sample",
        "class",
        "files",
        "events read",
        "selected",
        "sum of weights",
        "negative weights",
        "dropped (NaN/inf)",
    ]
    rows = [
        [
            s["name"],
            s["label"],
            str(s["files"]),
            f"{s['entries']:,}",
            f"{s['selected']:,}",
            f"{s['sum_weights']:.6g}",
            f"{s['negative_weights']:,}",
            f"{s['dropped_nonfinite']:,}",
        ]
        for s in table.info.get("samples", [])
    ]
    return Rows("Samples", headers, rows, text_columns=2)


def class_names(table: FeatureTable) -> dict[int, str]:
    """Label index -> class name, read from the samples that carry each label."""
    names: dict[int, str] = {}
    for i, summary in enumerate(table.info.get("samples", [])):
        labels = table.label[table.sample == i]
        if len(labels):
            names.setdefault(int(labels[0]), summary["label"])
    return {k: names.get(k, str(k)) for k in sorted({*names, *np.unique(table.label).tolist()})}


def feature_rows(
    table: FeatureTable, by_class: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
) -> Rows:
    """Unweighted mean and standard deviation of every feature, per class (``by_class``:
    already computed, e.g. by a cluster's workers, as label -> (mean, std))."""
    classes = class_names(table)
    headers = ["feature"] + [
        f"{name} {stat}" for name in classes.values() for stat in ("mean", "std")
    ]
    stats = []
    for label in classes:
        if by_class is not None:
            stats.append(by_class[label])
            continue
        X = table.X[table.label == label]
        stats.append((X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)))
    rows = [
        [name, *(f"{v[i]:.4g}" for pair in stats for v in pair)]
        for i, name in enumerate(table.columns)
    ]
    return Rows("Features (unweighted)", headers, rows)


def origin_line(table: FeatureTable) -> str:
    """Events, columns, and whether the table was read now or reused from the cache."""
    origin = (
        "reused from cache" if table.info.get("cached") else f"{table.info.get('seconds', 0)} s"
    )
    return f"{len(table):,} events, {len(table.columns)} feature columns ({origin})"
