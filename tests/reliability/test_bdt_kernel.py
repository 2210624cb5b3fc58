"""The bdt's compiled kernel survives whatever its cache folders hold (issue 17, item 3).

The former kernel was a gcc-built ``.so`` cached in ``$HEPCLF_COMPILED_CACHE`` and loaded
after an ``is_file()`` check: a truncated copy killed every later process with a bus error, a
zeroed page with a segfault. numba's own ``cache=True`` files crash the same way (measured:
see :mod:`hepclf.models.compiled_trees`), so the kernel is compiled in memory by each
process. Each probe scores in a separate process, so a crash shows as a failed test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

from hepclf.models import load_model
from hepclf.models.bdt import BDT

ROOT = Path(__file__).resolve().parents[2]
SCORE = """
import sys
import numpy as np
from hepclf.models import load_model
np.save(sys.argv[3], load_model(sys.argv[1]).predict_proba(np.load(sys.argv[2])))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """A saved bdt, 50,001 events to score (enough for two threads) and their scores."""
    folder = tmp_path_factory.mktemp("bdt")
    X, y = make_classification(52_001, 8, n_informative=5, random_state=3)
    X = X.astype(np.float32)
    BDT(n_trees=60, seed=0).fit(X[:2000], y[:2000]).save(folder / "model")
    np.save(folder / "events.npy", X[2000:])
    scores = load_model(folder / "model").predict_proba(X[2000:])
    return folder / "model", folder / "events.npy", scores


def start(
    saved: tuple[Path, Path, np.ndarray], cache: Path, out: Path, **env_vars: str
) -> subprocess.Popen:
    """Score in a new process whose kernel caches (the former and numba's) are ``cache``
    (and whose environment adds ``env_vars``)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEPCLF_COMPILED_CACHE": str(cache),
        "NUMBA_CACHE_DIR": str(cache),
        "HOME": str(out.parent / "home"),  # numba's per-user default cache folder
        **env_vars,
    }
    model, events, _ = saved
    command = [sys.executable, "-c", SCORE, str(model), str(events), str(out)]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=out.parent)


def score(saved: tuple[Path, Path, np.ndarray], cache: Path, out: Path) -> None:
    """Score in a new process; it must exit 0 with the in-process scores, bit for bit."""
    check(start(saved, cache, out), saved, out)


def check(process: subprocess.Popen, saved: tuple[Path, Path, np.ndarray], out: Path) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"exit {process.returncode}: {stderr[-2000:]}"
    np.testing.assert_array_equal(np.load(out), saved[2])


def damage(cache: Path, how: str) -> None:
    """Damage every file in ``cache`` as a full disk, a bad copy or a mix-up would."""
    foreign = Path(np.__file__).parent / "_core"
    library = next(foreign.glob("_multiarray_umath*.so")).read_bytes()
    for path in (p for p in cache.rglob("*") if p.is_file()):
        data = bytearray(path.read_bytes())
        if how == "truncated":
            data = data[: len(data) // 2]
        elif how == "zeroed":
            data[1024 : 1024 + 4096] = bytes(len(data[1024 : 1024 + 4096]))
        else:  # another valid shared library under the same name
            data = bytearray(library)
        path.write_bytes(bytes(data))


def test_a_damaged_kernel_cache_does_not_crash_scoring(saved, tmp_path):
    cache = tmp_path / "cache"
    score(saved, cache, tmp_path / "first.npy")  # fills whatever the kernel caches
    for how in ("truncated", "zeroed", "foreign library"):
        copy = tmp_path / how
        if cache.exists():
            shutil.copytree(cache, copy)
        damage(copy, how)
        score(saved, copy, tmp_path / f"{how}.npy")


@pytest.mark.parametrize("how", ["under a file", "read-only"])
def test_an_unusable_cache_folder_still_scores(saved, tmp_path, how):
    if how == "under a file":  # no folder can be made there, not even by root
        (tmp_path / "file").write_text("")
        cache = tmp_path / "file" / "cache"
    else:  # say CVMFS
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        cache = tmp_path / "cache"
        cache.mkdir()
        cache.chmod(0o500)
    score(saved, cache, tmp_path / "scores.npy")


def test_two_processes_at_once_leave_nothing_on_disk_to_damage(saved, tmp_path):
    cache = tmp_path / "cache"
    outs = [tmp_path / "a.npy", tmp_path / "b.npy"]
    processes = [start(saved, cache, out) for out in outs]
    for process, out in zip(processes, outs, strict=True):
        check(process, saved, out)
    in_tree = ROOT / "hepclf" / "models" / "__pycache__"
    written = [*cache.rglob("*"), *(tmp_path / "home").rglob("*.nb[ic]")]
    written += in_tree.glob("compiled_trees*.nb[ic]")
    assert not [path for path in written if path.is_file()]


def test_no_compiler_is_needed(saved, tmp_path):
    """The slim Docker image has no compiler: a process that finds none scores the same bits
    (the former kernel then fell back to numpy at 0.04x)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "scores.npy"
    check(start(saved, tmp_path / "cache", out, PATH=str(empty), CC="/no/cc"), saved, out)
