"""Scoring gives every model its own right numbers and never replaces another tree's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

from hepclf.cli import app
from hepclf.config.features import FeatureConfig
from hepclf.config.training import NormalizationConfig
from hepclf.ingest.demo_data import write_demo_data
from hepclf.ingest.events.features import compute_features
from hepclf.models import build_model
from hepclf.models.folds import FoldEnsemble
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer

FEATURES = [FeatureConfig(name=n, branch=n) for n in ("lep_pt", "met", "nJet")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("truth")
    write_demo_data(folder, events=1500, seed=11)
    return folder


def _arrays(path: Path) -> dict[str, np.ndarray]:
    return uproot.open(path)["Events"].arrays(library="np")


def _bundles(data: Path, out: Path) -> dict[str, Path]:
    """A plain xgb and a 3-fold xgb (by the 'event' branch) on the same features, saved."""
    sig, bkg = _arrays(data / "signal.root"), _arrays(data / "background.root")
    X = np.vstack([compute_features(FEATURES, a, len(a["event"])) for a in (sig, bkg)])
    y = np.r_[np.ones(len(sig["event"])), np.zeros(len(bkg["event"]))].astype(int)
    ids = np.r_[sig["event"], bkg["event"]].astype(np.int64)
    normalizer = Normalizer.fit(X, NormalizationConfig())
    Z = normalizer.transform(X)
    params = {"n_estimators": 20, "n_jobs": 1, "max_depth": 3}
    plain = build_model("xgb", params, seed=1).fit(Z, y, np.ones(len(y)))
    folds = FoldEnsemble(build_model("xgb", params, seed=1), folds=3).fit(
        Z, y, np.ones(len(y)), ids
    )
    paths = {}
    for name, model, event_id in (("plain", plain, None), ("kf", folds, "event")):
        bundle = ModelBundle(name, FEATURES, normalizer, model, event_id=event_id)
        paths[name] = bundle.save(out / name)
    return paths


def test_kfold_model_beside_a_plain_one_scores_each_event_out_of_fold(
    data: Path, tmp_path: Path
) -> None:
    """Two models with one feature specification: the k-fold model still reads its fold
    column (it was taken from the first model's cached features, giving the fold average)."""
    bundles = _bundles(data, tmp_path / "models")
    source = data / "signal.root"
    arrays = _arrays(source)
    X = compute_features(FEATURES, arrays, len(arrays["event"]))
    kf = ModelBundle.load(bundles["kf"])
    expected = kf.probabilities(kf.with_folds(X, arrays["event"]))[:, 1]
    average = kf.probabilities(X)[:, 1]
    assert not np.allclose(expected, average)  # the probe tells the two apart
    for order in (("plain", "kf"), ("kf", "plain")):
        out = tmp_path / "-".join(order)
        arguments = [a for name in order for a in ("-m", f"{name}={bundles[name]}")]
        result = CliRunner().invoke(app, ["score", *arguments, str(source), "--out", str(out)])
        assert result.exit_code == 0, result.output
        scored = uproot.open(out / "signal_scores.root")["Events"].arrays(library="np")
        assert np.array_equal(scored["score_kf"], expected)
        plain = ModelBundle.load(bundles["plain"])
        assert np.array_equal(scored["score_plain"], plain.probabilities(X)[:, 1])


def _two_trees(data: Path, path: Path) -> Path:
    """A file like TMVA's example: the signal as TreeS, the background as TreeB."""
    flat = ("event", "lep_pt", "met", "nJet")
    with uproot.recreate(path) as file:
        for tree, sample in (("TreeS", "signal.root"), ("TreeB", "background.root")):
            arrays = _arrays(data / sample)
            file[tree] = {b: arrays[b] for b in flat}
    return path


def _score(*arguments: str) -> str:
    result = CliRunner().invoke(app, ["score", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def test_second_tree_of_a_file_keeps_the_first_trees_scores(data: Path, tmp_path: Path) -> None:
    bundles = _bundles(data, tmp_path / "models")
    source = _two_trees(data, tmp_path / "tmva.root")
    out = tmp_path / "scored"
    model = ["-m", f"plain={bundles['plain']}"]
    _score(*model, str(source), "--tree", "TreeS", "--out", str(out))
    _score(*model, str(source), "--tree", "TreeB", "--out", str(out))
    plain = ModelBundle.load(bundles["plain"])
    for tree, sample in (("TreeS", "signal.root"), ("TreeB", "background.root")):
        arrays = _arrays(data / sample)
        X = compute_features(FEATURES, arrays, len(arrays["event"]))
        scored = uproot.open(out / f"tmva_{tree}_scores.root")[tree].arrays(library="np")
        assert np.array_equal(scored["score_plain"], plain.probabilities(X)[:, 1])
    assert sorted(p.name for p in out.iterdir()) == [
        "tmva_TreeB_scores.root",
        "tmva_TreeS_scores.root",
    ]
    # a file with one tree keeps its name
    _score(*model, str(data / "signal.root"), "--out", str(out))
    assert (out / "signal_scores.root").is_file()


def test_output_of_an_earlier_version_is_found_for_its_tree(data: Path, tmp_path: Path) -> None:
    """Earlier versions named every output ``<stem>_scores``: such an output of TreeS is
    found again (skipped, complete); TreeB goes to its own name and leaves it intact."""
    from hepclf.scoring.file_job import ScoreSettings, score_file
    from hepclf.scoring.scorers import load_scoring_models

    bundles = _bundles(data, tmp_path / "models")
    source = _two_trees(data, tmp_path / "tmva.root")
    out = tmp_path / "scored"
    models = load_scoring_models([f"plain={bundles['plain']}"])
    settings = ScoreSettings(tree="TreeS", out_dir=out)
    legacy = out / "tmva_scores.root"
    assert score_file(str(source), legacy, models, settings).status == "scored"
    before = legacy.read_bytes()
    model = ["-m", f"plain={bundles['plain']}"]
    output = _score(*model, str(source), "--tree", "TreeS", "--out", str(out))
    assert "skipped" in output.lower() or "complete" in output.lower(), output
    assert not (out / "tmva_TreeS_scores.root").exists()
    _score(*model, str(source), "--tree", "TreeB", "--out", str(out))
    assert legacy.read_bytes() == before
    assert (out / "tmva_TreeB_scores.root").is_file()
