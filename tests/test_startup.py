"""`hepclf score` with a model folder starts without the slow optional stacks.

A tree or linear model needs neither MLflow (a local folder is not a registry) nor
TensorFlow (only a dnn does); importing them cost most of the old ~28 s start-up.
The time itself is measured by ``benchmarks/startup.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hepclf.config import parse_pipeline
from hepclf.ingest.run import read_samples
from hepclf.models import build_model
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer
from tests.conftest import demo_pipeline_dict

HEAVY = ("mlflow", "tensorflow", "keras", "dask", "distributed", "matplotlib", "torch", "numba")
RUN = """
import json, runpy, sys
sys.argv = ["hepclf", "score", "--model", sys.argv[1], sys.argv[2], "--out", sys.argv[3]]
try:
    runpy.run_module("hepclf", run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.parametrize("name", ["linear", "xgb"])
def test_scoring_a_model_folder_loads_no_heavy_stack(
    name: str, demo_dir: Path, tmp_path: Path
) -> None:
    config = parse_pipeline(demo_pipeline_dict(demo_dir))
    table = read_samples(config)
    normalizer = Normalizer.fit(table.X, config.normalization)
    params = {"n_estimators": 5} if name == "xgb" else {}
    model = build_model(name, params, 1).fit(normalizer.transform(table.X), table.label)
    folder = ModelBundle(name, list(config.features), normalizer, model).save(tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(folder), str(demo_dir / "signal.root"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    assert (tmp_path / "signal_scores.root").is_file()
    assert not set(HEAVY) & set(report["modules"])
