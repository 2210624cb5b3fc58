"""Outputs: a file hepclf did not write is never replaced; a damaged output is rewritten;
events without jets score finitely by default; non-finite features fail by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from hepclf.config.features import FeatureConfig
from hepclf.scoring.file_job import ScoreSettings
from hepclf.scoring.outputs import inspect_output
from hepclf.scoring.runner import score_files
from hepclf.scoring.scorers import ModelSpec, ScoringModel, load_scoring_models
from hepclf.training.bundle import ModelBundle
from tests.conftest import RegisteredModels, tracking_uri
from tests.reliability.conftest import write_without_jets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def xgb(registered_models: RegisteredModels) -> ScoringModel:
    with tracking_uri(registered_models.tracking_uri):
        return load_scoring_models([f"models:/{registered_models.xgb}@champion"])[0]


def scores_of(path: Path) -> np.ndarray:
    return uproot.open(path)["Events"]["score_xgb"].array(library="np")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "hepclf", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_foreign_file_at_an_output_name_is_never_replaced(
    registered_models: RegisteredModels, tmp_path: Path
) -> None:
    """Notes, and a ROOT file hepclf did not write, survive `hepclf score`; --overwrite
    replaces them."""
    out = tmp_path / "out"
    out.mkdir()
    notes = out / "signal_scores.root"
    notes.write_text("my notes on the signal region\n")
    with uproot.recreate(out / "background_scores.root") as file:
        file["Events"] = {"score_xgb": np.arange(3.0)}
    theirs = (out / "background_scores.root").read_bytes()
    args = ["score", "-m", f"models:/{registered_models.xgb}@champion"]
    args += [str(registered_models.data / "*.root"), "--out", str(out)]
    args += ["--tracking-uri", registered_models.tracking_uri]
    refused = cli(*args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    message = " ".join(refused.stderr.split())
    assert f"{notes} exists and was not written by hepclf (it is not a ROOT file)" in message
    assert "ROOT file without hepclf's marker" in message and "--overwrite" in message
    assert notes.read_text() == "my notes on the signal region\n"
    assert (out / "background_scores.root").read_bytes() == theirs
    assert sorted(p.name for p in out.iterdir()) == ["background_scores.root", notes.name]

    replaced = cli(*args, "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    for name in ("signal_scores.root", "background_scores.root"):
        assert inspect_output(out / name, "root", "Events").state == "complete"
        assert len(scores_of(out / name)) == 5000


def test_a_foreign_parquet_file_is_never_replaced(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    theirs = tmp_path / "signal_scores.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), theirs)
    before = theirs.read_bytes()
    settings = ScoreSettings(out_dir=tmp_path, fmt="parquet")
    result = score_files([str(registered_models.data / "signal.root")], [xgb], settings)
    assert result.results[0].status == "failed"
    assert "a Parquet file without hepclf's metadata" in (result.results[0].error or "")
    assert theirs.read_bytes() == before


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[len(data) * 6 // 10 :]
    elif how == "tail cut":
        del data[-200:]
    else:  # bytes overwritten in the middle (baskets), size unchanged
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "tail cut", "overwritten"])
def test_a_damaged_output_is_rewritten_on_rerun(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path, how: str
) -> None:
    inputs = [str(registered_models.data / "signal.root")]
    settings = ScoreSettings(out_dir=tmp_path, keep_branches=("event", "Jet_pt"))
    assert score_files(inputs, [xgb], settings).results[0].status == "scored"
    output = tmp_path / "signal_scores.root"
    expected = scores_of(output)
    damage(output, how)
    found = inspect_output(output, "root", "Events")
    assert found.state == "damaged", found
    with pytest.warns(UserWarning, match="damaged"):
        again = score_files(inputs, [xgb], settings).results[0]
    assert again.status == "scored", again
    assert "damaged" in (again.note or "") and str(output) in (again.note or "")
    assert inspect_output(output, "root", "Events").state == "complete"
    np.testing.assert_array_equal(scores_of(output), expected)
    assert score_files(inputs, [xgb], settings).results[0].status == "skipped"


def test_a_damaged_parquet_output_is_rewritten_or_refused(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    """A Parquet footer holds its marker: with the footer intact, damage is found and the
    file rewritten; truncated (footer gone), authorship cannot be read and it is refused."""
    inputs = [str(registered_models.data / "signal.root")]
    settings = ScoreSettings(out_dir=tmp_path, fmt="parquet")
    assert score_files(inputs, [xgb], settings).results[0].status == "scored"
    output = tmp_path / "signal_scores.parquet"
    expected = pq.read_table(output)["score_xgb"].to_numpy()
    assert score_files(inputs, [xgb], settings).results[0].status == "skipped"
    data = bytearray(output.read_bytes())
    data[8:40] = bytes(32)  # the first column's first page, footer intact
    output.write_bytes(bytes(data))
    assert inspect_output(output, "parquet", "Events").state == "damaged"
    with pytest.warns(UserWarning, match="damaged"):
        again = score_files(inputs, [xgb], settings).results[0]
    assert again.status == "scored" and "damaged" in (again.note or "")
    np.testing.assert_array_equal(pq.read_table(output)["score_xgb"].to_numpy(), expected)
    damage(output, "truncated")
    cut = output.read_bytes()
    refused = score_files(inputs, [xgb], settings).results[0]
    assert refused.status == "failed" and "not a readable Parquet file" in (refused.error or "")
    assert output.read_bytes() == cut


def test_events_without_jets_score_finitely_by_default(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    """max(Jet_btag) of no jets takes the fill value (the pad, 0); leading jets take their
    pad; the scores equal MLflow's pyfunc on feature rows built here by hand."""
    source = tmp_path / "nojets.root"
    empty = write_without_jets(registered_models.data / "signal.root", source)
    settings = ScoreSettings(out_dir=tmp_path / "out")
    result = score_files([str(source)], [xgb], settings).results[0]
    assert result.status == "scored", result.error
    scores = scores_of(tmp_path / "out" / "nojets_scores.root")
    assert np.isfinite(scores).all() and len(scores) == 5000
    raw = uproot.open(source)["Events"].arrays(["lep_pt", "lep_eta", "met"], library="np")
    by_hand = {
        "lep_pt": raw["lep_pt"][empty],
        "lep_eta": raw["lep_eta"][empty],
        "met": raw["met"][empty],
        "nJet": 0.0,
        "ht": 0.0,  # sum of nothing
        "n_btag": 0.0,
        "max_btag": 0.0,  # no 'fill': the feature's pad, 0
    }
    pads = {f.name: f.pad for f in xgb.bundle.features if f.leading}
    frame = pd.DataFrame(
        {c: by_hand[c] if c in by_hand else pads[c.rsplit("_", 1)[0]] for c in xgb.bundle.columns},
        index=range(len(empty)),
    ).astype(np.float32)
    with tracking_uri(registered_models.tracking_uri):
        model = mlflow.pyfunc.load_model(f"models:/{registered_models.xgb}/1")
        expected = model.predict(frame)
    np.testing.assert_allclose(scores[empty], expected, rtol=1e-6, atol=1e-9)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
def test_non_finite_features_fail_by_name_or_score_nan(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    """A feature that is NaN for some events (log of a negative number) fails the file,
    naming feature, file and entries; with on_nonfinite='nan' those events score NaN."""
    features = [
        FeatureConfig(name="met", expr="log(met - 40) * 0 + met") if f.name == "met" else f
        for f in xgb.bundle.features
    ]
    bundle = ModelBundle(
        "xgb", features, xgb.bundle.normalizer, xgb.bundle.classifier, "reliability"
    )
    model = ScoringModel(ModelSpec("in-memory", "score_xgb"), bundle)
    path = str(registered_models.data / "signal.root")
    met = uproot.open(path)["Events"]["met"].array(library="np")
    bad = np.flatnonzero(met < 40)
    assert 5 < len(bad) < len(met)
    failed = score_files([path], [model], ScoreSettings(out_dir=tmp_path)).results[0]
    assert failed.status == "failed"
    first = ", ".join(str(e) for e in bad[:5])
    assert f"'met' for {len(bad)} events (entries {first}, ...)" in (failed.error or "")
    assert path in (failed.error or "") and "cannot score" in (failed.error or "")
    assert "training" not in (failed.error or "")
    assert list(tmp_path.iterdir()) == []
    settings = ScoreSettings(out_dir=tmp_path, on_nonfinite="nan")
    scored = score_files([path], [model], settings).results[0]
    assert scored.status == "scored" and scored.nan_scores == len(bad)
    scores = scores_of(tmp_path / "signal_scores.root")
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(scores)), bad)
    plain = score_files([path], [xgb], ScoreSettings(out_dir=tmp_path / "plain")).results[0]
    assert plain.status == "scored"
    good = np.isfinite(scores)
    np.testing.assert_array_equal(scores[good], scores_of(Path(plain.output))[good])


def test_a_partial_file_of_a_killed_run_is_not_an_output(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    """A killed run leaves only a hidden .partial file, removed by the next run."""
    partial = tmp_path / ".signal_scores.root.0123456789ab.partial"
    shutil.copy(registered_models.data / "signal.root", partial)
    settings = ScoreSettings(out_dir=tmp_path)
    result = score_files([str(registered_models.data / "signal.root")], [xgb], settings)
    assert result.results[0].status == "scored"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signal_scores.root"]


def test_a_wrong_checksum_is_damage(tmp_path: Path) -> None:
    """An output whose columns read fine but differ from what was written is damaged."""
    from hepclf.scoring.outputs import DONE_KEY, OutputMeta, atomic_output

    final = tmp_path / "x_scores.root"
    meta = OutputMeta(4, ("score_x",), None, {"score_x": "test"})
    with atomic_output(final, "root", "Events", {"score_x": np.empty(0)}, meta) as writer:
        writer.write({"score_x": np.arange(4.0)})
    assert inspect_output(final, "root", "Events").state == "complete"
    with uproot.update(final) as file:
        file[DONE_KEY] = '{"entries": 4, "sha256": {"score_x": "0000"}}'
    found = inspect_output(final, "root", "Events")
    assert found.state == "damaged" and "checksums" in found.why


def test_the_pyfunc_names_non_finite_features_when_scoring(
    registered_models: RegisteredModels, xgb: ScoringModel
) -> None:
    frame = pd.DataFrame({c: [1.0, 2.0, 3.0] for c in xgb.bundle.columns})
    frame.loc[1, "met"] = np.nan
    with tracking_uri(registered_models.tracking_uri):
        model = mlflow.pyfunc.load_model(f"models:/{registered_models.xgb}/1")
        assert np.isfinite(model.predict(frame.drop(index=1))).all()
        with pytest.raises(Exception, match=r"cannot score with model 'xgb'") as err:
            model.predict(frame)
    assert "'met' for 1 events (rows 1)" in str(err.value)
    assert "training" not in str(err.value)


def test_an_unbounded_selection_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    from hepclf.runtime.errors import InputDataError

    with pytest.raises(InputDataError, match="beyond 64-bit integers"):
        ScoreSettings(out_dir=tmp_path, selection="lep_pt > 9**9**8")


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
def test_the_cli_fails_on_non_finite_features_or_counts_nan_scores(
    registered_models: RegisteredModels, xgb: ScoringModel, tmp_path: Path
) -> None:
    features = [
        FeatureConfig(name="met", expr="log(met - 40) * 0 + met") if f.name == "met" else f
        for f in xgb.bundle.features
    ]
    folder = ModelBundle(
        "xgb", features, xgb.bundle.normalizer, xgb.bundle.classifier, "reliability"
    ).save(tmp_path / "model")
    path = registered_models.data / "signal.root"
    bad = int((uproot.open(path)["Events"]["met"].array(library="np") < 40).sum())
    args = ["score", "-m", str(folder), str(path), "--out", str(tmp_path / "out")]
    failed = cli(*args, cwd=tmp_path)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    message = " ".join(failed.stderr.split())
    assert f"cannot score with 'xgb': NaN or infinite values in feature 'met' for {bad}" in message
    assert "--nan-score" in message
    scored = cli(*args, "--nan-score", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert f"{bad:,} NaN scores (non-finite features)" in " ".join(scored.stdout.split())
