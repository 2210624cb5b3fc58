"""xgb on the workers: ``xgboost.dask`` on the row partitions, a plain booster as the result.

Each partition's training rows are read and normalised on a worker (a Dask array block),
weighted and labelled as the in-process fit weights them, and xgboost.dask trains with
the same parameters, early stopping on the validation part and pruning rule, then (with
``refit: true``, the default) trains again on fit and validation rows with the rounds
found, scaled to the larger sample, as the in-process fit does. The booster
it returns is an ordinary ``xgboost.Booster``: the logged model, ONNX export and scoring
do not change.

xgboost.dask cannot lose a worker (its collective waits for every member), so a watchdog
ends the wait: when a worker that took part leaves, the fit fails with a clear error after
``LOST_WORKER_GRACE_S`` instead of hanging.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from hepclf.cluster.prepare import RowPlan
from hepclf.models.xgb import XGB, booster_params
from hepclf.runtime.errors import HepclfError
from hepclf.training.normalize import Normalizer

LOST_WORKER_GRACE_S = 10.0
POLL_S = 0.5


Part = tuple[str, int, np.ndarray, np.ndarray]
"""One partition's share of a fit: its path, label, local rows and training weights."""


def _block(part: Part, normalizer: Normalizer) -> np.ndarray:
    """One partition's rows as [features..., label, weight] (one task: co-located parts)."""
    from hepclf.ingest.partitions import read_features

    path, label, rows, weight = part
    X = normalizer.transform(read_features(path, rows))
    return np.column_stack([X, np.full(len(X), label, np.float32), weight]).astype(np.float32)


def _dask_parts(
    client: Any,
    plans: list[RowPlan],
    normalizer: Normalizer,
    weights: list[np.ndarray],
    n_features: int,
) -> tuple[Any, Any, Any]:
    """Features, labels and weights of ``plans`` as Dask arrays of one block per partition.

    The rows and weights are scattered to the workers once, so the task graph (built and
    held in the client, and in a LocalCluster's scheduler, which runs in this process too)
    carries only their keys: a fit and its refit reuse them."""
    import dask
    import dask.array as da

    parts: list[Part] = [(p.path, p.label, p.rows, w) for p, w in zip(plans, weights, strict=True)]
    shared = client.scatter(parts, hash=False)
    [norm] = client.scatter([normalizer], broadcast=True, hash=False)
    blocks = [
        da.from_delayed(
            dask.delayed(_block, pure=True)(part, norm),
            shape=(len(plan.rows), n_features + 2),
            dtype=np.float32,
        )
        for plan, part in zip(plans, shared, strict=True)
    ]
    whole = da.concatenate(blocks, axis=0)
    return whole[:, :n_features], whole[:, n_features], whole[:, n_features + 1]


def _mean_one(plans: list[RowPlan]) -> list[np.ndarray]:
    """|w| scaled to mean 1 over all ``plans``, as the models' own fit scales its weights."""
    total = sum(float(np.abs(p.weight).sum()) for p in plans)
    n = sum(len(p.weight) for p in plans)
    return [np.abs(p.weight) * (n / total) for p in plans]


def fit_xgb_on_dask(
    model: XGB,
    client: Any,
    fit: list[RowPlan],
    validation: list[RowPlan],
    normalizer: Normalizer,
    n_features: int,
) -> None:
    """Train ``model`` with xgboost.dask on the partitions' fit rows, stopping early on
    the validation rows; raises :class:`HepclfError` when a worker is lost meanwhile."""
    import dask.array as da
    import xgboost.dask as dxgb

    if not validation:
        raise HepclfError(
            "xgb on a cluster needs a validation part for early stopping: set "
            "split.validation_fraction above 0"
        )
    hp = model.validated_params()
    classes = np.unique([p.label for p in fit])
    n_classes = len(classes)
    X, y, w = _dask_parts(client, fit, normalizer, _mean_one(fit), n_features)
    Xv, yv, wv = _dask_parts(client, validation, normalizer, _mean_one(validation), n_features)
    params = booster_params(hp, n_classes, model.seed)
    params.pop("nthread", None)  # a worker's own thread count

    def train() -> dict[str, Any]:
        dtrain = dxgb.DaskQuantileDMatrix(client, X, y, weight=w, max_bin=hp.max_bin)
        dvalid = dxgb.DaskQuantileDMatrix(client, Xv, yv, weight=wv, ref=dtrain)
        return dxgb.train(
            client,
            params,
            dtrain,
            num_boost_round=hp.n_estimators,
            evals=[(dtrain, "train"), (dvalid, "val")],
            early_stopping_rounds=hp.early_stopping_rounds,
            verbose_eval=False,
        )

    output = _watched(client, train)
    model.classes_ = classes
    model.n_features_in_ = n_features
    model.history_ = {}
    model.device_ = "CPU"
    model.set_booster(output["booster"], output["history"], n_features, hp)
    if not hp.refit:
        return
    # the in-process rule: train again on fit + validation events with the rounds found
    n_fit, n_validation = (sum(len(p.rows) for p in part) for part in (fit, validation))
    rounds = model.refit_rounds(n_fit, n_validation)
    everything = [da.concatenate(parts) for parts in zip((X, y, w), (Xv, yv, wv), strict=True)]

    def refit() -> dict[str, Any]:
        dall = dxgb.DaskQuantileDMatrix(
            client, everything[0], everything[1], weight=everything[2], max_bin=hp.max_bin
        )
        return dxgb.train(client, params, dall, num_boost_round=rounds, verbose_eval=False)

    model.set_refit(_watched(client, refit)["booster"], rounds, n_features)


def _workers(client: Any) -> set[str]:
    return set(client.scheduler_info(n_workers=-1)["workers"])


def _watched(client: Any, train: Any) -> dict[str, Any]:
    """Run ``train`` in a thread; fail clearly when a worker that took part disappears."""
    started = _workers(client)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = train()
        except BaseException as err:  # handed to the waiting thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="hepclf-xgboost-dask", daemon=True)
    thread.start()
    lost_at: float | None = None
    while thread.is_alive():
        thread.join(POLL_S)
        gone = started - _workers(client)
        if gone and lost_at is None:
            lost_at = time.monotonic()
        if lost_at is not None and time.monotonic() - lost_at > LOST_WORKER_GRACE_S:
            raise HepclfError(
                f"xgb: Dask worker(s) {sorted(gone)} left during training; xgboost.dask cannot "
                "continue without a worker (its collective needs every member), so the fit "
                "was abandoned. Rerun; on a batch system, ask for workers that are not "
                "pre-empted, or more memory per worker"
            )
    if "error" in outcome:
        err = outcome["error"]
        if lost_at is not None:
            raise HepclfError(
                f"xgb: a Dask worker left during training and xgboost.dask failed "
                f"({type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''})"
            ) from None
        raise err
    return outcome["value"]
