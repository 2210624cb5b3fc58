"""Shared fixtures: generated demo data, the real ROOT files in ../shared/data, pipelines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A real ROOT file from ../shared/data, or skip the test where it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data is optional)")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small generated signal/background files, shared by the whole session."""
    from hepclf.demo_data import write_demo_data

    out = tmp_path_factory.mktemp("demo") / "data"
    write_demo_data(out, events=4000, seed=3)
    return out


def demo_pipeline_dict(data_dir: Path, **overrides: object) -> dict:
    """The demo pipeline pointed at ``data_dir``, with top-level keys overridden."""
    config = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    config["samples"][0]["files"] = [str(data_dir / "signal.root")]
    config["samples"][1]["files"] = [str(data_dir / "background.root")]
    config.update(overrides)
    return config


def write_pipeline(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ingest cache per test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HEPCLF_CACHE_DIR", str(folder))
    return folder
