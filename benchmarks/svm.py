"""hepclf's default SVM (Nystroem + linear SVM) against scikit-learn's exact SVC, HIGGS-like data.

Same events, same C and gamma: test AUC and prediction speed of ``SVM.predict_proba`` and of
``SVC.decision_function``; scikit-learn's ``SVC()`` defaults for reference.
Goal (issue 13): >= 200k events/s at <= 0.005 AUC below the exact SVC. Also: the exact SVM's
ONNX graph (kernel evaluated in blocks) scoring all test events in one ONNX Runtime call, with
the process's peak memory.
Run: .venv/bin/python benchmarks/svm.py [--events 20000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from bdt import higgs_like
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from hepclf.models import build_model


def timed(run) -> tuple[object, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="training (and test) events")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    X, y = higgs_like(2 * args.events, args.seed)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    X_train, y_train, X_test, y_test = (
        X[: args.events],
        y[: args.events],
        X[args.events :],
        y[args.events :],
    )
    print(f"{args.events} training + {args.events} test HIGGS-like events, 28 features")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

    ours = build_model("svm", None, seed=0)
    _, fit_ours = timed(lambda: ours.fit(X_train, y_train))
    many = np.tile(X_test, (10, 1))
    ours.predict_proba(X_test[:100])
    cpu = time.process_time()
    _, t_ours = timed(lambda: ours.predict_proba(many))
    cpu = time.process_time() - cpu
    auc_ours = roc_auc_score(y_test, ours.predict_proba(X_test)[:, 1])

    exact = SVC(C=ours.C, gamma=ours.gamma)
    _, fit_exact = timed(lambda: exact.fit(X_train, y_train))
    few = X_test[:4000]
    _, t_exact = timed(lambda: exact.decision_function(few))
    auc_exact = roc_auc_score(y_test, exact.decision_function(X_test))
    auc_default = roc_auc_score(y_test, SVC().fit(X_train, y_train).decision_function(X_test))

    rows = [
        (f"hepclf svm (Nystroem {ours.n_components})", auc_ours, fit_ours, len(many) / t_ours),
        (
            f"exact SVC, same C/gamma ({len(exact.support_vectors_)} SV)",
            auc_exact,
            fit_exact,
            len(few) / t_exact,
        ),
    ]
    for name, auc, fit, rate in rows:
        print(f"{name:42s} AUC {auc:.4f}  fit {fit:6.1f} s  predict {rate:10.0f} events/s")
    print(f"{'scikit-learn SVC() defaults':42s} AUC {auc_default:.4f}")
    print(f"hepclf svm: {len(many) / cpu:.0f} events per CPU-second (what one idle core gives)")
    print(
        f"AUC hepclf - exact: {auc_ours - auc_exact:+.4f}; prediction speed-up "
        f"{rows[0][3] / rows[1][3]:.0f}x"
    )
    onnx_exact(X_train, y_train, X_test)


def onnx_exact(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> None:
    """One ONNX Runtime call on all test events for the exact SVM; peak memory after it."""
    import resource

    import onnxruntime as ort

    from hepclf.scoring.onnx_export.svm import to_graph

    model = build_model("svm", {"approximate": False}, seed=0).fit(X_train, y_train)
    graph = to_graph(model, X_train.shape[1])
    session = ort.InferenceSession(
        graph.model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    scores, seconds = timed(lambda: session.run([graph.output], {"x": X_test})[0])
    diff = np.abs(scores[:, 0] - model.predict_proba(X_test)[:, 1]).max()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"exact SVM as ONNX ({len(model.support_vectors_)} SV): {len(X_test)} events in one call, "
        f"{seconds:.1f} s, peak RSS {peak:.0f} MB, max |diff| to Python {diff:.1e}"
    )


if __name__ == "__main__":
    main()
