"""Multi-class and category quality: the figures the README's two sections quote.

``categories``: TMVA's category toy (``../shared/data/toy_sigbkg_categ_offset.root``, the
shapes shift between |eta| <= 1.3 and > 1.3) with ``pipelines/categories.yaml``: each model
once per category (combined test AUC, every event scored by its own category's model) and
once inclusive, beside scikit-learn's LDA per category (the optimum for the toy's Gaussian
classes) on the same split.

``threeclass``: the demo generator's ttH / ttbb / ttlf (``--events`` per process): macro
one-vs-rest test AUC of each hepclf model (``pipelines/multiclass.yaml`` settings) beside
scikit-learn's ``HistGradientBoostingClassifier()`` trained on the same training events.

Run: .venv/bin/python benchmarks/multiclass.py categories threeclass [--models linear,xgb]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import HistGradientBoostingClassifier

from hepclf.config import load_pipeline, parse_pipeline
from hepclf.evaluation import roc_auc
from hepclf.evaluation.multiclass import one_vs_rest_rocs
from hepclf.ingest import ingest
from hepclf.ingest.demo_data import write_demo_data
from hepclf.training.fit import train_model
from hepclf.training.prepare import PreparedData, prepare

REPO = Path(__file__).resolve().parents[1]


def categories(models: list[str]) -> None:
    config = load_pipeline(REPO / "pipelines" / "categories.yaml")
    data = prepare(config, ingest(config, use_cache=False))
    inclusive = config.model_copy(update={"categories": None})
    print(f"TMVA category toy, {len(data.table):,} events, test {len(data.split.test):,}")
    print(f"  LDA per category (scikit-learn): {_lda_per_category(data):.4f}")
    for name in models:
        start = time.perf_counter()
        per = train_model(name, {}, config, data).report
        alone = train_model(name, {}, inclusive, data).report
        parts = " / ".join(f"{c} {r.auc_test:.4f}" for c, r in per.per_category.items())
        print(
            f"  {name:6s} per category {per.auc_test:.4f} ({parts}); inclusive "
            f"{alone.auc_test:.4f}  [{time.perf_counter() - start:.0f} s]"
        )


def _lda_per_category(data: PreparedData) -> float:
    table, split = data.table, data.split
    assert table.category is not None
    test = split.test
    score = np.empty(len(test))
    for k in np.unique(table.category):
        train = np.concatenate([split.train, split.validation])
        train = train[table.category[train] == k]
        rows = table.category[test] == k
        lda = LinearDiscriminantAnalysis().fit(table.X[train], table.label[train])
        score[rows] = lda.decision_function(table.X[test[rows]])
    return roc_auc(table.label[test], score, table.weight[test])


def threeclass(models: list[str], events: int) -> None:
    processes = ["ttH", "ttbb", "ttlf"]
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(tmp, events=events, seed=7, processes=processes)
        raw = yaml.safe_load((REPO / "pipelines" / "multiclass.yaml").read_text())
        raw.pop("result")
        raw["samples"] = [
            {**s, "files": [f"{tmp}/{s['name']}.root"]}
            for s in raw["samples"]
            if s["name"] in processes
        ]
        raw["classes"] = processes
        config = parse_pipeline(raw, base_dir=Path(tmp))
        data = prepare(config, ingest(config, use_cache=False))
    X_tr, y_tr, _ = data.part("train")
    X_te, y_te, w_te = data.part("test")
    print(f"demo ttH/ttbb/ttlf, {events:,} events each; macro one-vs-rest test AUC")
    hgb = HistGradientBoostingClassifier(random_state=0).fit(X_tr, y_tr)
    print(f"  HistGradientBoostingClassifier(): {_macro(y_te, hgb.predict_proba(X_te), w_te):.4f}")
    for name in models:
        start = time.perf_counter()
        report = train_model(name, {}, config, data).report
        per = ", ".join(f"{c} {a:.3f}" for c, a in report.auc_test_per_class.items())
        print(f"  {name:6s} {report.auc_test:.4f} ({per})  [{time.perf_counter() - start:.0f} s]")


def _macro(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> float:
    # hepclf's ROC: scikit-learn's roc_auc_score refuses the demo's negative weights
    return float(np.mean([r.auc for r in one_vs_rest_rocs(y, proba, w, proba.shape[1])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+", choices=["categories", "threeclass"])
    parser.add_argument("--models", default="linear,xgb,rf,bdt,dnn")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*negative weights.*")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if "categories" in args.problems:
        categories(models)
    if "threeclass" in args.problems:
        threeclass(models, args.events)


if __name__ == "__main__":
    main()
