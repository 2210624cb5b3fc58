"""k-fold models: out-of-fold scores wherever the event id is given, a word once where it
is not, and no event id that trains in one fold but scores in another."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import uproot

from hepclf.config import parse_pipeline
from hepclf.config.features import FeatureConfig
from hepclf.config.training import NormalizationConfig
from hepclf.models import build_model
from hepclf.models.folds import FoldEnsemble
from hepclf.runtime.errors import InputDataError
from hepclf.scoring.service.payloads import PayloadError, features_from_columns
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer
from tests.conftest import demo_pipeline_dict, tracking_uri


def _kfold_bundle(name: str = "kf") -> tuple[ModelBundle, np.ndarray, np.ndarray]:
    """A 3-fold linear model on three Gaussian features: (bundle, raw X, event ids)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 900)
    X = (rng.normal(size=(900, 3)) + 0.8 * y[:, None]).astype(np.float32)
    ids = rng.choice(10**9, size=900, replace=False)
    normalizer = Normalizer.fit(X, NormalizationConfig())
    model = FoldEnsemble(build_model("linear", {}, seed=1), folds=3)
    model.fit(normalizer.transform(X), y, np.ones(900), ids)
    features = [FeatureConfig(name=f"x{i}", branch=f"x{i}") for i in range(3)]
    return ModelBundle(name, features, normalizer, model, event_id="event"), X, ids


def test_service_columns_with_an_event_id_column_of_another_length_are_a_payload_error() -> None:
    bundle, X, ids = _kfold_bundle()
    payload = {f"x{j}": X[:, j].tolist() for j in range(3)}
    with pytest.raises(PayloadError, match=r"equal lengths.*'event': 899"):
        features_from_columns({**payload, "event": [int(i) for i in ids[:-1]]}, bundle)


def test_scoring_without_event_ids_says_once_that_it_gives_the_fold_average() -> None:
    bundle, X, ids = _kfold_bundle("kf_once")
    frame = pd.DataFrame(X, columns=bundle.columns)
    with pytest.warns(UserWarning, match="'kf_once'.*without its event-id column 'event'"):
        averaged = bundle.score_features(bundle.features_from_frame(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: a second request is quiet
        bundle.score_features(bundle.features_from_frame(frame))
        out_of_fold = bundle.score_features(bundle.features_from_frame(frame.assign(event=ids)))
    assert not np.allclose(averaged, out_of_fold)


def test_nan_event_ids_are_refused_in_scoring_as_in_training() -> None:
    bundle, X, ids = _kfold_bundle("kf_nan")
    frame = pd.DataFrame(X, columns=bundle.columns).assign(event=ids.astype(np.float64))
    frame.loc[[4, 7], "event"] = np.nan
    with pytest.raises(InputDataError, match=r"'event' holds 2 values .*entries 4, 7"):
        bundle.features_from_frame(frame)
    arrays = {c: X[:, j] for j, c in enumerate(bundle.columns)}
    with pytest.raises(InputDataError, match="not integers"):
        bundle.features_from_branches({**arrays, "event": frame["event"].to_numpy()}, len(X))


def test_ingest_refuses_nan_event_ids_naming_the_branch_and_entries(
    tmp_path: Path, cache_dir: Path
) -> None:
    from hepclf.ingest import ingest
    from hepclf.ingest.demo_data import write_demo_data

    write_demo_data(tmp_path, events=400, seed=2)
    arrays = uproot.open(tmp_path / "signal.root")["Events"].arrays()
    event = np.asarray(arrays["event"], dtype=np.float64)
    event[[3, 10]] = np.nan
    with uproot.recreate(tmp_path / "nan_ids.root") as file:
        file["Events"] = {**{f: arrays[f] for f in arrays.fields}, "event": event}
    raw = demo_pipeline_dict(tmp_path, selection=None)
    raw["samples"][0]["files"] = [str(tmp_path / "nan_ids.root")]
    raw["samples"][0].pop("sum_weights", None)  # this copy keeps no Runs tree
    with pytest.raises(InputDataError, match=r"nan_ids.root.*'event' holds 2 .*entries 3, 10"):
        ingest(parse_pipeline(raw), use_cache=False)
    # a selection that leaves those events out cures it
    raw["samples"][0]["selection"] = "event == event"
    assert len(ingest(parse_pipeline(raw), use_cache=False)) > 0


def test_logged_input_example_of_a_kfold_model_carries_event_ids(tmp_path: Path) -> None:
    """A request copied from serving_input_example.json gets the out-of-fold scores."""
    from hepclf.tracking.pyfunc import input_example_for, log_bundle
    from hepclf.tracking.registry import load_bundle

    bundle, X, ids = _kfold_bundle()
    with tracking_uri(f"sqlite:///{tmp_path}/mlflow.db"):
        mlflow.set_experiment("fold-truth")  # not the experiment an earlier test chose
        with mlflow.start_run() as run:
            uri = log_bundle(bundle, input_example=input_example_for(bundle, X, ids))
        # the run URI the README gives: the logged model is named after its type
        assert load_bundle(f"runs:/{run.info.run_id}/linear").event_id == "event"
        model = tmp_path / "model"
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(model)))
        request = json.loads((folder / "serving_input_example.json").read_text())
        split = request["dataframe_split"]
        assert split["columns"] == [*bundle.columns, "event"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        assert frame["event"].tolist() == ids[:5].tolist()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fold-average warning: the ids are there
            served = mlflow.pyfunc.load_model(uri).predict(frame)
    expected = bundle.score_features(bundle.with_folds(X[:5], ids[:5]))
    np.testing.assert_array_equal(np.asarray(served), expected)
