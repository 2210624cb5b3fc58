"""``hepclf init``: a pipeline drafted from ROOT files, checked against uproot and trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from hepclf.config import load_pipeline
from hepclf.ingest import ingest
from tests.conftest import shared_file

HEPCLF = [sys.executable, "-m", "hepclf"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*HEPCLF, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _train(pipeline: Path, cwd: Path) -> dict:
    done = run("train", str(pipeline), "--models", "linear", "--output", "out", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads((cwd / "out" / "metrics.json").read_text())


@pytest.mark.slow
def test_tmva_example_drafts_a_pipeline_that_trains(tmp_path: Path) -> None:
    data = shared_file("tmva_class_example.root")
    done = run(
        "init",
        "--signal",
        f"{data}:TreeS",
        "--background",
        f"{data}:TreeB",
        "-o",
        "p.yaml",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    config = load_pipeline(tmp_path / "p.yaml")
    signal, background = config.samples
    assert (signal.tree, signal.label, signal.weight) == ("TreeS", "signal", None)
    assert (background.tree, background.label, background.weight) == (
        "TreeB",
        "background",
        "weight",
    )
    branches = [set(uproot.open(data)[t].keys()) for t in ("TreeS", "TreeB")]
    assert set(config.feature_columns) == (branches[0] & branches[1]) - {"weight"}
    assert "guessed from its name" in (tmp_path / "p.yaml").read_text()
    metrics = _train(tmp_path / "p.yaml", tmp_path)
    assert metrics["linear"]["auc_test"] > 0.85  # var1..var4 separate well linearly


@pytest.mark.slow
def test_demo_files_draft_weights_event_ids_and_leading_jets(
    demo_dir: Path, tmp_path: Path, cache_dir: Path
) -> None:
    done = run(
        "init",
        "--signal",
        str(demo_dir / "signal.root"),
        "--background",
        str(demo_dir / "back*.root"),
        "-o",
        "sub/demo.yaml",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "sub" / "demo.yaml").read_text()
    config = load_pipeline(tmp_path / "sub" / "demo.yaml")
    assert [s.name for s in config.samples] == ["signal", "back"]
    assert all(s.weight == "genWeight" for s in config.samples)
    assert all(s.sum_weights.tree == "Runs" for s in config.samples)  # NanoAOD-like Runs tree
    assert "Runs (1)" in text  # the event tree was chosen among the file's trees: said so
    assert config.event_id == "event" and config.split.method == "event_id"
    jets = {f.name: f for f in config.features if f.leading}
    assert set(jets) == {"Jet_pt", "Jet_eta", "Jet_phi", "Jet_btag"}
    assert {f.sort_by for f in jets.values()} == {"Jet_pt"}
    assert "genWeight" not in config.feature_columns and "event" not in config.feature_columns
    metrics = _train(tmp_path / "sub" / "demo.yaml", tmp_path)
    assert metrics["linear"]["auc_test"] > 0.7


def test_jagged_branches_are_leading_objects_sorted_by_transverse_momentum(
    tmp_path: Path, cache_dir: Path
) -> None:
    data = shared_file("df017_vecOpsHEP.root")
    done = run(
        "init", "--signal", str(data), "--background", str(data), "-o", "p.yaml", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config = load_pipeline(tmp_path / "p.yaml")
    assert [s.tree for s in config.samples] == ["myDataset", "myDataset"]
    assert len({s.name for s in config.samples}) == 2
    jagged = {f.name: f for f in config.features if f.leading}
    assert set(jagged) == {"px", "py", "E"} and jagged["E"].sort_by == "hypot(px, py)"
    table = ingest(config)
    raw = uproot.open(data)["myDataset"].arrays(["px", "py", "E"])
    order = ak.argsort(np.hypot(raw.px, raw.py), axis=1, ascending=False)
    leading = ak.to_numpy(ak.fill_none(ak.pad_none(raw.E[order], 4, clip=True), 0.0))
    columns = [table.columns.index(f"E_{i}") for i in range(4)]
    np.testing.assert_allclose(table.X[: len(leading)][:, columns], leading, rtol=1e-6)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    data = shared_file("tmva_class_example.root")
    none = run("init", "--signal", "nothing_*.root", "--background", str(data), cwd=tmp_path)
    assert none.returncode == 2 and "nothing_*.root: no file matches" in none.stderr
    one = run("init", "--signal", f"{data}:TreeS", cwd=tmp_path)
    assert one.returncode == 2 and "at least two classes" in one.stderr
    tree = run("init", "--signal", f"{data}:TreeX", "--background", str(data), cwd=tmp_path)
    assert (
        tree.returncode == 2 and "no tree named 'TreeX'" in tree.stderr and "TreeB" in tree.stderr
    )
    (tmp_path / "pipeline.yaml").write_text("mine")
    kept = run("init", "--signal", f"{data}:TreeS", "--background", f"{data}:TreeB", cwd=tmp_path)
    assert kept.returncode == 2 and "--force" in kept.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == "mine"
    assert "Traceback" not in none.stderr + one.stderr + tree.stderr + kept.stderr


def test_more_classes_and_a_missing_tensorflow(tmp_path: Path) -> None:
    """Without TensorFlow the draft lists the dnn commented out, with the extra to install."""
    data = shared_file("tmva_class_example.root")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_TENSORFLOW)
    env = {**os.environ, "PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [
            *HEPCLF,
            "init",
            "--class",
            f"a={data}:TreeS",
            "--class",
            f"b={data}:TreeB",
            "-o",
            "m.yaml",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    drafted = yaml.safe_load((tmp_path / "m.yaml").read_text())
    assert drafted["signal"] == "a" and "dnn" not in drafted["models"]
    assert "# dnn: {}   # needs `pip install 'hepclf[dnn]'`" in (tmp_path / "m.yaml").read_text()
    drafted["models"] = {"dnn": {}}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(drafted))
    refused = subprocess.run(
        [*HEPCLF, "train", "d.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "pip install 'hepclf[dnn]'" in refused.stderr and "d.yaml" in refused.stderr


# A Python where TensorFlow and Keras are not installed: their import finds nothing.
HIDE_TENSORFLOW = """
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def test_many_branches_a_label_branch_and_run_bookkeeping(tmp_path: Path) -> None:
    """Past 100 columns the rest is commented out; a branch that is constant per sample
    (a class id) and run numbers are left out, each with the reason in a comment."""
    rng = np.random.default_rng(4)
    for name, class_id in (("s", 1), ("b", 0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            branches = {f"x{i:03d}": rng.normal(size=300) for i in range(120)}
            branches |= {"classID": np.full(300, class_id), "run": np.full(300, 7)}
            branches |= {"HLT_IsoMu24": rng.random(300) > 0.5}
            f.mktree("Events", {k: v.dtype for k, v in branches.items()}).extend(branches)
    done = run("init", "--signal", "s.root", "--background", "b.root", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "pipeline.yaml").read_text()
    config = load_pipeline(tmp_path / "pipeline.yaml")
    assert config.feature_columns == [f"x{i:03d}" for i in range(100)]
    assert "  # - x100" in text and "  # - x119" in text
    assert "(a class label): classID" in text and "run bookkeeping: run" in text
    assert "use them in 'selection:': HLT_IsoMu24" in text
