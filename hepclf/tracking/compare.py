"""Side-by-side view of the models of recent pipeline runs, read back from MLflow."""

from __future__ import annotations

from datetime import datetime

import mlflow
from rich.table import Table

from hepclf.errors import HepclfError
from hepclf.tracking.logging import tracking_uri_for

SHOWN = (
    ("AUC test", "auc_test"),
    ("AUC train", "auc_train"),
    ("effS@B=0.01 test", "eff_s_at_eff_b_0.01_test"),
    ("effS@B=0.1 test", "eff_s_at_eff_b_0.1_test"),
    ("KS p sig", "ks_pvalue_signal"),
    ("KS p bkg", "ks_pvalue_background"),
    ("overtrained", "overtrained"),
    ("train s", "train_seconds"),
)


def compare_runs(tracking_uri: str | None, experiment: str | None, runs: int) -> Table:
    """A table with one row per model of the ``runs`` most recent pipeline runs."""
    mlflow.set_tracking_uri(tracking_uri_for(tracking_uri))
    client = mlflow.MlflowClient()
    if experiment is None:
        found = client.search_experiments(order_by=["last_update_time DESC"], max_results=1)
        if not found:
            raise HepclfError(f"no MLflow experiments at {mlflow.get_tracking_uri()}")
        exp = found[0]
    else:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise HepclfError(
                f"no MLflow experiment {experiment!r} at {mlflow.get_tracking_uri()}; "
                f"experiments there: {names}"
            )
    parents = client.search_runs(
        [exp.experiment_id],
        "tags.`hepclf.kind` = 'pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=runs,
    )
    table = Table(title=f"Experiment {exp.name!r}", title_justify="left")
    for title in ("run", "started", "model", *(t for t, _ in SHOWN)):
        table.add_column(title, justify="left" if title in ("run", "started", "model") else "right")
    for parent in parents:
        children = client.search_runs(
            [exp.experiment_id],
            f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        started = parent.info.start_time
        stamp = datetime.fromtimestamp(started / 1000).strftime("%Y-%m-%d %H:%M")
        best = parent.data.tags.get("hepclf.best_model")
        for child in children:
            name = child.data.tags.get("hepclf.model", child.info.run_name)
            cells = []
            for _, key in SHOWN:
                value = child.data.metrics.get(key)
                if value is None:
                    cells.append("-")
                elif key == "overtrained":
                    cells.append("YES" if value else "no")
                elif key == "train_seconds":
                    cells.append(f"{value:.1f}")
                else:
                    cells.append(f"{value:.4g}")
            table.add_row(
                parent.info.run_id[:8], stamp, name + (" *" if name == best else ""), *cells
            )
    return table
