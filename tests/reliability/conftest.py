"""A real ``hepclf serve`` process on 127.0.0.1 per test module, and small data helpers."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import awkward as ak
import httpx
import numpy as np
import pytest
import uproot

from tests.conftest import RegisteredModels, Server, serve


def health_seconds(url: str) -> float:
    """Seconds ``GET /health`` takes (at most 5: a slower answer fails as a timeout)."""
    start = time.monotonic()
    answer = httpx.get(f"{url}/health", timeout=5.0)
    assert answer.status_code == 200
    return time.monotonic() - start


@contextmanager
def running_server(registered: RegisteredModels, base: Path, *extra: str) -> Iterator[Server]:
    """``hepclf serve`` with the demo files under ``base/root/data``; stopped at the end."""
    root = base / "root"
    (root / "data").mkdir(parents=True)
    for name in ("signal.root", "background.root"):
        shutil.copy(registered.data / name, root / "data" / name)
    with serve(base, root, registered.tracking_uri, *extra) as server:
        yield server


@pytest.fixture(scope="module")
def server(
    registered_models: RegisteredModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(registered_models, tmp_path_factory.mktemp("reliability")) as running:
        yield running


def write_without_jets(source: Path, dest: Path, every: int = 5) -> np.ndarray:
    """A copy of ``source`` where every ``every``-th event has no jets (``nJet == 0``, empty
    jet lists), as real data has; returns the entry numbers of those events."""
    arrays = uproot.open(source)["Events"].arrays()
    empty = np.arange(len(arrays)) % every == 0
    keep = ak.Array(np.repeat(~empty, ak.to_numpy(ak.num(arrays.Jet_pt))))
    counts = np.where(empty, 0, ak.to_numpy(ak.num(arrays.Jet_pt)))
    columns = {f: arrays[f] for f in arrays.fields}
    for name in (f for f in arrays.fields if arrays[f].ndim > 1):  # every jagged branch
        content = ak.flatten(arrays[name])[keep]
        columns[name] = ak.unflatten(content, counts)
    columns["nJet"] = np.where(empty, 0, ak.to_numpy(arrays.nJet)).astype(
        ak.to_numpy(arrays.nJet).dtype
    )
    with uproot.recreate(dest) as file:
        file.mktree(
            "Events",
            {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in columns.items()},
        )
        file["Events"].extend(columns)
    return np.flatnonzero(empty)
