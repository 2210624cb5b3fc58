"""Time of the physics result (pyhf) for six models, against pyhf's own limit scan.

Six toy discriminants of increasing separation stand for the zoo's test scores on the demo
(30,000 events per process, half of them in the test part). For each, hepclf bins,
builds the workspace and computes Z0 and the expected limit band; the same workspace
then goes through ``pyhf.infer.intervals.upper_limits.upper_limit`` (TOMS 748 root finding
with full hypotests). Prints the seconds of both, the ratio (goal: the six results in
seconds) and the largest relative difference of the limit band.
Run: .venv/bin/python benchmarks/physics.py [--events 15000] [--seed 1]

``--multiclass``: the four-process demo (``pipelines/multiclass.yaml``, ``--events`` per
process), models trained once; prints per model Z0 and the expected limit of the summed
signal probability in one channel against one channel per output node (CMS ttH(bb)),
with the seconds of each physics result.

``--toys N``: the toy-based CLs (N toys per hypothesis) at the asymptotic median limit of
a one-bin counting experiment, with the toys' fits by scipy (what hepclf uses) and by
MINUIT, where counts are large (s = 30, b = 400: should be 5 %) and at b = 0.2 (the
asymptotic limit is optimistic there: above 5 %).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyhf

from hepclf.config.result import ResultConfig
from hepclf.physics import EvaluatedEvents, PhysicsResult, physics_result

MODELS = {"linear": 1.0, "rf": 1.2, "bdt": 1.4, "svm": 1.5, "xgb": 1.7, "dnn": 1.8}
"""Toy 'models': the signal score is Beta(1 + 2 s, 2) and the background Beta(2, 1 + 2 s)."""


def toy_scores(separation: float, events: int, rng: np.random.Generator) -> EvaluatedEvents:
    """Test-part scores of ttH (2 fb) and ttbar (50 fb) at 140/fb, half of 2 x ``events``."""
    sample = np.repeat([0, 1], events)
    a = 1.0 + 2.0 * separation
    score = np.where(sample == 0, rng.beta(a, 2.0, 2 * events), rng.beta(2.0, a, 2 * events))
    per_event = np.array([2.0, 50.0]) * 140.0 / events  # each test event stands for two
    weight = per_event[sample] * rng.normal(1.0, 0.05, 2 * events)
    return EvaluatedEvents(score, weight, sample, ["ttH", "ttbar"], ["ttH"])


def multiclass(events: int, models: list[str]) -> None:
    """Single summed-signal channel vs per-node channels on the multi-class demo."""
    import tempfile
    from pathlib import Path

    import yaml

    from hepclf.config import parse_pipeline
    from hepclf.ingest import ingest
    from hepclf.ingest.demo_data import write_demo_data
    from hepclf.physics.step import model_physics
    from hepclf.training.fit import train_model
    from hepclf.training.prepare import prepare

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(tmp, events=events, seed=7, processes=["ttH", "ttbb", "ttcc", "ttlf"])
        raw = yaml.safe_load((repo / "pipelines" / "multiclass.yaml").read_text())
        raw["samples"] = [
            {**s, "files": [f"{tmp}/{s['name']}.root"]}
            for s in raw["samples"]
            if s["label"] != "data"
        ]
        raw["result"] = {"systematics": {"normsys": {"ttbb": 0.1}}}
        single = parse_pipeline(raw, base_dir=Path(tmp))
        nodes = parse_pipeline(
            {**raw, "result": {**raw["result"], "channels": "nodes"}}, base_dir=Path(tmp)
        )
        table = ingest(single, use_cache=False)
        data = prepare(single, table)
        print(f"multi-class demo, {events:,} events per process (ttH scale 0.05), test half")
        print(
            f"{'model':8s} {'Z0 single':>9s} {'Z0 nodes':>9s} {'mu95 single':>11s} "
            f"{'mu95 nodes':>10s} {'s single':>8s} {'s nodes':>8s}"
        )
        for name in models:
            result = train_model(name, single.models.get(name, {}), single, data)
            scores = result.scores["test"]
            row = []
            for config in (single, nodes):
                start = time.perf_counter()
                physics = model_physics(config, table, data.split.test, scores)
                row.append((physics, time.perf_counter() - start))
            (a, ta), (b, tb) = row
            print(
                f"{name:8s} {a.z0_expected:9.2f} {b.z0_expected:9.2f} "
                f"{a.mu_up_expected.median:11.3f} {b.mu_up_expected.median:10.3f} "
                f"{ta:8.1f} {tb:8.1f}"
            )


def toys(n: int) -> None:
    """Median toy CLs at the asymptotic limit, toys fitted with scipy and with MINUIT."""
    from hepclf.physics.inference import model_of, numpy_backend
    from hepclf.physics.toys import cls_band

    def counting(signal: float, background: float) -> PhysicsResult:
        k = 4000
        sample = np.repeat([0, 1], k)
        weight = np.where(sample == 0, signal / k, background / k)
        events = EvaluatedEvents(np.full(2 * k, 0.9), weight, sample, ["ttH", "ttbar"], ["ttH"])
        binning = {"edges": [0.0, 1.0], "min_background_yield": 0.0}
        return physics_result(events, ResultConfig(binning=binning))

    print(f"{'s':>4s} {'b':>5s} {'mu95 asym':>9s} {'fits':>6s} {'toy CLs':>7s} {'s':>5s}")
    for signal, background in ((30.0, 400.0), (3.0, 0.2)):
        result = counting(signal, background)
        limit = result.mu_up_expected.median
        for minuit in (False, True):
            np.random.seed(4)
            start = time.perf_counter()
            with numpy_backend():
                cls = cls_band(model_of(result.workspace), limit, n, minuit)[2]
            print(
                f"{signal:4g} {background:5g} {limit:9.4f} {'minuit' if minuit else 'scipy':>6s} "
                f"{cls:7.3f} {time.perf_counter() - start:5.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=15_000, help="test events per process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--multiclass", action="store_true", help="single vs per-node channels")
    parser.add_argument("--models", default="linear,xgb,dnn")
    parser.add_argument("--toys", type=int, default=0, help="toy CLs: scipy vs MINUIT fits")
    args = parser.parse_args()
    if args.toys:
        toys(args.toys)
        return
    if args.multiclass:
        multiclass(args.events, args.models.split(","))
        return
    rng = np.random.default_rng(args.seed)
    config = ResultConfig(systematics={"normsys": {"ttbar": 0.05}})
    ours = theirs = 0.0
    worst = 0.0
    print(f"{'model':8s} {'bins':>4s} {'Z0':>6s} {'mu95':>7s} {'hepclf s':>9s} {'pyhf s':>7s}")
    for name, separation in MODELS.items():
        events = toy_scores(separation, args.events, rng)
        start = time.perf_counter()
        result = physics_result(events, config)
        seconds = time.perf_counter() - start
        workspace = pyhf.Workspace(result.workspace)
        model = workspace.model()
        start = time.perf_counter()
        _, band = pyhf.infer.intervals.upper_limits.upper_limit(workspace.data(model), model)
        reference = time.perf_counter() - start
        mine = [result.mu_up_expected.band[k] for k in ("-2", "-1", "median", "+1", "+2")]
        worst = max(worst, max(abs(m / float(t) - 1.0) for m, t in zip(mine, band, strict=True)))
        ours, theirs = ours + seconds, theirs + reference
        print(
            f"{name:8s} {result.templates.n_bins:4d} {result.z0_expected:6.2f} "
            f"{result.mu_up_expected.median:7.3f} {seconds:9.2f} {reference:7.2f}"
        )
    print(f"six models: hepclf {ours:.1f} s (Z0, limit band, binning, workspace)")
    print(f"pyhf upper_limit alone: {theirs:.1f} s; ratio {theirs / ours:.1f}x")
    print(f"largest relative difference of the limit band: {worst:.1e}")


if __name__ == "__main__":
    main()
