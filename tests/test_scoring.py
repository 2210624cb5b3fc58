"""Batch scoring against a real MLflow server, real ROOT files and the real command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot

from hepclf.ingest.events.features import compute_features
from hepclf.scoring.file_job import ScoreSettings
from hepclf.scoring.outputs import OutputMeta, atomic_output
from hepclf.scoring.runner import RunSummary, score_files
from hepclf.scoring.scorers import ScoringModel, load_scoring_models
from tests.conftest import RegisteredModels, tracking_uri

INPUTS = ("signal.root", "background.root")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m hepclf ARGS`` as a user runs it."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hepclf", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_tree(path: Path) -> ak.Array:
    return uproot.open(path)["Events"].arrays()


@pytest.fixture(scope="module")
def models(registered_models: RegisteredModels) -> list[ScoringModel]:
    """The champion xgb (alias) and linear version 1, loaded in this process."""
    with tracking_uri(registered_models.tracking_uri):
        return load_scoring_models(
            [f"models:/{registered_models.xgb}@champion", f"models:/{registered_models.linear}/1"]
        )


@pytest.fixture(scope="module")
def cli_scored(
    registered_models: RegisteredModels, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Both demo files scored by ``hepclf score`` with both models, keeping two branches."""
    out = tmp_path_factory.mktemp("cli-scored")
    data = registered_models.data
    done = run_cli(
        "score",
        "--model",
        f"models:/{registered_models.xgb}@champion",
        "--model",
        f"models:/{registered_models.linear}/1",
        str(data / "*.root"),
        "--out",
        str(out),
        "--keep-branches",
        "event,Jet_pt",
        "--step-size",
        "1500",
        "--tracking-uri",
        registered_models.tracking_uri,
        cwd=out,
    )
    assert done.returncode == 0, done.stderr
    assert "2 scored" in done.stdout
    return out


def test_outputs_are_friend_trees_with_pyfunc_scores(
    registered_models: RegisteredModels, cli_scored: Path, models: list[ScoringModel]
) -> None:
    for name in INPUTS:
        source = uproot.open(registered_models.data / name)["Events"]
        scored = uproot.open(cli_scored / name.replace(".root", "_scores.root"))["Events"]
        assert scored.num_entries == source.num_entries
        assert set(scored.keys()) >= {"score_xgb", "score_linear", "event", "Jet_pt"}
        raw = source.arrays()
        out = scored.arrays()
        np.testing.assert_array_equal(out.event, raw.event)  # same entries, same order
        assert ak.all(out.Jet_pt == raw.Jet_pt)
        frame = pd.DataFrame(
            compute_features(models[0].bundle.features, raw, len(raw)),
            columns=models[0].bundle.columns,
        )
        with tracking_uri(registered_models.tracking_uri):
            for branch, uri in (
                ("score_xgb", f"models:/{registered_models.xgb}/1"),
                ("score_linear", registered_models.linear_uri),
            ):
                expected = mlflow.pyfunc.load_model(uri).predict(frame)
                np.testing.assert_allclose(out[branch], expected, rtol=1e-6, atol=1e-9)


def test_parquet_has_the_same_columns_and_values(
    registered_models: RegisteredModels,
    cli_scored: Path,
    models: list[ScoringModel],
    tmp_path: Path,
) -> None:
    settings = ScoreSettings(out_dir=tmp_path, fmt="parquet", keep_branches=("event", "Jet_pt"))
    summary = score_files([str(registered_models.data / "signal.root")], models, settings)
    assert [r.status for r in summary.results] == ["scored"]
    table = pq.read_table(tmp_path / "signal_scores.parquet")
    root = read_tree(cli_scored / "signal_scores.root")
    assert table.column_names == ["score_xgb", "score_linear", "event", "Jet_pt"]
    for column in ("score_xgb", "score_linear", "event"):
        np.testing.assert_array_equal(table[column].to_numpy(), root[column])
    assert ak.all(ak.from_arrow(table["Jet_pt"]) == root.Jet_pt)


def test_rerun_skips_complete_outputs_and_overwrite_rewrites(
    registered_models: RegisteredModels, models: list[ScoringModel], tmp_path: Path
) -> None:
    inputs = [str(registered_models.data / n) for n in INPUTS]
    first = score_files(inputs, models, ScoreSettings(out_dir=tmp_path))
    assert [r.status for r in first.results] == ["scored", "scored"]
    output = tmp_path / "signal_scores.root"
    inode, scores = output.stat().st_ino, read_tree(output).score_xgb
    again = score_files(inputs, models, ScoreSettings(out_dir=tmp_path))
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert again.events == 0 and output.stat().st_ino == inode
    forced = score_files(inputs, models, ScoreSettings(out_dir=tmp_path, overwrite=True))
    assert [r.status for r in forced.results] == ["scored", "scored"]
    assert output.stat().st_ino != inode
    np.testing.assert_array_equal(read_tree(output).score_xgb, scores)
    other = score_files(inputs[:1], models[:1], ScoreSettings(out_dir=tmp_path))
    assert other.results[0].status == "failed"
    assert "--overwrite" in (other.results[0].error or "")


def test_selection_scores_selected_entries_with_their_numbers(
    registered_models: RegisteredModels,
    cli_scored: Path,
    models: list[ScoringModel],
    tmp_path: Path,
) -> None:
    settings = ScoreSettings(out_dir=tmp_path, selection="nJet >= 6 && lep_pt > 40", step_size=700)
    score_files([str(registered_models.data / "signal.root")], models, settings)
    raw = read_tree(registered_models.data / "signal.root")
    selected = np.flatnonzero((raw.nJet >= 6) & (raw.lep_pt > 40))
    out = read_tree(tmp_path / "signal_scores.root")
    np.testing.assert_array_equal(out.entry, selected)
    full = read_tree(cli_scored / "signal_scores.root")
    np.testing.assert_array_equal(out.score_xgb, full.score_xgb[selected])


def test_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    final = tmp_path / "x_scores.root"
    meta = OutputMeta(10, ("score_x",), None, {})
    template = {"score_x": np.empty(0)}
    with (
        pytest.raises(KeyboardInterrupt),
        atomic_output(final, "root", "Events", template, meta) as w,
    ):
        w.write({"score_x": np.arange(5.0)})
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_bad_files_are_named_and_the_others_complete(
    registered_models: RegisteredModels, tmp_path: Path
) -> None:
    """Truncated, not-ROOT and missing-branch inputs fail by name; the good one is scored."""
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(registered_models.data / "signal.root", data / "good.root")
    whole = (registered_models.data / "background.root").read_bytes()
    (data / "truncated.root").write_bytes(whole[: len(whole) // 2])
    (data / "notroot.root").write_text("this is not a ROOT file\n")
    arrays = uproot.open(data / "good.root")["Events"].arrays(
        ["event", "lep_pt", "lep_eta", "nJet"]
    )
    with uproot.recreate(data / "partial.root") as file:
        tree = file.mktree("Events", {name: arrays[name].type.content for name in arrays.fields})
        tree.extend({name: arrays[name] for name in arrays.fields})
    done = run_cli(
        "score",
        "-m",
        f"models:/{registered_models.xgb}@champion",
        str(data / "*.root"),
        "--out",
        str(tmp_path / "out"),
        "--tracking-uri",
        registered_models.tracking_uri,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "3 of 4 files failed" in message
    for name in ("truncated.root", "notroot.root", "partial.root"):
        assert str(data / name) in message
    assert len(read_tree(tmp_path / "out" / "good_scores.root").score_xgb) == 5000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_scores.root"]
    required = "['Jet_btag', 'Jet_eta', 'Jet_pt', 'lep_eta', 'lep_pt', 'met', 'nJet']"
    assert f"needs the branches {required}" in message
    missing = message.split("missing: ")[1].split(". The tree has")[0]
    assert all(f"'{b}'" in missing for b in ("Jet_btag", "Jet_eta", "Jet_pt", "met"))
    assert "The tree has the branches: event, lep_eta, lep_pt, nJet." in message


def test_local_cluster_gives_the_same_outputs(
    registered_models: RegisteredModels, models: list[ScoringModel], tmp_path: Path
) -> None:
    inputs = []
    for i in range(4):
        copy = tmp_path / "in" / f"part{i}.root"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(registered_models.data / INPUTS[i % 2], copy)
        inputs.append(str(copy))
    runs: dict[str, RunSummary] = {}
    with tracking_uri(registered_models.tracking_uri):
        for workers in (1, 2):
            settings = ScoreSettings(out_dir=tmp_path / f"w{workers}", keep_branches=("event",))
            runs[str(workers)] = score_files(inputs, models, settings, workers=workers)
    for summary in runs.values():
        assert [r.status for r in summary.results] == ["scored"] * 4
    for i in range(4):
        serial = read_tree(tmp_path / "w1" / f"part{i}_scores.root")
        parallel = read_tree(tmp_path / "w2" / f"part{i}_scores.root")
        assert serial.fields == parallel.fields
        for field in serial.fields:
            np.testing.assert_array_equal(serial[field], parallel[field])


def test_an_earlier_output_matched_as_input_is_refused(tmp_path: Path) -> None:
    """`data/*.root` on a rerun also matches `a_scores.root`: scoring it would replace it
    with the output of `a.root`, so the plan is refused, naming both."""
    from hepclf.runtime.errors import InputDataError
    from hepclf.scoring.runner import plan_outputs

    inputs = [str(tmp_path / "a.root"), str(tmp_path / "a_scores.root")]
    for path in inputs:
        Path(path).write_bytes(b"")
    with pytest.raises(InputDataError, match=r"a_scores.root is an input and also the output"):
        plan_outputs(inputs, ScoreSettings())
    assert len(plan_outputs(inputs[:1], ScoreSettings())) == 1


def test_a_selection_giving_one_value_for_all_events_is_refused() -> None:
    from hepclf.ingest.events.selection import selection_mask
    from hepclf.runtime.errors import InputDataError

    arrays = {"met": np.array([10.0, 50.0, 90.0])}
    with pytest.raises(InputDataError, match=r"gives 1 value\(s\) for 3 events"):
        selection_mask("met[0] > 20", arrays, 3)
    np.testing.assert_array_equal(selection_mask("met > 20", arrays, 3), [False, True, True])
    np.testing.assert_array_equal(selection_mask("1 > 0", arrays, 3), [True, True, True])
