"""The command line as a user meets it: real processes, exit codes, messages, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import demo_pipeline_dict, write_pipeline

HEPCLF = [sys.executable, "-m", "hepclf"]


def run(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HEPCLF, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_demo_data_is_reproducible(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = run("demo-data", "--out", str(tmp_path / name), "--events", "500", "--seed", "5")
        assert done.returncode == 0, done.stderr
    for f in ("signal.root", "background.root"):
        assert (tmp_path / "a" / f).read_bytes() != b""
        import uproot

        a = uproot.open(tmp_path / "a" / f)["Events"].arrays(library="np")
        b = uproot.open(tmp_path / "b" / f)["Events"].arrays(library="np")
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a if a[k].dtype != object)
        assert len(a["event"]) == 500


def test_ingest_writes_parquet_and_prints_summary(demo_dir: Path, tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", demo_pipeline_dict(demo_dir))
    out = tmp_path / "table.parquet"
    env = {**os.environ, "COLUMNS": "80"}
    done = run("ingest", str(pipeline), "--out", str(out), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "ttH" in done.stdout and "jet_pt_0" in done.stdout
    tables = done.stdout.split("\nwrote")[0].splitlines()  # the file path may be longer
    assert max(len(line) for line in tables) <= 80 and "…" not in done.stdout
    assert "background" in done.stdout  # a class name, not cut
    table = pq.read_table(out)
    assert {"label", "weight", "sample", "event_id", "ht"} <= set(table.column_names)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["samples"][0].update(files=["missing.root"]), "no file matches"),
        (lambda c: c["samples"][0].update(tree="Nope"), "no tree named 'Nope'"),
        (lambda c: c.update(features=["met", "lep_ptt"]), "missing branch 'lep_ptt'"),
        (lambda c: c.update(selection="nJet >"), "'nJet >' is not valid"),
        (lambda c: c.update(split={"test_fraction": 2}), "split.test_fraction"),
    ],
)
def test_bad_input_exits_2_with_one_message(
    demo_dir: Path, tmp_path: Path, mutate, message: str
) -> None:
    config = demo_pipeline_dict(demo_dir)
    mutate(config)
    pipeline = write_pipeline(tmp_path / "p.yaml", config)
    out = tmp_path / "table.parquet"
    out.write_bytes(b"earlier result")
    done = run("ingest", str(pipeline), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert out.read_bytes() == b"earlier result"  # nothing overwritten half-way


def test_help_is_whole_at_100_columns() -> None:
    """Outside a terminal help is laid out for 100 columns: nothing cut with an ellipsis."""
    from hepclf.cli import app

    commands = sorted(
        c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands
    )
    assert {"train", "score", "result", "tune", "tracking-server"} <= set(commands)
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "COLUMNS")}
    for command in commands:
        done = run(command, "--help", env=env)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "…" not in done.stdout, command
        assert max(len(line) for line in lines) <= 100, command
    help_text = run("score", "--help", env=env).stdout
    assert "models:/NAME@ALIAS," in help_text and "runs:/RUN_ID/MODEL" in help_text


def test_an_interrupt_swallowed_by_a_weakref_callback_is_delivered_again() -> None:
    """SIGTERM arriving while a weakref callback runs (matplotlib's, during a plot) raises
    there, where Python ignores the exception: the CLI sends it again, so the run stops."""
    script = """
import os, signal, sys, time, weakref
from hepclf.cli import _sigterm, _unraisable
signal.signal(signal.SIGTERM, _sigterm)
sys.unraisablehook = _unraisable
class Thing: pass
def callback(ref):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the handler runs here, inside the callback: swallowed by Python
thing = Thing()
ref = weakref.ref(thing, callback)
try:
    del thing
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.01)
    print("not stopped")
except KeyboardInterrupt:
    print("stopped")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "stopped", done.stderr
