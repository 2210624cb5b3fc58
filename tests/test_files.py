"""The shared file helpers: atomic writes with the user's umask, globs, "did you mean"."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hepclf.ingest.table import FeatureTable
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import (
    atomic_path,
    expand_files,
    output_mode,
    partial_path,
    stale_partials,
    with_hints,
    write_atomic,
)


@pytest.fixture()
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_outputs_get_the_mode_the_umask_allows(mask: int, tmp_path: Path, umask: None) -> None:
    os.umask(mask)
    assert output_mode() == 0o666 & ~mask
    out = write_atomic(b"data", tmp_path / "model.onnx")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what an ordinary open() gives, the reference
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_parquet_table_follows_the_umask(tmp_path: Path, umask: None) -> None:
    import numpy as np

    os.umask(0o002)
    table = FeatureTable(
        np.zeros((3, 2), np.float32),
        ["a", "b"],
        np.array([0, 1, 1], np.int8),
        np.ones(3),
        np.zeros(3, np.int16),
        ["s"],
        np.arange(3),
    )
    path = table.write_parquet(tmp_path / "t.parquet")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_failed_write_keeps_the_earlier_file(tmp_path: Path) -> None:
    out = write_atomic(b"first", tmp_path / "a" / "f.bin")
    with pytest.raises(RuntimeError), atomic_path(out) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("killed")
    assert out.read_bytes() == b"first"
    assert [p.name for p in out.parent.iterdir()] == ["f.bin"]


def test_expand_files_in_order_once_and_names_a_pattern_without_files(tmp_path: Path) -> None:
    for name in ("b.root", "a.root", "c.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "d.root").mkdir()  # a folder is not a file
    files = expand_files(
        [str(tmp_path / "*.root"), str(tmp_path / "a.root"), str(tmp_path / "c.txt")],
        lambda p: InputDataError(f"nothing for {p}"),
    )
    assert files == [str(tmp_path / n) for n in ("a.root", "b.root", "c.txt")]
    with pytest.raises(InputDataError, match=r"nothing for .*\*\.parquet"):
        expand_files([str(tmp_path / "*.parquet")], lambda p: InputDataError(f"nothing for {p}"))


def test_did_you_mean() -> None:
    present = {"lep_pt", "lep_eta", "Jet_pt", "met"}
    hints = with_hints(["lep_pT", "zzz"], present)
    assert hints == "'lep_pT' (did you mean 'lep_pt', 'lep_eta'?), 'zzz'"  # closest first


def test_a_link_is_written_through_to_its_target(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "scores.root"
    target.write_bytes(b"old")
    link = tmp_path / "scores.root"
    link.symlink_to(target)
    write_atomic(b"new", link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.root", "store"]
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["scores.root"]
    killed = partial_path(target)  # what a killed writer through the link leaves
    killed.write_bytes(b"half")
    assert stale_partials(link) == [killed]
