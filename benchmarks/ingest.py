"""Ingest throughput: `hepclf` ingest versus a bare `uproot.concatenate` of the same branches.

Both run in fresh subprocesses of this one run (so peak memory is each one's own), on the same
generated files. Prints events/s, the ratio hepclf/bare (goal >= 0.8) and peak RSS, for two
step sizes to show that hepclf's memory follows the chunk size, not the file size.

    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PIPELINE = """
name: bench
samples:
  - {{name: sig, files: [{sig}], tree: Events, label: signal, weight: genWeight}}
  - {{name: bkg, files: [{bkg}], tree: Events, label: background, weight: genWeight}}
event_id: event
step_size: "{step}"
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

HEPCLF = """
import json, resource, sys, time
from hepclf.config import load_pipeline
from hepclf.ingest.run import read_samples
config = load_pipeline(sys.argv[1])
start = time.perf_counter()
table = read_samples(config, show_progress=False)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"events": int(sum(s["entries"] for s in table.info["samples"])),
                  "seconds": seconds, "peak_rss_mb": rss}))
"""
BARE = """
import json, resource, sys, time
import uproot
files, branches = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start = time.perf_counter()
arrays = uproot.concatenate({f: "Events" for f in files}, branches, library="ak")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"events": len(arrays), "seconds": seconds, "peak_rss_mb": rss}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in total")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    args = parser.parse_args()
    from hepclf.demo_data import write_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        files = write_demo_data(Path(tmp) / "data", events=args.events // 2, seed=7)
        sig, bkg = str(files["signal"]), str(files["background"])
        pipelines = {}
        for step in ("25 MB", "100 MB"):
            path = Path(tmp) / f"bench_{step.split()[0]}.yaml"
            path.write_text(PIPELINE.format(sig=sig, bkg=bkg, step=step))
            pipelines[step] = str(path)
        bare, ours = [], {step: [] for step in pipelines}
        for _ in range(args.repeat):  # interleaved, so drifts of the machine hit both alike
            bare.append(run(BARE, json.dumps([sig, bkg]), json.dumps(BRANCHES)))
            for step, path in pipelines.items():
                ours[step].append(run(HEPCLF, path))
    best_bare = min(bare, key=lambda r: r["seconds"])
    print(f"events: {best_bare['events']:,} (two files), best of {args.repeat} runs each")
    print(
        f"bare uproot.concatenate : {best_bare['events'] / best_bare['seconds']:>12,.0f} "
        f"events/s  peak RSS {best_bare['peak_rss_mb']:.0f} MB"
    )
    for step, results in ours.items():
        best = min(results, key=lambda r: r["seconds"])
        ratio = best_bare["seconds"] / best["seconds"]
        print(
            f"hepclf ingest ({step:>6}): {best['events'] / best['seconds']:>12,.0f} events/s  "
            f"peak RSS {best['peak_rss_mb']:.0f} MB  ratio hepclf/bare = {ratio:.2f} "
            f"(goal >= 0.8)"
        )


if __name__ == "__main__":
    main()
