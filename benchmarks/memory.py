"""Peak memory of `hepclf train` against the size of the sample: bytes per event of the slope.

Each size trains the demo pipeline (``pipelines/demo.yaml``, 19 features: 76 bytes of
float32 per event) on generated demo files in its own `hepclf train` process, measured with
``/usr/bin/time -v`` (peak resident set size of the whole process tree's largest process:
the training process). The slope of peak RSS against events between the smallest and the
largest size is what a larger sample costs per event; the goal is at most three feature
rows (``GOAL_ROWS`` x 76 bytes). The full zoo is measured at one size beside it.

Every run starts from a cold cache (the Parquet feature cache is written in the run, as a
new user meets it) with a fresh SQLite MLflow store; ``train_seconds`` per model are read
back from ``metrics.json``.

    .venv/bin/python benchmarks/memory.py [--events 1e6 3e6 1e7] [--models xgb,linear,dnn]
        [--zoo-events 1e6] [--data DIR] [--goal-peak-gb 3.5]

``--rounds N`` caps xgb's boosting rounds, the dnn's epochs and the bdt's trees: their
memory is set by the data they hold, not by how long they train (a depth-4 tree is a few
kB), and on two busy cores full training on 4·10^6 events takes hours. The forest keeps
its 300 trees: its memory grows with them.
``--data DIR`` keeps the generated files (``DIR/<events>/``) and reuses them next time
(10^7 events are ~1 GB of ROOT files and a minute or two to generate).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "pipelines" / "demo.yaml"
FEATURE_ROW = 19 * 4
"""Bytes of one event's features as float32 in the demo pipeline."""
GOAL_ROWS = 3.0
ROUND_PARAMS = {"xgb": "n_estimators", "dnn": "epochs", "bdt": "n_trees"}
ZOO = "bdt,xgb,rf,svm,linear"
"""The demo zoo the issue measured at 10^6 events (the dnn is measured beside xgb, linear)."""


def demo_files(folder: Path, events: int) -> Path:
    """Generated demo files of ``events`` events in total (half signal), made once."""
    done = folder / ".complete"
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "hepclf", "demo-data", "--out", str(folder)]
        subprocess.run(
            [*command, "--events", str(events // 2)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        done.touch()
    return folder


def pipeline_for(
    data: Path, work: Path, rounds: int | None = None, rf_trees: int | None = None
) -> Path:
    """A copy of the demo pipeline reading the files in ``data``; ``rounds`` caps the
    boosting rounds and epochs (see ``ROUND_PARAMS``)."""
    spec = yaml.safe_load(DEMO.read_text())
    for sample in spec["samples"]:
        sample["files"] = [str(data / Path(f).name) for f in sample["files"]]
    if rounds:
        for model, key in ROUND_PARAMS.items():
            spec["models"][model] = {**(spec["models"].get(model) or {}), key: rounds}
    if rf_trees:
        spec["models"]["rf"] = {**(spec["models"].get("rf") or {}), "n_estimators": rf_trees}
    path = work / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def measure(
    data: Path, models: str, work: Path, rounds: int | None = None, rf_trees: int | None = None
) -> dict[str, float]:
    """Peak RSS (GB), wall seconds and summed ``train_seconds`` of one `hepclf train` run."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    pipeline = pipeline_for(data, work, rounds, rf_trees)
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "hepclf", "train", str(pipeline)]
    command += ["--models", models, "--output", str(work / "out")]
    command += ["--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
    env = {**os.environ, "HEPCLF_CACHE_DIR": str(work / "cache")}  # cold: written in the run
    start = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(
            f"hepclf train failed ({run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
        )
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    metrics = json.loads((work / "out" / "metrics.json").read_text())
    per_model = {
        name: m["train_seconds"]
        for name, m in metrics.items()
        if isinstance(m, dict) and "train_seconds" in m  # models, not the run's other keys
    }
    return {
        "peak_gb": peak_kb * 1024 / 1e9,
        "wall_s": wall,
        **{f"train_{k}": v for k, v in per_model.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, nargs="+", default=[1e6, 3e6, 1e7])
    parser.add_argument("--models", default="xgb,linear,dnn")
    parser.add_argument("--zoo-events", type=float, default=1e6, help="0: skip the full zoo")
    parser.add_argument("--zoo", default=ZOO)
    parser.add_argument("--data", type=Path, help="folder to keep (and reuse) the input files")
    parser.add_argument(
        "--rounds",
        type=int,
        help="cap xgb's rounds, the dnn's epochs and the bdt's trees (memory does not grow "
        "with them; time does)",
    )
    parser.add_argument(
        "--rf-trees", type=int, help="grow fewer forest trees (its memory is ~linear in them)"
    )
    parser.add_argument("--goal-peak-gb", type=float, default=3.5, help="at the largest size")
    parser.add_argument("--goal-zoo-gb", type=float, default=2.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hepclf-memory-") as tmp:
        data_root = args.data or Path(tmp) / "data"
        rows = []
        runs = [(int(n), args.models) for n in args.events]
        if args.zoo_events:
            runs.append((int(args.zoo_events), args.zoo))
        for events, models in runs:
            data = demo_files(data_root / str(events), events)
            result = measure(data, models, Path(tmp) / "run", args.rounds, args.rf_trees)
            rows.append((events, models, result))
            times = ", ".join(
                f"{k[6:]} {v:.0f} s" for k, v in result.items() if k.startswith("train_")
            )
            per_event = result["peak_gb"] * 1e9 / events
            print(
                f"{events:>10,} events  {models:<22} peak RSS {result['peak_gb']:5.2f} GB  "
                f"({per_event:6.0f} B/event)  wall {result['wall_s']:6.0f} s  [{times}]",
                flush=True,
            )

    sized = [(n, r["peak_gb"]) for n, m, r in rows if m == args.models]
    if len(sized) >= 2:
        (n0, p0), (n1, p1) = sized[0], sized[-1]
        slope = (p1 - p0) * 1e9 / (n1 - n0)
        print(
            f"slope {n0:,} -> {n1:,} events: {slope:.0f} bytes/event = "
            f"{slope / FEATURE_ROW:.2f} float32 feature rows (goal <= {GOAL_ROWS:g}: "
            f"{'met' if slope <= GOAL_ROWS * FEATURE_ROW else 'NOT met'})"
        )
        print(
            f"peak at {n1:,} events: {p1:.2f} GB (goal <= {args.goal_peak_gb:g} GB: "
            f"{'met' if p1 <= args.goal_peak_gb else 'NOT met'})"
        )
    for events, models, result in rows:
        if models == args.zoo:
            met = "met" if result["peak_gb"] <= args.goal_zoo_gb else "NOT met"
            print(
                f"full zoo at {events:,} events: {result['peak_gb']:.2f} GB (goal <= "
                f"{args.goal_zoo_gb:g} GB: {met})"
            )


if __name__ == "__main__":
    main()
