"""notebooks/quickstart.ipynb runs top to bottom (on small data) and is committed clean."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has code cells"
    for cell in code:
        assert cell.outputs == [], f"cell with outputs: {cell.source[:60]!r}"
        assert cell.execution_count is None, f"cell with a count: {cell.source[:60]!r}"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.fixture()
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A 'python3' kernelspec that runs this interpreter (the project's venv), found first."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hepclf venv",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(
    venv_kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "run"
    monkeypatch.setenv("HEPCLF_QUICKSTART_DIR", str(work))
    monkeypatch.setenv("HEPCLF_QUICKSTART_EVENTS", "3000")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=venv_kernel,
        timeout=240,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]  # fmt: skip
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]  # fmt: skip
    # the ROC curve, three overtraining plots and the score histogram, shown inline
    assert len(images) >= 5
    # what the notebook says it made
    assert (work / "output" / "plots" / "roc.png").is_file()
    assert sorted(p.name for p in (work / "scored").iterdir()) == [
        "background_scores.root",
        "signal_scores.root",
    ]
    assert (work / "model.onnx").is_file()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "max |ONNX - Python|" in text
