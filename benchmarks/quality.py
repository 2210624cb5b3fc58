"""Test AUC of every hepclf default beside the library defaults a notebook user would type.

All models are trained and tested on the same random 50/50 split of the same events in one
run: hepclf's bdt, xgb, rf, svm, linear (and dnn with ``--models``), scikit-learn's
HistGradientBoosting, RandomForest, SVC and LDA defaults, AdaBoost with TMVA's settings (850
depth-3 trees, learning rate 0.5; only up to 50k training events unless asked for), and
xgboost's defaults. Inputs are standardised on the training half for every model (SVC needs
it, trees do not care). SVC
trains on a stratified subsample of at most ``--svc-max`` training events (its fit is
quadratic in events; the table says when it was subsampled). hepclf models also report the
TMVA-style KS overtraining flag on train vs test scores.

Data (``--data``; none is hepclf's demo generator, on which no default was chosen):
  resonance  VBF H->tautau-like events, 28 features (generator below)
  higgs      the HIGGS-like lepton + 4-jet events of benchmarks/bdt.py, 28 features
  tmva       ../shared/data/tmva_class_example.root (6000 + 6000 events, 4 features;
             ``--events`` is ignored)

``--kfold K`` reports out-of-fold AUCs of all events instead (hepclf fold ensembles, the
library defaults trained on the same folds).

Run: .venv/bin/python benchmarks/quality.py --data resonance higgs tmva --events 20000 [200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    AdaBoostClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bdt import higgs_like

from hepclf.evaluation import evaluate_classifier
from hepclf.models import build_model

HEPCLF = ("xgb", "bdt", "rf", "svm", "linear")
ADABOOST_MAX = 50_000
"""scikit-learn's AdaBoost (850 trees) runs by default only up to this many training events."""
COUNTERPART = {
    "xgb": "xgboost",
    "bdt": "sk-AdaBoost",
    "rf": "sk-RandomForest",
    "svm": "sk-SVC",
    "linear": "sk-LDA",
    "dnn": "sk-HistGB",
}
TMVA_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tmva_class_example.root"


def _four(rng: np.random.Generator, n: int, pt_scale: float, eta_width: float) -> np.ndarray:
    """Massless objects (pt, eta, phi) with an exponential pt spectrum above 20 GeV."""
    return np.stack(
        [
            rng.exponential(pt_scale, n) + 20.0,
            rng.normal(0.0, eta_width, n),
            rng.uniform(-np.pi, np.pi, n),
        ]
    )


def _mass(*objects: np.ndarray) -> np.ndarray:
    """Invariant mass of massless (pt, eta, phi) objects."""
    px = sum(o[0] * np.cos(o[2]) for o in objects)
    py = sum(o[0] * np.sin(o[2]) for o in objects)
    pz = sum(o[0] * np.sinh(o[1]) for o in objects)
    e = sum(o[0] * np.cosh(o[1]) for o in objects)
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def resonance_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """VBF H -> tau tau over Z -> tau tau + jets: 28 features, 19 low level and 9 derived.

    Signal: two forward jets far apart in eta with a large dijet mass, a di-tau system at
    125 GeV (visible mass smeared by the neutrinos), little central jet activity. Background:
    a mixture of Z -> tau tau (91 GeV) with central QCD jets, and fake taus with flat mass.
    The separating power lies in non-linear combinations (m_jj, delta eta, centrality,
    collinear mass), so linear models fall well behind trees and networks.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = y == 1
    fake = (~s) & (rng.random(n) < 0.3)
    j1 = _four(rng, n, 70.0, 2.6)
    j2 = _four(rng, n, 45.0, 2.6)
    # VBF topology: jets in opposite hemispheres with a wide gap for half of the signal
    # and for a tenth of the background (QCD with two forward jets)
    vbf = rng.random(n) < np.where(s, 0.5, 0.1)
    gap = rng.uniform(2.0, 5.0, n)
    centre = rng.normal(0.0, 0.6, n)
    side = rng.choice([-1.0, 1.0], n)
    j1[1] = np.where(vbf, centre + side * gap / 2, j1[1])
    j2[1] = np.where(vbf, centre - side * gap / 2, j2[1])
    j3 = _four(rng, n, np.where(s, 15.0, 30.0).mean(), 2.0)
    j3[0] = np.where(s, rng.exponential(12.0, n), rng.exponential(30.0, n)) + 20.0
    # the tau pair: boost along the jets' centre for signal, central for background
    mass = np.where(s, 125.0, np.where(fake, rng.uniform(40, 200, n), 91.2))
    mass = mass * rng.normal(1.0, 0.15, n)
    t1 = _four(rng, n, 45.0, 1.1)
    t1[1] = np.where(vbf, centre + rng.normal(0, 0.8, n), t1[1])
    t2 = _four(rng, n, 35.0, 1.1)
    on_peak = (mass / np.maximum(_mass(t1, np.stack([np.ones(n), t2[1], t2[2]])), 1e-3)) ** 2
    t2[0] = np.where(rng.random(n) < 0.9, np.clip(on_peak, 20.0, 500.0), t2[0])
    # neutrinos take a random share of each tau: visible taus and MET
    share1, share2 = rng.beta(3, 2, n), rng.beta(3, 2, n)
    nu = (1 - share1) * t1[0], (1 - share2) * t2[0]
    met_x = nu[0] * np.cos(t1[2]) + nu[1] * np.cos(t2[2]) + rng.normal(0, 12, n)
    met_y = nu[0] * np.sin(t1[2]) + nu[1] * np.sin(t2[2]) + rng.normal(0, 12, n)
    v1 = np.stack([share1 * t1[0], t1[1], t1[2]])
    v2 = np.stack([share2 * t2[0], t2[1], t2[2]])
    v1[0] *= np.where(fake, rng.uniform(0.5, 1.5, n), 1.0)
    met = np.hypot(met_x, met_y)
    met_phi = np.arctan2(met_y, met_x)
    deta = np.abs(j1[1] - j2[1])
    mjj = _mass(j1, j2)
    centrality = np.exp(-4 / deta.clip(0.1) ** 2 * ((v1[1] + v2[1]) / 2 - (j1[1] + j2[1]) / 2) ** 2)
    # collinear approximation of the di-tau mass
    x1 = v1[0] / (v1[0] + np.abs(met) * 0.5 + 1e-3)
    x2 = v2[0] / (v2[0] + np.abs(met) * 0.5 + 1e-3)
    m_vis = _mass(v1, v2)
    m_coll = m_vis / np.sqrt(np.clip(x1 * x2, 0.05, 1.0))
    pt_h = np.hypot(
        v1[0] * np.cos(v1[2]) + v2[0] * np.cos(v2[2]) + met_x,
        v1[0] * np.sin(v1[2]) + v2[0] * np.sin(v2[2]) + met_y,
    )
    dphi_jj = np.abs(np.angle(np.exp(1j * (j1[2] - j2[2]))))
    ht = j1[0] + j2[0] + j3[0]
    dr_tt = np.hypot(v1[1] - v2[1], np.angle(np.exp(1j * (v1[2] - v2[2]))))
    low = np.column_stack([*j1, *j2, *j3, *v1, *v2, met, met_phi, rng.normal(0, 1, (n, 2))])
    high = np.column_stack(
        [
            np.log(mjj + 1),
            deta,
            centrality,
            np.log(m_vis + 1),
            np.log(m_coll + 1),
            pt_h,
            dphi_jj,
            ht,
            dr_tt,
        ]
    )
    X = np.column_stack([low, high]).astype(np.float32)
    return X, y


def tmva_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The TMVA example file: var1..var4, TreeB's weight (signal weight 1)."""
    import uproot

    if not TMVA_FILE.is_file():
        raise SystemExit(f"{TMVA_FILE} not found (../shared/data is needed for --data tmva)")
    with uproot.open(TMVA_FILE) as f:
        parts = []
        for tree, label in (("TreeS", 1), ("TreeB", 0)):
            arrays = f[tree].arrays(library="np")
            X = np.column_stack([arrays[f"var{i}"] for i in range(1, 5)])
            w = arrays.get("weight", np.ones(len(X)))
            parts.append((X, np.full(len(X), label), w))
    X, y, w = (np.concatenate(p) for p in zip(*parts, strict=True))
    return X.astype(np.float32), y, w.astype(np.float64)


def references(seed: int, svc_max: int) -> dict[str, Callable]:
    """Library defaults exactly as typed in a notebook (plus a seed)."""
    import xgboost

    def svc(X, y, w):
        if len(X) > svc_max:
            X, _, y, _, w, _ = train_test_split(
                X, y, w, train_size=svc_max, stratify=y, random_state=seed
            )
        model = SVC(random_state=seed).fit(X, y, sample_weight=w)
        return model.decision_function

    def proba(model):
        def fit(X, y, w):
            fitted = model.fit(X, y, sample_weight=w)
            return lambda Z: fitted.predict_proba(Z)[:, 1]

        return fit

    def lda(X, y, w):  # LDA takes no weights; the TMVA example weights are mild
        model = LinearDiscriminantAnalysis().fit(X, y)
        return lambda Z: model.decision_function(Z)

    adaboost = AdaBoostClassifier(  # TMVA's settings, as benchmarks/bdt.py compares them
        estimator=DecisionTreeClassifier(max_depth=3),
        n_estimators=850,
        learning_rate=0.5,
        random_state=seed,
    )
    return {
        "sk-AdaBoost": proba(adaboost),
        "sk-HistGB": proba(HistGradientBoostingClassifier(random_state=seed)),
        "sk-RandomForest": proba(RandomForestClassifier(random_state=seed, n_jobs=-1)),
        "sk-SVC": svc,
        "sk-LDA": lda,
        "xgboost": proba(xgboost.XGBClassifier(random_state=seed)),
    }


def variant(spec: str, params: dict[str, dict]) -> tuple[str, dict]:
    """``xgb`` or ``xgb:refit=true,max_depth=6``: a model and its parameters (``--param``
    overrides, then the variant's), so variants of one model compare in one run."""
    import yaml

    name, _, extra = spec.partition(":")
    settings = dict(params.get(name) or {})
    for item in filter(None, extra.split(",")):
        key, value = item.split("=", 1)
        settings[key] = yaml.safe_load(value)
    return name, settings


def run(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    models: list[str],
    seed: int,
    svc_max: int,
    params: dict[str, dict],
    chosen: list[str] | None = None,
    tune_s: float = 0.0,
) -> list[tuple[str, float, float, str]]:
    """(name, test AUC, fit seconds, note) for every model on one split; with ``tune_s``
    each hepclf model is also tuned for that long (3-fold CV on the training half only)
    and refitted with the best parameters."""
    X_tr, X_te, y_tr, y_te, w_tr, w_te = train_test_split(
        X, y, w, test_size=0.5, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    rows = []
    for spec in models:
        name, settings = variant(spec, params)
        model = build_model(name, settings, seed=seed)
        start = time.perf_counter()
        model.fit(X_tr, y_tr, w_tr)
        seconds = time.perf_counter() - start
        s_te, s_tr = model.predict_proba(X_te)[:, 1], model.predict_proba(X_tr)[:, 1]
        report = evaluate_classifier(y_te, s_te, w_te, y_tr, s_tr, w_tr)
        flag = "KS flag" if report.overtrained else ""
        rows.append((f"hepclf {spec}", report.auc_test, seconds, flag))
        print(f"  hepclf {spec}: {report.auc_test:.4f} ({seconds:.1f} s) {flag}", flush=True)
        if tune_s:
            rows.append(tuned(name, params.get(name) or {}, X_tr, y_tr, w_tr, X_te, y_te, w_te,
                              seed, tune_s))  # fmt: skip
    for name, fit in references(seed, svc_max).items():
        if chosen is not None and name not in chosen:
            continue
        if chosen is None and name == "sk-AdaBoost" and len(X_tr) > ADABOOST_MAX:
            continue  # hours at 10^5 events; ask for it with --references
        start = time.perf_counter()
        score = fit(X_tr, y_tr, w_tr)
        seconds = time.perf_counter() - start
        auc = roc_auc_score(y_te, score(X_te), sample_weight=w_te)
        note = f"trained on {svc_max:,}" if name == "sk-SVC" and len(X_tr) > svc_max else ""
        rows.append((name, auc, seconds, note))
        print(f"  {name}: {auc:.4f} ({seconds:.1f} s) {note}", flush=True)
    return rows


def tuned(name, base, X_tr, y_tr, w_tr, X_te, y_te, w_te, seed, tune_s):
    """Tune ``name`` on the training half for ``tune_s`` seconds, refit, test once."""
    import tempfile

    from hepclf.training.tuning import tune_model

    with tempfile.TemporaryDirectory() as tmp:
        result = tune_model(
            name, X_tr, y_tr, w_tr, w_tr, base_params=base, folds=3, seed=seed,
            timeout_s=tune_s, storage=Path(tmp) / "study.db",
        )  # fmt: skip
    model = build_model(name, {**base, **result.best_params}, seed=seed)
    start = time.perf_counter()
    model.fit(X_tr, y_tr, w_tr)
    seconds = time.perf_counter() - start
    auc = roc_auc_score(y_te, model.predict_proba(X_te)[:, 1], sample_weight=w_te)
    note = f"{result.n_trials} trials, CV AUC {result.best_value:.4f}"
    print(f"  hepclf {name} tuned {tune_s:g} s: {auc:.4f} ({note}) {result.best_params}")
    return (f"hepclf {name} tuned {tune_s:g} s", auc, seconds, note)


def run_kfold(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    models: list[str],
    seed: int,
    folds: int,
    svc_max: int,
    params: dict[str, dict],
    chosen: list[str] | None = None,
) -> list[tuple[str, float, float, str]]:
    """Out-of-fold AUC of all events: hepclf fold ensembles beside the library defaults
    trained on the same folds (``auc_folds`` mean ± std in the note)."""
    from hepclf.models.folds import FoldEnsemble
    from hepclf.training.crossval import evaluate_folds, fold_scores
    from hepclf.training.split import assign_folds

    X = StandardScaler().fit_transform(X)
    fold = assign_folds(len(X), folds, seed)
    rows = []
    for spec in models:
        name, settings = variant(spec, params)
        ensemble = FoldEnsemble(build_model(name, settings, seed=seed), folds, seed)
        start = time.perf_counter()
        ensemble.fit(X, y, w, fold=fold)
        seconds = time.perf_counter() - start
        cv = evaluate_folds(fold_scores(ensemble, X), y, w)
        note = f"folds {cv.auc_folds_mean:.4f} ± {cv.auc_folds_std:.4f}"
        note += ", KS flag" if cv.report.overtrained else ""
        rows.append((f"hepclf {spec}", cv.report.auc_test, seconds, note))
        print(f"  hepclf {spec}: OOF {cv.report.auc_test:.4f} ({seconds:.1f} s) {note}", flush=True)
    for name, fit in references(seed, svc_max).items():
        if chosen is not None and name not in chosen:
            continue
        if chosen is None and name == "sk-AdaBoost" and len(X) > ADABOOST_MAX:
            continue
        oof = np.empty(len(X))
        start = time.perf_counter()
        for k in range(folds):
            train = fold != k
            oof[~train] = fit(X[train], y[train], w[train])(X[~train])
        seconds = time.perf_counter() - start
        auc = roc_auc_score(y, oof, sample_weight=w)
        rows.append((name, auc, seconds, ""))
        print(f"  {name}: OOF {auc:.4f} ({seconds:.1f} s)", flush=True)
    return rows


def table(title: str, rows: list[tuple[str, float, float, str]]) -> str:
    """Markdown table: AUC, fit time, ratio to the counterpart and to the best library default."""
    auc = {name: a for name, a, _, _ in rows}
    best_ref = max((a for name, a, _, _ in rows if not name.startswith("hepclf")), default=np.nan)
    lines = [
        f"**{title}**",
        "",
        "| model | test AUC | fit s | vs library counterpart | vs best library default | note |",
        "|---|---|---|---|---|---|",
    ]
    for name, a, seconds, note in rows:
        if name.startswith("hepclf"):
            ref = COUNTERPART[name.split()[1].partition(":")[0]]
            versus = f"{a / auc[ref]:.4f} ({ref})" if ref in auc else ""
            best = f"{a / best_ref:.4f}"
        else:
            versus, best = "", ""
        lines.append(f"| {name} | {a:.4f} | {seconds:.1f} | {versus} | {best} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", nargs="+", default=["resonance"], choices=["resonance", "higgs", "tmva"]
    )
    parser.add_argument("--events", nargs="+", type=int, default=[20_000])
    parser.add_argument(
        "--models", nargs="+", default=list(HEPCLF),
        help="hepclf models; MODEL:KEY=VALUE,... adds a variant (e.g. xgb:refit=true)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--svc-max", type=int, default=20_000)
    parser.add_argument(
        "--tune-s", type=float, default=0.0, metavar="S",
        help="also tune each hepclf model for S seconds on the training half (Optuna, 3-fold)",
    )  # fmt: skip
    parser.add_argument(
        "--kfold", type=int, default=0, metavar="K",
        help="instead of the 50/50 split: out-of-fold AUC of all events with K folds",
    )  # fmt: skip
    parser.add_argument(
        "--references", nargs="*", default=None, metavar="NAME",
        help="library defaults to run (default: all; none with an empty list)",
    )  # fmt: skip
    parser.add_argument(
        "--param", action="append", default=[], metavar="MODEL.KEY=VALUE",
        help="override a hepclf parameter (YAML value), e.g. rf.min_samples_leaf=5",
    )  # fmt: skip
    args = parser.parse_args()
    import yaml

    params: dict[str, dict] = {}
    for item in args.param:
        key, value = item.split("=", 1)
        model, field = key.split(".", 1)
        params.setdefault(model, {})[field] = yaml.safe_load(value)

    tables = []
    for data in args.data:
        for events in [0] if data == "tmva" else args.events:
            if data == "tmva":
                X, y, w = tmva_example()
            else:
                X, y = (resonance_like if data == "resonance" else higgs_like)(events, args.seed)
                w = np.ones(len(y))
            how = f"{args.kfold}-fold out-of-fold" if args.kfold else "50/50 split"
            title = f"{data}: {len(y):,} events, {X.shape[1]} features, {how}"
            print(title, flush=True)
            if args.kfold:
                rows = run_kfold(
                    X, y, w, args.models, args.seed, args.kfold, args.svc_max, params,
                    args.references,
                )  # fmt: skip
            else:
                rows = run(
                    X, y, w, args.models, args.seed, args.svc_max, params, args.references,
                    args.tune_s,
                )  # fmt: skip
            tables.append(table(title, rows))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
