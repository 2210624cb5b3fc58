"""The core install has no TensorFlow: everything but the dnn works, and the dnn says which
extra to install, wherever it is asked for (pipeline, a saved or logged model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_init import HIDE_TENSORFLOW


def _without_tensorflow(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    hide = tmp_path / "hide"
    hide.mkdir(exist_ok=True)
    (hide / "sitecustomize.py").write_text(HIDE_TENSORFLOW)
    path = os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=300,
    )


@pytest.mark.slow
def test_a_saved_dnn_loaded_without_tensorflow_names_the_extra(tmp_path: Path) -> None:
    from hepclf.models import build_model

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = build_model("dnn", {"layers": [4], "epochs": 1, "ensemble": 1}, seed=1).fit(X, y)
    model.save(tmp_path / "dnn")
    done = _without_tensorflow(
        tmp_path,
        "from hepclf.runtime.errors import ConfigError\n"
        "from hepclf.models import MODEL_TYPES, installed_models, load_model\n"
        "assert installed_models() == [m for m in MODEL_TYPES if m != 'dnn']\n"
        "try:\n"
        f"    load_model({str(tmp_path / 'dnn')!r})\n"
        "except ConfigError as err:\n"
        "    print(err)\n",
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'hepclf[dnn]'" in done.stdout


def test_the_default_zoo_is_the_installed_one(tmp_path: Path) -> None:
    done = _without_tensorflow(
        tmp_path,
        "from hepclf.config import parse_pipeline\n"
        "from tests.conftest import demo_pipeline_dict\n"
        "from pathlib import Path\n"
        "data = demo_pipeline_dict(Path('/nowhere'))\n"
        "del data['models']\n"
        "print(sorted(parse_pipeline(data).models))\n"
        "import sys; print('tensorflow' in sys.modules)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["['bdt', 'linear', 'rf', 'svm', 'xgb']", "False"]
