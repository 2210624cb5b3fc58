"""``hepclf result`` never counts training events as test events, never drops a sample
silently and never writes outside its output folder."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import uproot

from hepclf.ingest.demo_data import write_demo_data
from tests.conftest import demo_pipeline_dict, write_pipeline
from tests.test_cli import run

LINEAR = {"linear": {}}
pytestmark = pytest.mark.slow  # trains models


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, dict]:
    """A small demo pipeline trained with a linear model: (folder, tracking URI, run id, YAML)."""
    from hepclf.config import parse_pipeline
    from hepclf.workflows.train import run_pipeline

    folder = tmp_path_factory.mktemp("result_truth")
    write_demo_data(folder / "data", events=1500, seed=5)
    raw = demo_pipeline_dict(folder / "data", models=LINEAR)
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEPCLF_CACHE_DIR", str(folder / "cache"))
        config = parse_pipeline(raw, base_dir=folder)
        result = run_pipeline(config, output=folder / "train", tracking_uri=uri)
    return folder, uri, result.run_id, raw


def _result(folder: Path, uri: str, source: str, raw: dict, name: str) -> tuple[int, str]:
    path = write_pipeline(folder / f"{name}.yaml", raw)
    out = folder / name
    arguments = ["result", source, "--config", str(path), "--output", str(out)]
    answer = run(*arguments, "--tracking-uri", uri, "--no-log", "--no-cache")
    return answer.returncode, answer.stdout + answer.stderr


def test_result_refuses_a_split_other_than_trainings(trained: tuple) -> None:
    folder, uri, run_id, raw = trained
    code, output = _result(folder, uri, run_id, raw, "same")
    assert code == 0, output
    assert (folder / "same" / "results" / "linear" / "result.json").is_file()
    for name, split in (
        ("seed", {**raw["split"], "seed": 7}),
        ("fraction", {**raw["split"], "test_fraction": 0.3}),
    ):
        code, output = _result(folder, uri, run_id, {**raw, "split": split}, name)
        assert code == 2, output
        text = " ".join(output.split())
        assert "does not split the events as training run" in text
        assert ("seed" if name == "seed" else "test_fraction") in text
        assert not (folder / name).exists()
    selected = {**raw, "selection": "nJet >= 3"}  # other events: other test rows
    code, output = _result(folder, uri, run_id, selected, "selected")
    assert code == 2 and "events in training" in " ".join(output.split()), output


def test_model_name_from_a_tag_cannot_leave_the_output_folder(trained: tuple) -> None:
    folder, uri, run_id, raw = trained
    client = mlflow.MlflowClient(tracking_uri=uri)
    child = client.search_runs(
        [client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"
    )[0]
    client.set_tag(child.info.run_id, "hepclf.model", "../../../escaped")
    try:
        code, output = _result(folder, uri, child.info.run_id, raw, "tagged")
    finally:
        client.set_tag(child.info.run_id, "hepclf.model", "linear")
    assert code == 2, output
    assert "is not a model name" in " ".join(output.split())
    # results/../../../escaped from the output folder tagged/: beside the test's folder
    assert not (folder.parent / "escaped").exists() and not list(folder.rglob("escaped"))
    assert not (folder / "tagged").exists()


def test_a_sample_with_no_test_event_is_an_error_naming_it(tmp_path: Path, cache_dir: Path) -> None:
    """An event-id split where one sample has odd ids only: all of it lands in training."""
    write_demo_data(tmp_path / "data", events=1500, seed=6)
    arrays = uproot.open(tmp_path / "data" / "background.root")["Events"].arrays()
    arrays["event"] = 2 * np.arange(len(arrays)) + 1
    with uproot.recreate(tmp_path / "data" / "odd.root") as file:
        file["Events"] = {f: arrays[f] for f in arrays.fields}
    raw = demo_pipeline_dict(
        tmp_path / "data",
        models=LINEAR,
        split={"method": "event_id", "folds": 2, "test_fold": 0, "validation_fraction": 0.0},
    )
    odd = {**raw["samples"][1], "name": "ttZ", "files": [str(tmp_path / "data" / "odd.root")]}
    odd.pop("sum_weights", None)  # this copy keeps no Runs tree
    raw["samples"].append(odd)
    path = write_pipeline(tmp_path / "odd.yaml", raw)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    answer = run("train", str(path), "--output", str(tmp_path / "out"), "--tracking-uri", uri)
    text = " ".join(answer.stderr.split())
    assert answer.returncode == 2, answer.stderr
    assert "['ttZ']" in text and "kfold" in text and "test_fraction" in text
