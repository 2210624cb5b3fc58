"""`hepclf score` start-up: seconds from the command to the first scored chunk, per model.

Trains small linear and xgb models on generated demo data, saves them as model folders,
then runs ``hepclf score --model FOLDER`` on a 5,000-event file ``--repeat`` times each and
prints the best wall time of the whole command, its CPU time (on a busy machine the wall
time follows the load) and the time of its imports (``-X importtime``), against the goal
of under 5 s for tree models.

    .venv/bin/python benchmarks/startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hepclf.config import parse_pipeline
from hepclf.ingest.demo_data import write_demo_data
from hepclf.ingest.run import read_samples
from hepclf.models import build_model
from hepclf.training.bundle import ModelBundle
from hepclf.training.normalize import Normalizer

GOAL_S = 5.0
REPO = Path(__file__).resolve().parents[1]
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|")


def _models(folder: Path, data: Path) -> dict[str, Path]:
    sys.path.insert(0, str(REPO))
    from tests.conftest import demo_pipeline_dict

    config = parse_pipeline(demo_pipeline_dict(data))
    table = read_samples(config)
    normalizer = Normalizer.fit(table.X, config.normalization)
    folders = {}
    for name, params in (("linear", {}), ("xgb", {"n_estimators": 50})):
        model = build_model(name, params, 1).fit(normalizer.transform(table.X), table.label)
        bundle = ModelBundle(name, list(config.features), normalizer, model)
        folders[name] = bundle.save(folder / name)
    return folders


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _score(model: Path, data: Path, out: Path) -> tuple[float, float, float]:
    """Wall seconds of the command, its CPU seconds, and the seconds its imports took."""
    command = [sys.executable, "-X", "importtime", "-m", "hepclf", "score", "--model", str(model)]
    command += [str(data / "signal.root"), "--out", str(out), "--overwrite"]
    start, cpu = time.perf_counter(), _cpu_of_children()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds, cpu = time.perf_counter() - start, _cpu_of_children() - cpu
    imports = sum(int(m.group(1)) for m in IMPORT_LINE.finditer(done.stderr)) / 1e6
    return seconds, cpu, imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per model; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_demo_data(data, events=5000, seed=3)
        folders = _models(Path(tmp) / "models", data)
        for name, folder in folders.items():
            runs = [_score(folder, data, Path(tmp) / "out") for _ in range(args.repeat)]
            seconds, cpu, imports = min(runs)
            print(
                f"hepclf score --model <{name} folder> (5,000 events): {seconds:.2f} s in total "
                f"({cpu:.2f} CPU seconds, roughly the wall time when idle), {imports:.2f} s of "
                f"it imports (best of {args.repeat}; goal < {GOAL_S:g} s)"
            )


if __name__ == "__main__":
    main()
