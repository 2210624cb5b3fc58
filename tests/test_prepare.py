"""Split, normalisation and training weights: deterministic, leak-free, as documented."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import RobustScaler, StandardScaler

from hepclf.config.training import NormalizationConfig, SplitConfig
from hepclf.ingest.table import FeatureTable
from hepclf.training.normalize import Normalizer
from hepclf.training.split import split_table
from hepclf.training.weights import training_weights


def _table(n: int = 2000, seed: int = 0) -> FeatureTable:
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 3 == 0).astype(np.int8)  # 1/3 signal, ordered like a real read
    X = rng.normal(label[:, None], 1.0, (n, 3)).astype(np.float32)
    return FeatureTable(
        X,
        ["a", "b", "c"],
        label,
        rng.normal(1, 0.5, n),
        np.zeros(n, np.int16),
        ["s"],
        np.arange(n, dtype=np.int64) * 7,
    )


def test_random_split_is_seeded_stratified_and_disjoint() -> None:
    table = _table()
    cfg = SplitConfig(test_fraction=0.5, validation_fraction=0.2, seed=3)
    a, b = split_table(table, cfg), split_table(table, cfg)
    np.testing.assert_array_equal(a.test, b.test)
    parts = [set(a.train), set(a.validation), set(a.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == len(table)
    assert len(a.test) == 1000 and len(a.validation) == 200
    for rows in (a.train, a.validation, a.test):
        assert table.label[rows].mean() == pytest.approx(1 / 3, abs=0.01)
    assert not np.array_equal(split_table(table, SplitConfig(seed=4)).test, a.test)


def test_event_id_split_uses_parity_folds() -> None:
    table = _table()
    s = split_table(table, SplitConfig(method="event_id", folds=2, test_fold=1))
    assert (table.event_id[s.test] % 2 == 1).all()
    assert (table.event_id[np.concatenate([s.train, s.validation])] % 2 == 0).all()
    k = split_table(table, SplitConfig(method="event_id", folds=5, test_fold=2))
    assert (table.event_id[k.test] % 5 == 2).all() and len(k.test) == len(table) // 5


@pytest.mark.parametrize(
    ("method", "reference"), [("standard", StandardScaler), ("robust", RobustScaler)]
)
def test_normalizer_matches_sklearn_and_round_trips(method: str, reference: type) -> None:
    X = _table().X
    norm = Normalizer.fit(X[:1000], NormalizationConfig(method=method))
    expected = reference().fit(X[:1000]).transform(X)
    np.testing.assert_allclose(norm.transform(X), expected, rtol=1e-5, atol=1e-5)
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.transform(X), norm.transform(X))


def test_minmax_and_clip() -> None:
    X = _table().X
    norm = Normalizer.fit(X, NormalizationConfig(method="minmax"))
    out = norm.transform(X)
    assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(1.0, abs=1e-6)
    clipped = Normalizer.fit(X, NormalizationConfig(method="standard", clip=1.0)).transform(X)
    assert clipped.max() <= 1.0 and clipped.min() >= -1.0


def test_training_weights_policies() -> None:
    label = np.array([1, 1, 1, 0, 0])
    weight = np.array([2.0, -1.0, 1.0, 0.5, 0.5])
    rows, w = training_weights(label, weight, "none", "keep")
    np.testing.assert_array_equal(w, weight)
    np.testing.assert_array_equal(rows, np.arange(5))
    rows, w = training_weights(label, weight, "none", "abs")
    np.testing.assert_array_equal(w, np.abs(weight))
    rows, w = training_weights(label, weight, "equal_weight", "drop")
    np.testing.assert_array_equal(rows, [0, 2, 3, 4])
    kept_label = label[rows]
    assert w[kept_label == 1].sum() == pytest.approx(w[kept_label == 0].sum())
    assert w.mean() == pytest.approx(1.0)
