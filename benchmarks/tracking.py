"""What tracking a run costs besides the fits: logging the dataset and drawing the input plots.

Compares, on a synthetic feature table of ``--events`` rows (19 float32 features, as the
demo pipeline), MLflow's ``from_pandas`` dataset (schema and digest inferred cell by cell)
with hepclf's dataset (explicit schema, one hash of the arrays), each logged with
``mlflow.log_input`` to a fresh SQLite store; and the input plots from every event versus
from the capped seeded sample the pipeline draws them from. Prints seconds and ratios.

    .venv/bin/python benchmarks/tracking.py [--events 194000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np

from hepclf.evaluation import figures, plots
from hepclf.evaluation.feature_plots import plot_feature_distributions
from hepclf.ingest import FeatureTable
from hepclf.tracking.logging import TableDataset
from hepclf.tracking.store import use_store


def synthetic_table(n: int, seed: int = 1) -> FeatureTable:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n).astype(np.int8)
    X = (rng.normal(size=(n, 19)) + label[:, None] * 0.3).astype(np.float32)
    columns = [f"f{i}" for i in range(19)]
    return FeatureTable(
        X,
        columns,
        label,
        rng.normal(1.0, 0.3, n),
        label.astype(np.int32),
        ["bkg", "sig"],
        np.arange(n, dtype=np.int64),
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=194_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    table = synthetic_table(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        use_store(f"sqlite:///{Path(tmp) / 'mlflow.db'}", create=True)
        mlflow.set_experiment("bench")
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")

            def mlflow_dataset() -> None:
                frame = table.to_pandas()
                dataset = mlflow.data.from_pandas(frame, source=tmp, name="a", targets="label")
                mlflow.log_input(dataset, context="training")

            def hepclf_dataset() -> None:
                mlflow.log_input(TableDataset(table, tmp, "b"), context="training")

            old, new = timed(mlflow_dataset), timed(hepclf_dataset)
        print(f"log_input, {args.events:,} events: from_pandas {old:.2f} s, hepclf {new:.3f} s")
        print(f"  ratio {old / new:.0f}x")

        folder = Path(tmp) / "plots"

        def every_event() -> None:
            X, y, w = table.X, table.label, table.weight
            plots.plot_correlation_matrices(
                X, table.columns, y, w, folder / "a.png", folder / "b.png"
            )
            plot_feature_distributions(X, table.columns, y, w, folder / "c.png")

        def capped() -> None:
            figures.input_plots(table.X, table.columns, table.label, table.weight, folder)

        full = cap = float("inf")
        for _ in range(args.repeat):  # interleaved, best of: a shared machine drifts
            full, cap = min(full, timed(every_event)), min(cap, timed(capped))
        print(
            f"input plots: every event {full:.2f} s, sample of "
            f"{min(args.events, figures.MAX_PLOT_EVENTS):,} {cap:.2f} s (ratio {full / cap:.1f}x)"
        )


if __name__ == "__main__":
    main()
