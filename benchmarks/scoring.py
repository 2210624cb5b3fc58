"""Benchmark batch scoring: overhead against a bare read + predict, memory, parallel speed-up.

    .venv/bin/python benchmarks/scoring.py                    # 1,000,000 events, xgb and dnn
    .venv/bin/python benchmarks/scoring.py --events 200000 --models xgb

1. Throughput: ``score_files`` (what ``hepclf score`` runs: checks, features, scores, ROOT
   output written atomically) against a bare loop over the same file (``uproot.iterate``
   of the same branches, the same feature code, ``predict_proba``; nothing written), in
   the same process. The goal is a ratio of at least 0.7.
2. Peak memory: ``hepclf score`` in a fresh process per setting (``wait4`` rusage): the
   peak follows the step size, not the file size.
3. Parallel: four files with ``--workers 2`` against ``--workers 1`` (the CLI, wall time,
   cluster start-up included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import uproot

from hepclf.cluster.client import dask_client
from hepclf.config import parse_pipeline
from hepclf.config.training import NormalizationConfig
from hepclf.ingest.demo_data import BACKGROUND, SIGNAL, TREE, write_demo_data, write_process
from hepclf.ingest.run import read_samples
from hepclf.models import build_model
from hepclf.scoring import DEFAULT_STEP_SIZE
from hepclf.scoring.cluster import run_on_dask, warm_workers
from hepclf.scoring.file_job import ScoreSettings
from hepclf.scoring.runner import plan_outputs, score_files
from hepclf.scoring.scorers import ModelSpec, ScoringModel, branch_for, load_scoring_models
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer

REPO = Path(__file__).resolve().parents[1]
HEPCLF = [sys.executable, "-m", "hepclf"]
PARAMS: dict[str, dict[str, object]] = {
    "linear": {},
    "xgb": {"n_estimators": 300, "max_depth": 6, "early_stopping_rounds": 300},
    "bdt": {"n_trees": 200},
    "dnn": {"epochs": 3, "ensemble": 1, "patience": 3},
}


def train(name: str, folder: Path, events: int) -> Path:
    """A model trained on ``events`` demo events per class, saved as a local model folder."""
    import yaml

    data = folder / "train-data"
    write_demo_data(data, events=events, seed=7)
    config_data = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    config_data["samples"][0]["files"] = [str(data / "signal.root")]
    config_data["samples"][1]["files"] = [str(data / "background.root")]
    config = parse_pipeline({**config_data, "selection": None})
    table = read_samples(config)
    normalizer = Normalizer.fit(table.X, NormalizationConfig())
    X = normalizer.transform(table.X)
    model = build_model(name, PARAMS[name], seed=1).fit(X, table.label, np.abs(table.weight))
    return ModelBundle(name, list(config.features), normalizer, model, "bench").save(
        folder / f"model-{name}"
    )


def bare(path: Path, bundle: ModelBundle, step_size: str) -> dict[str, float]:
    """Read, compute features and predict chunk by chunk, nothing else; seconds per part."""
    times = {"read": 0.0, "features": 0.0, "predict": 0.0}
    tree = uproot.open(path)[TREE]
    start = time.perf_counter()
    for chunk in tree.iterate(bundle.required_branches, step_size=step_size):
        t1 = time.perf_counter()
        X = bundle.features_from_branches(chunk, len(chunk))
        t2 = time.perf_counter()
        bundle.classifier.predict_proba(bundle.normalizer.transform(X))
        t3 = time.perf_counter()
        times["read"] += t1 - start
        times["features"] += t2 - t1
        times["predict"] += t3 - t2
        start = time.perf_counter()
    times["total"] = sum(times.values())
    return times


def throughput(
    path: Path, model_dir: Path, events: int, step_size: str, out: Path, repeats: int
) -> None:
    """Best of ``repeats`` interleaved runs of each, so that a busy machine hurts both alike."""
    bundle = ModelBundle.load(model_dir)
    model = ScoringModel(ModelSpec(str(model_dir), branch_for(bundle.name)), bundle)
    bare(path, bundle, step_size)  # warm-up: file cache, lazy imports, first-call setup
    settings = ScoreSettings(out_dir=out, step_size=step_size, overwrite=True)
    references, runs = [], []
    for _ in range(repeats):
        references.append(bare(path, bundle, step_size))
        summary = score_files([str(path)], [model], settings)
        assert summary.results[0].status == "scored", summary.results[0].error
        runs.append(summary.seconds)
    reference = min(references, key=lambda r: r["total"])
    seconds = min(runs)
    print(
        f"  {bundle.name}: hepclf score {events / seconds:,.0f} events/s ({seconds:.2f} s); "
        f"bare read+features+predict {events / reference['total']:,.0f} events/s "
        f"({reference['total']:.2f} s: read {reference['read']:.2f}, features "
        f"{reference['features']:.2f}, predict {reference['predict']:.2f}); "
        f"ratio {reference['total'] / seconds:.2f} (goal >= 0.7)"
    )


_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "err = p.stderr.read()\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
    "sys.stderr.write(err.decode()[-2000:])\n"
)


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Peak resident memory (MB) and wall time of a command in a fresh process.

    The command is started from a small wrapper process: on Linux a child's peak RSS
    starts from its parent's at fork time, so forking from this (large) process would
    report this process's memory instead.
    """
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rss_kb, code = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    return int(rss_kb) / 1024, seconds


def memory(files: dict[str, Path], model_dir: Path, out: Path) -> None:
    for label, path in files.items():
        for step in ("10 MB", "25 MB", "100 MB", "400 MB"):
            args = [*HEPCLF, "score", "-m", str(model_dir), str(path), "--out", str(out)]
            rss, _ = peak_rss_mb([*args, "--step-size", step, "--overwrite"])
            print(f"  {label}, --step-size {step!r}: peak RSS {rss:,.0f} MB")


def parallel(path: Path, model_dir: Path, folder: Path) -> None:
    """The CLI end to end, then in process: cluster start-up apart from the scoring."""
    folder.mkdir(exist_ok=True)
    inputs = []
    for i in range(4):
        copy = folder / f"part{i}.root"
        shutil.copy(path, copy)
        inputs.append(str(copy))
    seconds = {}
    for workers in (1, 2):
        args = [*HEPCLF, "score", "-m", str(model_dir), *inputs, "--out", str(folder / "out")]
        _, seconds[workers] = peak_rss_mb([*args, "--workers", str(workers), "--overwrite"])
        print(f"  hepclf score --workers {workers}: {seconds[workers]:.1f} s wall")
    print(f"  speed-up {seconds[1] / seconds[2]:.2f}x (CLI, process and cluster start included)")
    models = load_scoring_models([str(model_dir)])
    settings = ScoreSettings(out_dir=folder / "out", overwrite=True)
    serial = score_files(inputs, models, settings).seconds
    specs, uri = (models[0].spec,), mlflow.get_tracking_uri()
    start = time.perf_counter()
    with dask_client(2, None) as client:
        warm_workers(client, specs, uri)
        started = time.perf_counter() - start
        start = time.perf_counter()
        plan = plan_outputs(inputs, settings)
        results = run_on_dask(client, plan, specs, uri, settings, lambda _: None)
        scored = time.perf_counter() - start
    assert all(r.status == "scored" for r in results), results
    print(
        f"  in process: 1 worker {serial:.1f} s; 2 workers {scored:.1f} s after a cluster "
        f"start-up (models loaded) of {started:.1f} s: speed-up {serial / scored:.2f}x "
        f"without the start-up, {serial / (scored + started):.2f}x with it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the big file")
    parser.add_argument("--models", default="xgb,dnn", help="zoo models for throughput")
    parser.add_argument(
        "--parallel-models",
        default="xgb,linear",
        help="zoo models for the parallel run (linear: prediction does not use every core)",
    )
    parser.add_argument("--train-events", type=int, default=20_000, help="per class")
    parser.add_argument("--step-size", default=DEFAULT_STEP_SIZE)
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs, best kept")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument("--sections", default="throughput,memory,parallel")
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="hepclf-bench-scoring-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"working in {folder}; {os.cpu_count()} cores")

    start = time.perf_counter()
    big = write_process(folder / "big.root", SIGNAL, args.events, seed=3)
    quarter = write_process(folder / "quarter.root", BACKGROUND, args.events // 4, seed=4)
    size = big.stat().st_size / 2**20
    print(f"wrote {args.events:,} events ({size:.0f} MB) in {time.perf_counter() - start:.1f} s")
    throughput_models = args.models.split(",")
    parallel_models = args.parallel_models.split(",")
    names = dict.fromkeys(throughput_models + parallel_models)
    models = {name: train(name, folder, args.train_events) for name in names}

    sections = args.sections.split(",")
    if "throughput" in sections:
        print(f"1. throughput on {args.events:,} events, step size {args.step_size!r}")
        for name in throughput_models:
            out = folder / "out"
            throughput(big, models[name], args.events, args.step_size, out, args.repeats)
    first = models[throughput_models[0]]
    if "memory" in sections:
        print(f"2. peak memory of `hepclf score` ({first.name})")
        sizes = {f"{args.events // 4:,} events": quarter, f"{args.events:,} events": big}
        memory(sizes, first, folder / "out")
    for name in parallel_models if "parallel" in sections else []:
        print(f"3. four files of {args.events // 4:,} events ({name})")
        parallel(quarter, models[name], folder / "parallel")
    if args.workdir is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
