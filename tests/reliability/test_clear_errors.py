"""Inputs that used to end in a traceback end in an error naming the key and the cure."""

from __future__ import annotations

import numpy as np
import pytest

from hepclf.config.training import SplitConfig
from hepclf.ingest.table import FeatureTable
from hepclf.runtime.errors import ConfigError, InputDataError
from hepclf.training.split import split_table
from hepclf.training.tuning import tune_model


def _negative_fold_table() -> FeatureTable:
    """Background events with ``event % 5 == 0`` weigh -3, the others +1: the class total
    is positive, that of fold 0 of five negative."""
    rng = np.random.default_rng(1)
    n = 1000
    label = np.arange(n) % 2
    event = np.arange(n) // 2
    weight = np.where((label == 0) & (event % 5 == 0), -3.0, 1.0)
    X = (rng.normal(size=(n, 3)) + label[:, None]).astype(np.float32)
    return FeatureTable(
        X, ["a", "b", "c"], label, weight, label, ["bkg", "sig"], event.astype(np.int64)
    )


def test_a_kfold_fold_with_a_negative_class_weight_is_an_error_naming_it() -> None:
    table = _negative_fold_table()
    config = SplitConfig(method="kfold", folds=5)
    with pytest.raises(InputDataError, match=r"split.folds: fold 0 of 5 gives class 'background'"):
        split_table(table, config, use_event_id=True, class_names=["background", "signal"])


def test_a_kfold_fold_of_one_category_with_a_negative_class_weight_is_an_error() -> None:
    """Each category's fold models are evaluated alone: fold 0 of category 'even' has a
    negative background total although fold 0 of the whole sample has a positive one."""
    rng = np.random.default_rng(1)
    n = 2000
    label, event = np.arange(n) % 2, np.arange(n) // 2
    weight = np.where((label == 0) & (event % 10 == 0), -0.5, 1.0)
    X = (rng.normal(size=(n, 3)) + label[:, None]).astype(np.float32)
    ids, category = event.astype(np.int64), (event % 2).astype(np.int16)
    table = FeatureTable(
        X, ["a", "b", "c"], label, weight, label, ["bkg", "sig"], ids, category=category
    )
    config = SplitConfig(method="kfold", folds=5)
    names = {"use_event_id": True, "class_names": ["bkg", "sig"]}
    split_table(table, config, **names)  # the whole sample's folds are fine
    with pytest.raises(
        InputDataError,
        match=r"split.folds \(category 'even'\): fold 0 of 5 gives class 'bkg' a total weight "
        r"of -50 \(negative weights",
    ):
        split_table(table, config, **names, category_names=["even", "odd"])


def test_a_tuning_fold_with_a_negative_class_weight_is_an_error_naming_it(tmp_path) -> None:
    table = _negative_fold_table()
    with pytest.raises(InputDataError, match=r"tune.folds: fold \d+ of 50 gives class 'bkg'"):
        tune_model(
            "linear",
            table.X,
            table.label,
            np.abs(table.weight),
            table.weight,
            folds=50,
            trials=1,
            storage=tmp_path / "tuning.db",
            classes=["bkg", "sig"],
        )


def _tune(storage) -> None:
    rng = np.random.default_rng(2)
    y = np.arange(200) % 2
    X = (rng.normal(size=(200, 2)) + y[:, None]).astype(np.float32)
    tune_model("linear", X, y, folds=2, trials=1, storage=storage)


def test_a_truncated_tuning_storage_is_a_clear_error_and_left_as_it_is(tmp_path) -> None:
    good = tmp_path / "study.db"
    _tune(good)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(good.read_bytes()[:3000])
    for path, why in ((damaged, "damaged SQLite"), (tmp_path / "notes.db", "not an SQLite")):
        if not path.exists():
            path.write_text("my notes\n")
        before = path.read_bytes()
        with pytest.raises(ConfigError, match=f"tune.storage {path}: .*{why}"):
            _tune(path)
        assert path.read_bytes() == before


def test_the_mlflow_store_as_tuning_storage_is_refused_unchanged(tmp_path) -> None:
    import mlflow

    from tests.conftest import tracking_uri

    store = tmp_path / "mlflow.db"
    with tracking_uri(f"sqlite:///{store}"):
        mlflow.MlflowClient().search_experiments()  # creates MLflow's tables
    before = store.read_bytes()
    with pytest.raises(ConfigError, match="an MLflow tracking store of another application"):
        _tune(store)
    assert store.read_bytes() == before


@pytest.mark.parametrize("leading", [1_000_000, 1e8])
def test_leading_beyond_its_maximum_is_refused_when_read(leading, tmp_path) -> None:
    """``leading: 1000000`` hung ingest (quadratic checks over a million columns) and
    ``1e8`` ended in a MemoryError; both are refused by the YAML's validation."""
    from hepclf.config import parse_pipeline
    from hepclf.config.features import MAX_LEADING
    from tests.conftest import demo_pipeline_dict

    raw = demo_pipeline_dict(tmp_path)
    raw["features"] = [
        *raw["features"][:-1],
        {"name": "jet", "branch": "Jet_pt", "leading": leading},
    ]
    with pytest.raises(ConfigError, match=rf"leading.*less than or equal to {MAX_LEADING}"):
        parse_pipeline(raw)


@pytest.mark.parametrize(
    ("key", "result"),
    [
        ("luminosity", {"luminosity": float("inf")}),
        ("edges", {"binning": {"edges": [0.0, 0.5, float("inf")]}}),
        ("edges", {"binning": {"edges": [float("-inf"), 0.5, 1.0]}}),
        ("normsys", {"systematics": {"normsys": {"ttbar": float("nan")}}}),
    ],
)
def test_a_result_block_with_infinite_values_is_refused(key, result, tmp_path) -> None:
    from hepclf.config import load_pipeline
    from tests.conftest import demo_pipeline_dict, write_pipeline

    path = write_pipeline(tmp_path / "p.yaml", demo_pipeline_dict(tmp_path, result=result))
    assert ".inf" in path.read_text() or ".nan" in path.read_text()  # as a user writes it
    with pytest.raises(ConfigError, match=rf"result.*{key}.*finite number"):
        load_pipeline(path)
