"""A readable account of an ingested table: per-sample bookkeeping and per-class features."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from hepclf.ingest.table import FeatureTable


def print_summary(table: FeatureTable, console: Console | None = None) -> None:
    """Events per sample before/after selection, weights, and feature mean/std per class."""
    console = console or Console()
    samples = Table(title="Samples", title_justify="left")
    for column in (
        "sample",
        "class",
        "files",
        "events read",
        "selected",
        "sum of weights",
        "negative weights",
        "dropped (NaN/inf)",
    ):
        samples.add_column(column, justify="left" if column in ("sample", "class") else "right")
    for s in table.info.get("samples", []):
        samples.add_row(
            s["name"],
            s["label"],
            str(s["files"]),
            f"{s['entries']:,}",
            f"{s['selected']:,}",
            f"{s['sum_weights']:.6g}",
            f"{s['negative_weights']:,}",
            f"{s['dropped_nonfinite']:,}",
        )
    console.print(samples)

    features = Table(title="Features (unweighted)", title_justify="left")
    for column in ("feature", "signal mean", "signal std", "background mean", "background std"):
        features.add_column(column, justify="left" if column == "feature" else "right")
    signal, background = table.X[table.label == 1], table.X[table.label == 0]
    stats = [
        (s.mean(axis=0, dtype=np.float64), s.std(axis=0, dtype=np.float64))
        for s in (signal, background)
    ]
    for i, name in enumerate(table.columns):
        features.add_row(name, *(f"{v[i]:.4g}" for pair in stats for v in pair))
    console.print(features)
    origin = (
        "reused from cache" if table.info.get("cached") else f"{table.info.get('seconds', 0)} s"
    )
    console.print(f"{len(table):,} events, {len(table.columns)} feature columns ({origin})")
