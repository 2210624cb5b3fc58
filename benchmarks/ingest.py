"""Ingest throughput: `hepclf` ingest versus a bare `uproot.concatenate` of the same branches.

Both run in this one process, interleaved (so drifts of a shared machine hit both alike),
on the same generated files; the best of ``--repeat`` runs of each is kept. Prints
events/s and the ratio hepclf/bare (goal >= 0.9), the CPU seconds of each (hepclf reads
one chunk ahead in a thread, so its wall time can be below its CPU time), then the cost
of the first run's Parquet cache write (done in the background) relative to ingest alone.

    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--repeat 5] [--data DIR]

``--data DIR`` keeps the generated files there (and reuses them on the next run).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import uproot

from hepclf.config import load_pipeline
from hepclf.ingest import cache, ingest
from hepclf.ingest.demo_data import write_demo_data
from hepclf.ingest.run import read_samples

GOAL = 0.9
PIPELINE = """
name: bench
samples:
  - {{name: sig, files: [{sig}], tree: Events, label: signal, weight: genWeight}}
  - {{name: bkg, files: [{bkg}], tree: Events, label: background, weight: genWeight}}
event_id: event
features:
  - lep_pt
  - lep_eta
  - met
  - nJet
  - {{name: ht, expr: "sum(Jet_pt)"}}
  - {{name: jet_pt, branch: Jet_pt, leading: 4}}
  - {{name: jet_eta, branch: Jet_eta, leading: 4}}
  - {{name: jet_btag, branch: Jet_btag, leading: 4, pad: -1}}
"""
BRANCHES = [
    "event",
    "genWeight",
    "lep_pt",
    "lep_eta",
    "met",
    "nJet",
    "Jet_pt",
    "Jet_eta",
    "Jet_btag",
]


def _timed(function, cpu: list[float]) -> float:
    """Wall seconds of one call; its CPU seconds (all threads) are appended to ``cpu``."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function()
    seconds = time.perf_counter() - start
    cpu.append(time.process_time() - start_cpu)
    del result
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in total")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best is kept")
    parser.add_argument("--data", type=Path, help="folder to keep (and reuse) the input files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        sig, bkg = data / "signal.root", data / "background.root"
        stamp = data / f".events-{args.events}"
        if not stamp.exists():
            write_demo_data(data, events=args.events // 2, seed=7)
            stamp.touch()
        pipeline = Path(tmp) / "bench.yaml"
        pipeline.write_text(PIPELINE.format(sig=sig, bkg=bkg))
        config = load_pipeline(pipeline)
        files = {str(sig): "Events", str(bkg): "Events"}

        def bare():
            return uproot.concatenate(files, BRANCHES, library="ak")

        def ours():
            return read_samples(config)

        events = len(bare())  # warm up both (imports, page cache) before timing
        ours()
        bare_s, ours_s, cached_s, written_s = [], [], [], []
        bare_cpu: list[float] = []
        ours_cpu: list[float] = []
        for i in range(args.repeat):  # interleaved: drifts of a shared machine hit all alike
            bare_s.append(_timed(bare, bare_cpu))
            ours_s.append(_timed(ours, ours_cpu))
            os.environ["HEPCLF_CACHE_DIR"] = str(Path(tmp) / f"cache{i}")  # a first run
            gc.collect()
            start = time.perf_counter()
            ingest(config)
            cached_s.append(time.perf_counter() - start)
            cache.wait()  # the write runs in the background; how long until it is on disk
            written_s.append(time.perf_counter() - start)

    best_bare, best_ours = min(bare_s), min(ours_s)
    ratio = best_bare / best_ours
    print(f"events: {events:,} (two files), best of {args.repeat} interleaved runs, one process")
    print(f"bare uproot.concatenate : {events / best_bare:>12,.0f} events/s  ({best_bare:.3f} s)")
    print(f"hepclf ingest           : {events / best_ours:>12,.0f} events/s  ({best_ours:.3f} s)")
    print(f"ratio hepclf/bare = {ratio:.2f} (goal >= {GOAL})")
    print(
        f"CPU seconds (all threads, best): bare {min(bare_cpu):.3f}, hepclf {min(ours_cpu):.3f} "
        f"(ratio {min(bare_cpu) / min(ours_cpu):.2f}; on a busy machine wall times follow the "
        "load, CPU times do not)"
    )
    print(
        f"first run (cache written in the background): {min(cached_s):.3f} s "
        f"(+{min(cached_s) / best_ours - 1:.0%} over ingest); cache on disk after "
        f"{min(written_s):.3f} s (+{min(written_s) / best_ours - 1:.0%})"
    )


if __name__ == "__main__":
    main()
