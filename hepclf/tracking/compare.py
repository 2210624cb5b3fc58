"""The models of recent pipeline runs, read back from MLflow (nothing is created or changed).

Every run is reported with its status: a run that failed, was killed or is still running
(or died without a word, e.g. SIGKILL) never names a champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import mlflow
from mlflow.entities import Experiment

from hepclf.runtime.errors import HepclfError
from hepclf.tracking.store import use_store


@dataclass
class RunRecord:
    """One pipeline run: its status, its champion (finished runs only) and model metrics."""

    run_id: str
    started: str
    status: str
    best: str | None
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    model_status: dict[str, str] = field(default_factory=dict)


@dataclass
class ExperimentRuns:
    """Recent pipeline runs of one experiment in one store."""

    experiment: str
    tracking_uri: str
    runs: list[RunRecord]


def recent_runs(tracking_uri: str | None, experiment: str | None, runs: int) -> ExperimentRuns:
    """The ``runs`` most recent pipeline runs of ``experiment`` (default: the experiment of
    the pipeline run that started last)."""
    uri = use_store(tracking_uri, create=False)
    client = mlflow.MlflowClient()
    if experiment is None:
        exp = latest_pipeline_experiment(client, uri)
    else:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise HepclfError(
                f"no MLflow experiment {experiment!r} in the store at {uri}; "
                f"experiments there: {names}"
            )
    parents = client.search_runs(
        [exp.experiment_id],
        "tags.`hepclf.kind` = 'pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=runs,
    )
    records = []
    for parent in parents:
        children = client.search_runs(
            [exp.experiment_id],
            f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        status = parent.info.status
        record = RunRecord(
            parent.info.run_id,
            datetime.fromtimestamp(parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M"),
            status,
            parent.data.tags.get("hepclf.best_model") if status == "FINISHED" else None,
        )
        for child in children:
            name = child.data.tags.get("hepclf.model", child.info.run_name)
            record.models[name] = dict(child.data.metrics)
            record.model_status[name] = child.info.status
        records.append(record)
    return ExperimentRuns(exp.name, uri, records)


def latest_pipeline_experiment(client: mlflow.MlflowClient, uri: str) -> Experiment:
    """The experiment of the most recently started pipeline run (not the experiment created
    or touched last: an experiment is updated by other kinds of runs too)."""
    experiments = client.search_experiments()
    if not experiments:
        raise HepclfError(f"no MLflow experiments in the store at {uri}")
    latest = client.search_runs(
        [e.experiment_id for e in experiments],
        "tags.`hepclf.kind` = 'pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not latest:
        names = [e.name for e in experiments]
        raise HepclfError(
            f"no pipeline runs (hepclf train) in the store at {uri}; experiments there: {names}"
        )
    return client.get_experiment(latest[0].info.experiment_id)
