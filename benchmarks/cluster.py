"""Benchmark ingest and training on a Dask cluster: events/s with 1 and 2 workers, memory.

    .venv/bin/python benchmarks/cluster.py                          # 10^7 events, 200 files
    .venv/bin/python benchmarks/cluster.py --events 1000000 --files 40 --models xgb,linear

Generated demo events (ttH-like signal, ttbar-like background; half the files each) are
ingested into Parquet partitions and the models fitted (``xgb``: xgboost.dask; ``linear``:
Fisher from per-partition sums; ``dnn``: one worker reading the partitions) and scored on
the workers, first on a LocalCluster of 1 worker, then of 2, each worker single-threaded
with ``--worker-memory``. Printed per step: events/s, the 2-worker/1-worker ratio, events/s
per worker (what a farm of N workers multiplies, until the shared file system, the
scheduler or, for xgb, the allreduce of histograms each round limits it), the client's
peak RSS and each worker's.

Two cores cannot show a speed-up beyond 2, and with other jobs on the machine less: the
ratio is stated as measured.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def generate(folder: Path, events: int, files: int) -> Path:
    """``files`` ROOT files (half signal, half background) and a pipeline over them."""
    from hepclf.ingest.demo_data import BACKGROUND, SIGNAL, write_process

    per_file = events // files
    for i in range(files):
        shape, name = (SIGNAL, "signal") if i % 2 == 0 else (BACKGROUND, "background")
        path = folder / f"{name}_{i:04d}.root"
        if not path.exists():
            write_process(path, shape, per_file, seed=1000 + i)
    config = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    config["samples"][0]["files"] = [str(folder / "signal_*.root")]
    config["samples"][1]["files"] = [str(folder / "background_*.root")]
    config.pop("result", None)
    pipeline = folder / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(config, sort_keys=False))
    return pipeline


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(pipeline: Path, workers: int, memory: str, models: list[str], tables: Path) -> dict:
    """Ingest, fit and score with ``workers`` workers; seconds and peak memory of each."""
    from hepclf.cluster.client import dask_client
    from hepclf.cluster.executor import DaskExecutor
    from hepclf.cluster.ingest import ingest_on_cluster
    from hepclf.cluster.prepare import prepare_on_cluster
    from hepclf.cluster.train import fit_on_cluster, score_on_cluster
    from hepclf.config import load_pipeline

    config = load_pipeline(pipeline)
    found: dict = {"workers": workers, "seconds": {}}
    with dask_client(workers, None, memory) as client:
        executor = DaskExecutor(client)
        start = time.perf_counter()
        table = ingest_on_cluster(config, executor, tables / str(workers), use_cache=False)
        found["seconds"]["ingest"] = time.perf_counter() - start
        found["events"] = int(sum(s["entries"] for s in table.info["samples"]))
        data = prepare_on_cluster(config, table, executor)
        found["train_events"] = sum(len(p.rows) for p in (*data.fit, *data.validation))
        found["scored_events"] = len(data.split.train) + len(data.split.test)
        for name in models:
            params = {"epochs": 2, "ensemble": 1} if name == "dnn" else {}
            start = time.perf_counter()
            model, _ = fit_on_cluster(name, params, config, data, executor)
            found["seconds"][f"fit {name}"] = time.perf_counter() - start
            start = time.perf_counter()
            score_on_cluster(model, data, executor)
            found["seconds"][f"score {name}"] = time.perf_counter() - start
        found["worker_peak_mb"] = sorted(client.run(_peak_rss_mb).values())
    found["client_peak_mb"] = _peak_rss_mb()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--models", default="xgb,linear,dnn")
    parser.add_argument("--worker-memory", default="4GB")
    parser.add_argument("--data", type=Path, help="folder for the generated files (kept)")
    parser.add_argument("--one", type=int, help="(internal) measure this many workers only")
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="hepclf-cluster-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    if args.one:
        import json

        pipeline = folder / "pipeline.yaml"
        result = measure(pipeline, args.one, args.worker_memory, models, folder / "tables")
        print("RESULT " + json.dumps(result), flush=True)
        return
    start = time.perf_counter()
    generate(folder, args.events, args.files)
    print(
        f"{args.events:,} events in {args.files} files: generated in "
        f"{time.perf_counter() - start:.0f} s ({folder})",
        flush=True,
    )
    results = {}
    for workers in (1, 2):  # a fresh client process each: its peak memory is its own
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--data",
                str(folder),
                "--one",
                str(workers),
                "--models",
                args.models,
                "--worker-memory",
                args.worker_memory,
                "--events",
                str(args.events),
                "--files",
                str(args.files),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            sys.exit(f"{workers} worker(s) failed:\n{done.stderr[-3000:]}")
        import json

        results[workers] = json.loads(lines[-1].removeprefix("RESULT "))
    one, two = results[1], results[2]
    print(
        f"\n{'step':<14}{'events':>12}{'1 worker ev/s':>16}{'2 workers ev/s':>16}"
        f"{'ratio 2/1':>11}{'per worker (2)':>16}"
    )
    for step in one["seconds"]:
        n = {"ingest": one["events"]}.get(step) or (
            one["train_events"] if step.startswith("fit") else one["scored_events"]
        )
        rate1, rate2 = n / one["seconds"][step], n / two["seconds"][step]
        print(
            f"{step:<14}{n:>12,}{rate1:>16,.0f}{rate2:>16,.0f}{rate2 / rate1:>11.2f}"
            f"{rate2 / 2:>16,.0f}"
        )
    for r in (one, two):
        print(
            f"{r['workers']} worker(s): client peak RSS {r['client_peak_mb']:.0f} MB, "
            f"worker peaks {[round(m) for m in r['worker_peak_mb']]} MB"
        )


if __name__ == "__main__":
    main()
