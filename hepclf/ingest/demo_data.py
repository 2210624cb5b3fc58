"""Synthetic signal and background ROOT files for the demo and the tests.

A ttH(bb)-like signal against a ttbar-like background: the signal has more jets,
more b-tagged jets, harder leptons and a more central topology, with overlapping
distributions so that classifiers separate them well but not perfectly. The files
are real TTrees written with uproot in chunks, so a million events need little memory.

For multi-class work, ``PROCESSES`` holds ttH and the tt+jets backgrounds of a ttH(bb)
analysis split by the flavour of the extra jets (ttbb, ttcc, ttlf): they differ above all
in their b- and c-jet content, so the b-tag discriminant separates them, with a harder
ttH spectrum on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from hepclf.runtime.errors import ConfigError
from hepclf.runtime.files import atomic_path

TREE = "Events"
RUNS = "Runs"  # one entry per file: the generated events' count and sum of weights
CHUNK = 100_000


@dataclass(frozen=True)
class ProcessShape:
    """Parameters that make one process look like itself."""

    mean_jets: float
    jet_pt_scale: float
    b_fraction: float
    lep_pt_scale: float
    eta_width: float
    met_scale: float
    negative_weight_fraction: float
    c_fraction: float = 0.0


SIGNAL = ProcessShape(6.2, 62.0, 0.45, 48.0, 1.05, 55.0, 0.02)
BACKGROUND = ProcessShape(4.8, 50.0, 0.27, 40.0, 1.30, 48.0, 0.10)
PROCESSES = {
    "ttH": ProcessShape(6.6, 66.0, 0.50, 50.0, 1.00, 58.0, 0.02, c_fraction=0.05),
    "ttbb": ProcessShape(5.8, 54.0, 0.46, 42.0, 1.25, 50.0, 0.05, c_fraction=0.05),
    "ttcc": ProcessShape(5.4, 52.0, 0.16, 41.0, 1.25, 49.0, 0.05, c_fraction=0.40),
    "ttlf": ProcessShape(4.9, 49.0, 0.14, 40.0, 1.30, 48.0, 0.05, c_fraction=0.04),
}


def _chunk(shape: ProcessShape, n: int, first_event: int, rng: np.random.Generator) -> dict:
    n_jet = np.clip(rng.poisson(shape.mean_jets, n), 1, 15).astype(np.int32)
    total = int(n_jet.sum())
    pt = (25.0 + rng.exponential(shape.jet_pt_scale, total)).astype(np.float32)
    jet_pt = ak.sort(ak.unflatten(pt, n_jet), axis=1, ascending=False)
    jet_eta = ak.unflatten(rng.normal(0.0, shape.eta_width * 1.2, total).astype(np.float32), n_jet)
    jet_phi = ak.unflatten(rng.uniform(-np.pi, np.pi, total).astype(np.float32), n_jet)
    is_b = rng.random(total) < shape.b_fraction
    btag = np.where(is_b, rng.beta(5.0, 1.5, total), rng.beta(1.2, 5.0, total)).astype(np.float32)
    if shape.c_fraction > 0:  # only then: the two-class demo files stay as they were
        is_c = ~is_b & (rng.random(total) < shape.c_fraction / (1.0 - shape.b_fraction))
        btag = np.where(is_c, rng.beta(2.5, 2.5, total), btag).astype(np.float32)
    lep_pt = (20.0 + rng.gamma(2.0, shape.lep_pt_scale / 2.0, n)).astype(np.float32)
    met = np.abs(rng.normal(0.35 * lep_pt, shape.met_scale)).astype(np.float32)
    weight = rng.normal(1.0, 0.05, n) * np.where(
        rng.random(n) < shape.negative_weight_fraction, -1.0, 1.0
    )
    return {
        "event": np.arange(first_event, first_event + n, dtype=np.int64),
        "lep_pt": lep_pt,
        "lep_eta": rng.normal(0.0, shape.eta_width, n).astype(np.float32),
        "lep_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "met": met,
        "genWeight": weight.astype(np.float32),
        "Jet": ak.zip(
            {"pt": jet_pt, "eta": jet_eta, "phi": jet_phi, "btag": ak.unflatten(btag, n_jet)}
        ),
    }


def write_process(path: Path, shape: ProcessShape, events: int, seed: int) -> Path:
    """Write one process as a TTree ``Events``, chunk by chunk, atomically, and beside it a
    TTree ``Runs`` with the generated count and sum of weights, as NanoAOD keeps them."""
    rng = np.random.default_rng(seed)
    sum_w = sum_w2 = 0.0
    with atomic_path(path) as tmp, uproot.recreate(tmp) as file:
        tree = None
        for start in range(0, events, CHUNK):
            data = _chunk(shape, min(CHUNK, events - start), start, rng)
            if tree is None:
                types = {
                    k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                    for k, v in data.items()
                }
                tree = file.mktree(TREE, types, title="hepclf demo events")
            tree.extend(data)
            weight = data["genWeight"].astype(np.float64)
            sum_w += float(weight.sum())
            sum_w2 += float((weight**2).sum())
        runs = {
            "genEventCount": np.array([events], np.int64),
            "genEventSumw": np.array([sum_w]),
            "genEventSumw2": np.array([sum_w2]),
        }
        file.mktree(RUNS, {k: v.dtype for k, v in runs.items()}).extend(runs)  # a TTree
    return path


# ROOT's category toy (tutorials' toy_sigbkg_categ_offset.root): var1..var4 Gaussian with
# correlation 0.4, eta uniform in [-2.5, 2.5], means shifted between |eta| <= 1.3 and above
CATEGORY_MEANS = {
    "TreeS": ((-0.6, -0.5, -0.3, 0.1), (1.0, 1.1, 1.3, 1.7)),
    "TreeB": ((-1.0, -1.1, -1.3, -1.4), (0.6, 0.5, 0.3, 0.2)),
}


def write_category_toy(path: Path, events: int, seed: int) -> Path:
    """Trees ``TreeS`` and ``TreeB`` whose shapes depend on the ``|eta| <= 1.3`` category,
    like ROOT's toy for TMVA's Category method (``pipelines/categories.yaml``)."""
    rng = np.random.default_rng(seed)
    covariance = np.full((4, 4), 0.4) + 0.6 * np.eye(4)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as file:
        for tree, (central, forward) in CATEGORY_MEANS.items():
            eta = rng.uniform(-2.5, 2.5, events)
            means = np.where((np.abs(eta) <= 1.3)[:, None], central, forward)
            x = means + rng.multivariate_normal(np.zeros(4), covariance, events)
            data = {f"var{i + 1}": x[:, i].astype(np.float32) for i in range(4)}
            data["eta"] = eta.astype(np.float32)
            file.mktree(tree, {k: v.dtype for k, v in data.items()}).extend(data)
    return path


def write_varied(path: Path, shape: ProcessShape, events: int, seed: int, jet_scale: float) -> Path:
    """The same events as :func:`write_process` with the same seed, every jet's pt scaled by
    ``jet_scale`` (a jet-energy-scale variation, e.g. 1.05 for +5 %)."""
    rng = np.random.default_rng(seed)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as file:
        tree = None
        for start in range(0, events, CHUNK):
            data = _chunk(shape, min(CHUNK, events - start), start, rng)
            data["Jet"] = ak.with_field(data["Jet"], data["Jet"].pt * np.float32(jet_scale), "pt")
            if tree is None:
                types = {
                    k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                    for k, v in data.items()
                }
                tree = file.mktree(TREE, types, title="hepclf demo events, JES varied")
            tree.extend(data)
    return path


SIGNAL_SCALE = 0.05
"""ttH in the pseudo-data: 5 % of its simulated events (``scale: 0.05`` in the pipeline)."""


def write_pseudo_data(path: Path, processes: list[str], events: int, seed: int) -> Path:
    """Recorded-data stand-in: per process a Poisson number of new events around its
    expected yield (the mean weight times ``events``, ttH times :data:`SIGNAL_SCALE`),
    weights dropped, one tree."""
    rng = np.random.default_rng(seed)
    parts = []
    for name in processes:
        shape = PROCESSES[name]
        mean_weight = (1.0 - 2.0 * shape.negative_weight_fraction) * (
            SIGNAL_SCALE if name == "ttH" else 1.0
        )
        n = int(rng.poisson(events * mean_weight))
        parts.append(_chunk(shape, n, 0, rng))
    data = {
        k: ak.concatenate([p[k] for p in parts])
        if k == "Jet"
        else np.concatenate([p[k] for p in parts])
        for k in parts[0]
        if k != "genWeight"
    }
    data["event"] = np.arange(len(data["lep_pt"]), dtype=np.int64)
    types = {k: (v.type.content if k == "Jet" else v.dtype) for k, v in data.items()}
    with atomic_path(path) as tmp, uproot.recreate(tmp) as file:
        file.mktree(TREE, types, title="hepclf demo pseudo-data").extend(data)
    return path


def write_demo_data(
    out: str | Path,
    events: int = 30_000,
    seed: int = 1,
    processes: list[str] | None = None,
    categories: bool = False,
    jes: float | None = None,
    data: bool = False,
) -> dict[str, Path]:
    """Write ``signal.root`` and ``background.root`` with ``events`` entries each.

    With ``processes`` (names from ``PROCESSES``), write ``<process>.root`` for each instead:
    ``jes`` (e.g. 0.05) adds ``<process>_jesUp.root``/``_jesDown.root`` with jet pt scaled
    by 1 ± jes, ``data`` a ``data.root`` of pseudo-data. The default files stay the same.
    With ``categories``, ``categories.root`` instead (see :func:`write_category_toy`).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if categories:
        return {"categories": write_category_toy(out / "categories.root", events, seed)}
    if processes:
        unknown = [p for p in processes if p not in PROCESSES]
        if unknown:
            raise ConfigError(
                f"unknown demo process(es) {unknown}; choose from {', '.join(PROCESSES)}"
            )
        paths = {
            name: write_process(out / f"{name}.root", PROCESSES[name], events, seed + 1000 * i)
            for i, name in enumerate(processes)
        }
        for i, name in enumerate(processes if jes else []):
            for side, factor in (("Up", 1.0 + jes), ("Down", 1.0 - jes)):  # type: ignore[operator]
                path = out / f"{name}_jes{side}.root"
                paths[f"{name}_jes{side}"] = write_varied(
                    path, PROCESSES[name], events, seed + 1000 * i, factor
                )
        if data:
            paths["data"] = write_pseudo_data(out / "data.root", processes, events, seed + 7)
        return paths
    return {
        "signal": write_process(out / "signal.root", SIGNAL, events, seed),
        "background": write_process(out / "background.root", BACKGROUND, events, seed + 1000),
    }
