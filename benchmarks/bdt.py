"""hepclf's TMVA-style BDT against scikit-learn's AdaBoost on HIGGS-like events.

Prints both fit times, the speed-up and both test AUCs (goal: >= 5x faster at |dAUC| <=
0.005), then the prediction speed of the default 850-tree forest (goal >= 1M events/s on 2
cores) along every path measured interleaved in one process on the same events: hepclf's
branch-free kernel compiled by numba (the path the model uses), the maintained libraries
that could replace it (tl2cgen's compiled library with quantised, branch-annotated cuts;
xgboost's predictor on the same trees; ONNX Runtime on hepclf's exported graph) and
scikit-learn's ``AdaBoostClassifier``, each with events per wall and per CPU second, its
rate relative to the kernel and its largest vote difference to the kernel.
Run: .venv/bin/python benchmarks/bdt.py [--events 10000] [--predict-events 1000000] [--seed 1]
     [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import AdaBoostClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from hepclf.models import build_model


def _pair_mass2(pt1, eta1, phi1, pt2, eta2, phi2):
    """Squared invariant mass of two massless objects."""
    return 2 * pt1 * pt2 * (np.cosh(eta1 - eta2) - np.cos(phi1 - phi2))


def higgs_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Toy lepton + MET + 4-jet events shaped like the UCI HIGGS set: 21 low-level, 7 masses.

    In signal, the second object of each decay pair gets the pT that puts the pair on a
    resonance (W -> jj, h -> bb, W -> l nu), so the masses separate but only as non-linear
    functions of the low-level kinematics; background pairs are mostly non-resonant.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y == 1

    def obj(scale):
        return rng.exponential(scale, n) + 20, rng.normal(0, 1.2, n), rng.uniform(-np.pi, np.pi, n)

    def partner(pt1, eta1, phi1, mass, resonant, scale):
        """Second object of a pair: on the mass peak where ``resonant``, independent otherwise."""
        pt2, eta2, phi2 = obj(scale)
        m2 = (mass * rng.normal(1, 0.12, n)) ** 2
        on_peak = m2 / np.maximum(_pair_mass2(pt1, eta1, phi1, 1.0, eta2, phi2), 1e-3)
        pt2 = np.where(resonant, np.clip(on_peak, 20, 600), pt2)
        return pt2 * rng.normal(1, 0.08, n), eta2, phi2

    lep = obj(40)
    met = partner(*lep, 80.4, rng.random(n) < np.where(signal, 0.9, 0.6), 40)
    met = (met[0], lep[1], met[2])  # the neutrino's eta is unmeasured: take the lepton's
    j1 = obj(60)
    j2 = partner(*j1, 80.4, rng.random(n) < np.where(signal, 0.8, 0.35), 50)
    b1 = obj(70)
    b2 = partner(*b1, 125.0, rng.random(n) < np.where(signal, 0.75, 0.1), 50)
    jets = [j1, j2, b1, b2]
    btag = [
        rng.random(n) < np.where(signal, p_s, p_b)
        for p_s, p_b in [(0.2, 0.2), (0.2, 0.2), (0.75, 0.35), (0.75, 0.35)]
    ]

    def mass(*objects):
        m2 = sum(_pair_mass2(*a, *b) for i, a in enumerate(objects) for b in objects[i + 1 :])
        return np.sqrt(m2)

    high = [
        mass(j1, j2),
        mass(j1, j2, b1),
        mass(lep, met),
        mass(lep, met, b2),
        mass(b1, b2),
        mass(j1, j2, b1, b2),
        mass(lep, met, j1, j2, b1, b2),
    ]
    # as in HIGGS, jets are listed by decreasing pT, so the pairing is not given away
    order = np.argsort(-np.stack([j[0] for j in jets]), axis=0)
    jet_cols = np.stack([np.stack([*j, t]) for j, t in zip(jets, btag, strict=True)])
    jet_cols = np.take_along_axis(jet_cols, order[:, None, :], axis=0).transpose(2, 0, 1)
    low = np.column_stack([*lep, met[0], met[2], jet_cols.reshape(n, -1)])
    return np.column_stack([low, np.log(np.column_stack(high))]).astype(np.float32), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--predict-events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    X, y = higgs_like(args.events, args.seed)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=args.seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    ours = build_model("bdt", None, seed=args.seed)
    start = time.perf_counter()
    ours.fit(X_train, y_train)
    t_ours = time.perf_counter() - start
    start, start_cpu = time.perf_counter(), time.process_time()
    auc_ours = roc_auc_score(y_test, ours.predict_proba(X_test)[:, 1])  # numba compiles here
    t_compile = time.perf_counter() - start, time.process_time() - start_cpu

    # scikit-learn's discrete AdaBoost (SAMME) with learning_rate=beta gives the same
    # alpha = beta*ln((1-err)/err) and reweighting as TMVA's AdaBoost
    beta = ours.beta
    theirs = AdaBoostClassifier(
        estimator=DecisionTreeClassifier(max_depth=ours.max_depth),
        n_estimators=ours.n_trees,
        learning_rate=beta,
        random_state=args.seed,
    )
    start = time.perf_counter()
    theirs.fit(X_train, y_train)
    t_theirs = time.perf_counter() - start
    auc_theirs = roc_auc_score(y_test, theirs.decision_function(X_test))

    print(
        f"events: {args.events} ({len(y_train)} train / {len(y_test)} test), {X.shape[1]} features"
    )
    print(f"hepclf bdt      fit {t_ours:7.2f} s   test AUC {auc_ours:.4f}")
    print(f"sklearn AdaBoost fit {t_theirs:7.2f} s   test AUC {auc_theirs:.4f}")
    print(f"speed-up {t_theirs / t_ours:.1f}x   AUC difference {auc_ours - auc_theirs:+.4f}")
    X_predict = scaler.transform(higgs_like(args.predict_events, args.seed + 1)[0])
    print(
        f"first bdt prediction in this process (numba compiles the kernel): "
        f"{t_compile[0]:.1f} s, {t_compile[1]:.1f} CPU s"
    )
    predict_speed(ours, theirs, X_train, X_predict, args.rounds)


def votes_per_leaf(model) -> np.ndarray:
    """Two-class vote of every leaf, alpha * (+-1): (n_trees, 2**depth), double."""
    return model.alpha_[:, None] * (2 * model.leaf_class_ - 1)


def treelite_forest(model):
    """The forest as a treelite model (``model_builder``), cuts and votes in double.

    A node with threshold +inf (no split: everything goes left) becomes its left subtree.
    """
    import treelite.model_builder as mb

    n_trees, n_inner = model.threshold_.shape
    value = votes_per_leaf(model)
    builder = mb.ModelBuilder(
        threshold_type="float64",
        leaf_output_type="float64",
        metadata=mb.Metadata(
            num_feature=model.n_features_in_,
            task_type="kRegressor",
            average_tree_output=False,
            num_target=1,
            num_class=[1],
            leaf_vector_shape=(1, 1),
        ),
        tree_annotation=mb.TreeAnnotation(
            num_tree=n_trees, target_id=[0] * n_trees, class_id=[0] * n_trees
        ),
        postprocessor=mb.PostProcessorFunc(name="identity"),
        base_scores=[0.0],
    )
    for t in range(n_trees):

        def node(h: int, t: int = t) -> int:
            while h < n_inner and not np.isfinite(model.threshold_[t, h]):
                h = 2 * h + 1
            return h

        builder.start_tree()
        stack = [node(0)]
        while stack:
            h = stack.pop()
            builder.start_node(h)
            if h < n_inner:
                left, right = node(2 * h + 1), node(2 * h + 2)
                builder.numerical_test(
                    int(model.feature_[t, h]), float(model.threshold_[t, h]),
                    default_left=True, opname="<", left_child_key=left, right_child_key=right,
                )  # fmt: skip
                stack += [left, right]
            else:
                builder.leaf(float(value[t, h - n_inner]))
            builder.end_node()
        builder.end_tree()
    return builder.commit()


def tl2cgen_predictor(model, X_train: np.ndarray, folder: Path):
    """tl2cgen's library at its fastest settings: quantised cuts, branches annotated with the
    training events, two translation units; the forest in double (exact votes)."""
    import tl2cgen

    forest = treelite_forest(model)
    annotation = folder / "annotation.json"
    tl2cgen.annotate_branch(forest, tl2cgen.DMatrix(X_train.astype(np.float64)), annotation)
    params = {"quantize": 1, "annotate_in": str(annotation), "parallel_comp": 2}
    libpath = folder / "forest.so"
    tl2cgen.export_lib(forest, toolchain="gcc", libpath=libpath, params=params, nthread=2)
    predictor = tl2cgen.Predictor(libpath, nthread=2)
    return lambda x: predictor.predict(tl2cgen.DMatrix(x.astype(np.float64))).reshape(len(x))


def xgboost_predictor(model):
    """The same trees as an xgboost booster (its JSON model format); xgboost sums in float32."""
    import xgboost as xgb

    n_trees, n_inner = model.threshold_.shape
    nodes = np.arange(2 * n_inner + 1)
    inner = nodes < n_inner
    value = votes_per_leaf(model)
    trees = []
    for t in range(n_trees):
        cut = np.where(np.isfinite(model.threshold_[t]), model.threshold_[t], np.finfo("f4").max)
        condition = [float(v) for v in np.concatenate([cut, value[t]]).astype(np.float32)]
        trees.append(
            {
                "id": t,
                "left_children": np.where(inner, 2 * nodes + 1, -1).tolist(),
                "right_children": np.where(inner, 2 * nodes + 2, -1).tolist(),
                "parents": [2147483647, *((nodes[1:] - 1) // 2).tolist()],
                "split_indices": np.where(inner, np.pad(model.feature_[t], (0, n_inner + 1)), 0)
                .astype(int)
                .tolist(),
                "split_conditions": condition,
                "base_weights": condition,
                "split_type": [0] * len(nodes),
                "default_left": [1] * len(nodes),
                "loss_changes": [0.0] * len(nodes),
                "sum_hessian": [1.0] * len(nodes),
                "categories": [],
                "categories_nodes": [],
                "categories_segments": [],
                "categories_sizes": [],
                "tree_param": {
                    "num_deleted": "0",
                    "num_feature": str(model.n_features_in_),
                    "num_nodes": str(len(nodes)),
                    "size_leaf_vector": "1",
                },
            }
        )
    learner = {
        "attributes": {},
        "feature_names": [],
        "feature_types": [],
        "gradient_booster": {
            "name": "gbtree",
            "model": {
                "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(n_trees)},
                "iteration_indptr": list(range(n_trees + 1)),
                "tree_info": [0] * n_trees,
                "trees": trees,
            },
        },
        "learner_model_param": {
            "base_score": "[0E0]",
            "boost_from_average": "0",
            "num_class": "0",
            "num_feature": str(model.n_features_in_),
            "num_target": "1",
        },
        "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
    }
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps({"learner": learner, "version": [3, 0, 0]}).encode()))
    booster.set_param({"nthread": 2})
    return lambda x: booster.inplace_predict(x).astype(np.float64)


def onnx_predictor(model):
    """hepclf's exported ONNX graph of the forest (TreeEnsembleRegressor) in ONNX Runtime,
    all graph optimisations, two threads; the graph outputs the float32 score."""
    import onnxruntime as ort

    from hepclf.scoring.onnx_export.bdt import to_graph

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    graph = to_graph(model, model.n_features_in_)
    session = ort.InferenceSession(
        graph.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    total = model.alpha_.sum()
    return lambda x: (2 * session.run(None, {"x": x})[0][:, 0].astype(np.float64) - 1) * total


def predict_speed(ours, theirs, X_train: np.ndarray, X: np.ndarray, rounds: int) -> None:
    """Every path on the same events, interleaved round by round so that a busy machine
    slows all alike; rates are the best round's, wall clock and per CPU second (on a
    shared machine the CPU rate times the cores is what an idle one would give, for paths
    that spread over all cores)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    small = X[: min(len(X), 50_000)]
    folder = Path(tempfile.mkdtemp(prefix="hepclf-bench-"))
    reference = ours.class_votes(small)
    start = time.perf_counter()
    tl2cgen = tl2cgen_predictor(ours, X_train, folder)
    t_tl2cgen = time.perf_counter() - start
    n_slow = min(len(X), 200_000)
    paths = {  # label: (votes of X, events it scores)
        "hepclf kernel (chosen)": (ours.class_votes, len(X)),
        "tl2cgen quantize+annotate": (tl2cgen, len(X)),
        "xgboost inplace_predict": (xgboost_predictor(ours), len(X)),
        "ONNX Runtime (export)": (onnx_predictor(ours), n_slow),
        "sklearn AdaBoost": (theirs.decision_function, n_slow),
    }
    diff = {
        label: np.abs(predict(small) - reference).max()
        for label, (predict, _) in paths.items()
        if label != "sklearn AdaBoost"
    }
    wall = {label: 0.0 for label in paths}
    cpu = dict(wall)
    for _ in range(rounds):
        for label, (predict, n) in paths.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            predict(X[:n])
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            wall[label] = max(wall[label], n / elapsed)
            cpu[label] = max(cpu[label], n / max(elapsed_cpu, 1e-9))
    cores = os.cpu_count() or 1
    print(
        f"prediction, {len(ours.alpha_)} trees of depth {ours.max_depth}, {cores} cores, "
        f"load average {os.getloadavg()[0]:.1f}, best of {rounds} interleaved rounds "
        f"(tl2cgen library built per model: {t_tl2cgen:.1f} s)"
    )
    kernel = "hepclf kernel (chosen)"
    print(
        f"{'':26} {'events/s':>10} {'events/CPU-s':>13} {'wall x':>7} {'CPU x':>6} "
        f"{'max |vote - kernel|':>19}"
    )
    for label, (_, n) in paths.items():
        gap = f"{diff[label]:19.1e}" if label in diff else " " * 19
        print(
            f"{label:26} {wall[label]:10,.0f} {cpu[label]:13,.0f} "
            f"{wall[label] / wall[kernel]:7.2f} {cpu[label] / cpu[kernel]:6.2f} {gap}   "
            f"({n:,} events)"
        )
    estimate = cpu[kernel] * min(cores, 2)
    print(
        f"goal 1M events/s on 2 cores: kernel measured {wall[kernel]:,.0f}, idle 2-core "
        f"estimate {estimate:,.0f} ({'met' if estimate >= 1e6 else 'NOT met'}); "
        "x = rate relative to the kernel"
    )


if __name__ == "__main__":
    main()
