"""TMVA-style AdaBoost boosted decision trees, vectorised with numpy.

Features are binned once into ``n_cuts + 1`` quantile bins (TMVA's nCuts grid); each tree
level is then grown from one weighted ``np.bincount`` over (node, class, feature, bin), so
a tree costs a few passes over the binned data instead of a sort per node.

Trees are stored as complete binary trees of depth ``max_depth``: a node that does not
split sends every event left (threshold +inf) and its empty sibling inherits its class, so
prediction walks all trees at once with array indexing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score

from hepclf.models.base import Classifier, check_inputs, two_columns

PREDICT_CHUNK = 1 << 20  # events x trees handled per vectorised prediction step


PRUNE_STEP = 10


class BDTParams(BaseModel):
    """TMVA's recommended BDT settings (NTrees=850, MaxDepth=3, AdaBoostBeta=0.5,
    MinNodeSize=2.5%, nCuts=20, UseBaggedBoost); bagging markedly reduces over-training."""

    model_config = ConfigDict(extra="forbid")

    n_trees: int = Field(850, ge=1, description="number of boosted trees (NTrees)")
    max_depth: int = Field(3, ge=1, le=12, description="depth of each tree (MaxDepth)")
    beta: float = Field(0.5, gt=0, le=1, description="AdaBoostBeta: learning rate of boosting")
    min_node_size: float = Field(
        0.025, ge=0, lt=0.5, description="minimum fraction of events (count and weight) per node"
    )
    n_cuts: int = Field(20, ge=1, le=254, description="cut points scanned per variable (nCuts)")
    use_bagging: bool = Field(True, description="grow each tree on a Poisson-resampled sample")
    bagged_sample_fraction: float = Field(
        0.6, gt=0, le=1, description="mean resampling multiplicity when use_bagging"
    )
    prune_on_validation: bool = Field(
        True,
        description="keep the shortest prefix of the forest whose validation AUC is within "
        "prune_tolerance of the best prefix (only when a validation set is given)",
    )
    prune_tolerance: float = Field(0.002, ge=0, lt=0.1, description="AUC tolerance for pruning")


def make_cuts(X: np.ndarray, w: np.ndarray, n_cuts: int) -> np.ndarray:
    """Quantile cut points per feature (events of non-zero weight), padded with +inf."""
    q = np.quantile(X[w > 0], np.arange(1, n_cuts + 1) / (n_cuts + 1), axis=0)
    cuts = np.full((X.shape[1], n_cuts), np.inf, dtype=np.float32)
    for f in range(X.shape[1]):
        unique = np.unique(q[:, f].astype(np.float32))
        cuts[f, : len(unique)] = unique
    return cuts


def bin_features(X: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Bin index per value: the number of cuts <= x, so ``bin > k`` iff ``x >= cuts[k]``."""
    binned = np.empty(X.shape, dtype=np.uint8)
    for f in range(X.shape[1]):
        binned[:, f] = np.searchsorted(cuts[f], X[:, f], side="right")
    return binned


def gini_gain(
    s_left: np.ndarray, b_left: np.ndarray, s_right: np.ndarray, b_right: np.ndarray
) -> np.ndarray:
    """Weighted Gini separation gain W*p(1-p) - W_L*p_L(1-p_L) - W_R*p_R(1-p_R)."""
    w_left, w_right = s_left + b_left, s_right + b_right
    parent = (s_left + s_right) * (b_left + b_right) / (w_left + w_right)
    left = np.divide(s_left * b_left, w_left, out=np.zeros_like(w_left), where=w_left > 0)
    right = np.divide(s_right * b_right, w_right, out=np.zeros_like(w_right), where=w_right > 0)
    return parent - left - right


class Tree:
    """One grown tree in complete-binary-tree layout (heap order for the inner nodes)."""

    def __init__(self, depth: int, n_features: int) -> None:
        self.depth = depth
        self.feature = np.zeros(2**depth - 1, dtype=np.intp)
        self.cut = np.full(2**depth - 1, np.iinfo(np.intp).max)  # bin index; max = all left
        self.leaf = np.zeros(2**depth, dtype=np.int8)  # +1 signal, -1 background
        self.gain = np.zeros(n_features)

    def route(self, binned: np.ndarray) -> np.ndarray:
        """Leaf index of each binned event."""
        node = np.zeros(len(binned), dtype=np.intp)
        rows = np.arange(len(binned))
        for d in range(self.depth):
            heap = 2**d - 1 + node
            node = 2 * node + (binned[rows, self.feature[heap]] > self.cut[heap])
        return node


class BinnedSample:
    """Training events binned once and shared by every tree of the forest.

    ``class_bins`` is ``(y * F + f) * n_bins + bin`` per (event, feature), so one bincount
    per tree level yields every node's class histograms for every feature at once.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, cuts: np.ndarray) -> None:
        n_features = X.shape[1]
        self.y = y
        self.n_bins = cuts.shape[1] + 1
        self.binned = bin_features(X, cuts)
        self.class_bins = y[:, None].astype(np.intp) * n_features + np.arange(n_features)
        self.class_bins = self.class_bins * self.n_bins + self.binned


def grow_tree(
    sample: BinnedSample, w: np.ndarray, count: np.ndarray, depth: int, min_node_size: float
) -> tuple[Tree, np.ndarray]:
    """Grow one depth-limited Gini tree level by level; return it and each event's leaf.

    As in TMVA, both daughters of a split must hold ``min_node_size`` of the sample's
    event count and of its weight: the count keeps late boosting iterations from cutting
    out a few heavy events.
    """
    n, n_features = sample.binned.shape
    tree = Tree(depth, n_features)
    min_weight, min_count = min_node_size * w.sum(), min_node_size * count.sum()
    w_sig = w * sample.y
    w_bkg = w - w_sig
    rows = np.arange(n)
    node = np.zeros(n, dtype=np.intp)
    node_class = np.array([w_sig.sum() > w_bkg.sum()])
    for d in range(depth):
        s_node, b_node, node_class = _node_stats(node, w_sig, w_bkg, node_class, 2**d)
        n_node = np.bincount(node, count, 2**d)
        big = (s_node + b_node >= 2 * min_weight) & (n_node >= 2 * min_count)
        active = np.flatnonzero(big & (s_node > 0) & (b_node > 0))
        if len(active):
            hist, counts = _histograms(sample, w, count, node, active, 2**d)
            _split_level(tree, d, active, hist, counts, min_weight, min_count)
        heap = 2**d - 1 + node
        node = 2 * node + (sample.binned[rows, tree.feature[heap]] > tree.cut[heap])
    node_class = _node_stats(node, w_sig, w_bkg, node_class, 2**depth)[2]
    tree.leaf[:] = np.where(node_class, 1, -1)
    return tree, node


def _node_stats(
    node: np.ndarray,
    w_sig: np.ndarray,
    w_bkg: np.ndarray,
    parent_class: np.ndarray,
    n_nodes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal and background weight per node, and its class (empty nodes take the parent's)."""
    s_node = np.bincount(node, w_sig, n_nodes)
    b_node = np.bincount(node, w_bkg, n_nodes)
    inherited = parent_class[np.arange(n_nodes) // 2]
    return s_node, b_node, np.where(s_node + b_node > 0, s_node > b_node, inherited)


def _histograms(
    sample: BinnedSample,
    w: np.ndarray,
    count: np.ndarray,
    node: np.ndarray,
    active: np.ndarray,
    n_nodes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Weight (node, class, feature, bin) and count (node, feature, bin) histograms."""
    n_features = sample.binned.shape[1]
    shape = (len(active) + 1, 2, n_features, sample.n_bins)
    stride = 2 * n_features * sample.n_bins
    compact = np.full(n_nodes, len(active))  # inactive nodes fill a discarded extra slot
    compact[active] = np.arange(len(active))
    index = (sample.class_bins + (compact[node] * stride)[:, None]).ravel()
    hist = np.bincount(index, np.repeat(w, n_features), shape[0] * stride).reshape(shape)
    counts = np.bincount(index, np.repeat(count, n_features), shape[0] * stride).reshape(shape)
    return hist[:-1], counts[:-1].sum(axis=1)


def _split_level(
    tree: Tree,
    d: int,
    active: np.ndarray,
    hist: np.ndarray,
    counts: np.ndarray,
    min_weight: float,
    min_count: float,
) -> None:
    """Store the best allowed Gini cut of every active node of level ``d`` in ``tree``."""
    n_active, _, n_features, n_bins = hist.shape
    cum = np.cumsum(hist, axis=-1)
    b_left, s_left = cum[:, 0, :, :-1], cum[:, 1, :, :-1]
    b_right, s_right = cum[:, 0, :, -1:] - b_left, cum[:, 1, :, -1:] - s_left
    count_cum = np.cumsum(counts, axis=-1)
    count_left = count_cum[..., :-1]
    count_right = count_cum[..., -1:] - count_left
    parent = cum[:, :, 0, -1].sum(axis=1)
    tiny = 1e-12 * parent[:, None, None]  # guards the subtraction's rounding for empty sides
    w_left, w_right = s_left + b_left, s_right + b_right
    allowed = (w_left >= np.maximum(min_weight, tiny)) & (w_right >= np.maximum(min_weight, tiny))
    allowed &= (count_left >= min_count) & (count_right >= min_count)
    gain = np.where(allowed, gini_gain(s_left, b_left, s_right, b_right), -np.inf)
    gain = gain.reshape(n_active, -1)
    best = gain.argmax(axis=1)
    best_gain = gain[np.arange(n_active), best]
    split = best_gain > 1e-12 * parent
    feature, cut = np.divmod(best[split], n_bins - 1)
    heap = 2**d - 1 + active[split]
    tree.feature[heap] = feature
    tree.cut[heap] = cut
    tree.gain += np.bincount(feature, best_gain[split], n_features)


class BDT(Classifier):
    """Discrete AdaBoost as TMVA does it: majority-class leaves, alpha = beta*ln((1-err)/err).

    The score is the alpha-weighted vote of the trees, sum(alpha*h)/sum(alpha) in [-1, 1],
    mapped to [0, 1]. Negative event weights are used as |w| (see ``check_inputs``), since
    a negative boosting weight has no meaning in AdaBoost. ``history_`` holds per tree the
    weighted error of that tree (``tree_error``) and of the ensemble so far on the training
    (``train_error``) and validation (``val_error``) sets. A deliberately over-trained
    configuration (train AUC ~1, KS p-value ~0): ``max_depth=8, min_node_size=0``
    (add ``n_trees=100`` to fit in seconds).
    """

    name = "bdt"
    Params = BDTParams
    hp: BDTParams

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        w_val: np.ndarray | None = None,
    ) -> Self:
        X, y, w = check_inputs(X, y, sample_weight)
        p = self.hp
        n = len(X)
        w = np.ones(n) if w is None else w  # mean 1: the boosting keeps the sum at n
        cuts = make_cuts(X, w, p.n_cuts)
        sample = BinnedSample(X, y, cuts)
        monitors = [_Monitor("train", sample.binned, y, w)]
        if X_val is not None and y_val is not None:
            X_val, y_val, w_val = check_inputs(X_val, y_val, w_val)
            monitors.append(_Monitor("val", bin_features(X_val, cuts), y_val, w_val))
        self.history_ = {"tree_error": [], **{f"{m.label}_error": [] for m in monitors}}

        rng = np.random.default_rng(self.seed)
        counted = (w > 0).astype(np.float64)  # zero-weight events do not count as events
        boost_w = w.copy()
        trees: list[Tree] = []
        alphas: list[float] = []
        for _ in range(p.n_trees):
            count = counted * rng.poisson(p.bagged_sample_fraction, n) if p.use_bagging else counted
            tree, leaf = grow_tree(sample, boost_w * count, count, p.max_depth, p.min_node_size)
            miss = tree.leaf[leaf] != 2 * y - 1
            err = boost_w[miss].sum() / boost_w.sum()
            if err >= 0.5:  # no better than chance on the full sample: useless tree
                if p.use_bagging:  # another resample may do better (TMVA gives alpha=0)
                    continue
                break
            alpha = p.beta * np.log((1 - err) / max(err, 1e-10))
            trees.append(tree)
            alphas.append(alpha)
            self.history_["tree_error"].append(float(err))
            for monitor in monitors:
                self.history_[f"{monitor.label}_error"].append(monitor.add(tree, alpha))
            if err == 0:  # perfectly separated: every further tree would be this one
                break
            boost_w[miss] *= np.exp(alpha)
            boost_w *= n / boost_w.sum()
        if not trees:
            raise ValueError("the BDT found no cut that separates signal from background")
        if p.prune_on_validation and len(monitors) > 1:
            keep = self._pruned_length(monitors[1], trees, alphas)
            trees, alphas = trees[:keep], alphas[:keep]
        self._store(trees, np.array(alphas), cuts)
        return self

    def _pruned_length(self, validation: _Monitor, trees: list[Tree], alphas: list[float]) -> int:
        """Shortest forest whose validation AUC is within tolerance of the best prefix.

        Boosting keeps lowering the training error long after the validation AUC has
        levelled off; the extra trees only fit fluctuations of the training sample, which
        the train-vs-test KS test then flags. Checked every ``PRUNE_STEP`` trees.
        """
        vote = np.zeros(len(validation.signal))
        lengths, aucs = [], []
        for i, (tree, alpha) in enumerate(zip(trees, alphas, strict=True), start=1):
            vote += alpha * tree.leaf[tree.route(validation.binned)]
            if i % PRUNE_STEP == 0 or i == len(trees):
                lengths.append(i)
                aucs.append(roc_auc_score(validation.signal, vote, sample_weight=validation.w))
        self.history_["val_auc"] = [float(a) for a in aucs]
        best = max(aucs)
        return next(
            n for n, a in zip(lengths, aucs, strict=True) if a >= best - self.hp.prune_tolerance
        )

    def _store(self, trees: list[Tree], alphas: np.ndarray, cuts: np.ndarray) -> None:
        """Keep the forest as dense arrays with float thresholds (binning is not needed later)."""
        self._feature = np.stack([t.feature for t in trees]).astype(np.int16)
        cut = np.stack([t.cut for t in trees])
        split = cut < cuts.shape[1]
        self._threshold = np.full(cut.shape, np.inf, dtype=np.float32)
        self._threshold[split] = cuts[self._feature[split], cut[split]]
        self._leaf = np.stack([t.leaf for t in trees])
        self._alpha = alphas
        gain = alphas @ np.stack([t.gain for t in trees])
        self.feature_importances_ = gain / gain.sum() if gain.sum() > 0 else gain

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """TMVA's BDT response sum(alpha*h)/sum(alpha) in [-1, 1], all trees at once."""
        X = check_inputs(X)[0]
        n_trees, n_inner = self._threshold.shape
        depth = int(np.log2(n_inner + 1))
        trees = np.arange(n_trees)
        chunk = max(1, PREDICT_CHUNK // n_trees)
        out = np.empty(len(X))
        for start in range(0, len(X), chunk):
            x = X[start : start + chunk]
            node = np.zeros((len(x), n_trees), dtype=np.intp)
            for d in range(depth):
                heap = 2**d - 1 + node
                value = np.take_along_axis(x, self._feature[trees, heap], axis=1)
                node = 2 * node + (value >= self._threshold[trees, heap])
            out[start : start + len(x)] = self._leaf[trees, node] @ self._alpha
        return out / self._alpha.sum()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return two_columns((self.decision_function(X) + 1) / 2)

    def _save_model(self, directory: Path) -> None:
        np.savez_compressed(
            directory / "bdt.npz",
            feature=self._feature,
            threshold=self._threshold,
            leaf=self._leaf,
            alpha=self._alpha,
        )

    def _load_model(self, directory: Path) -> None:
        with np.load(directory / "bdt.npz") as data:
            self._feature = data["feature"]
            self._threshold = data["threshold"]
            self._leaf = data["leaf"]
            self._alpha = data["alpha"]


class _Monitor:
    """Running ensemble vote on one sample, for the learning curves in ``history_``."""

    def __init__(self, label: str, binned: np.ndarray, y: np.ndarray, w: np.ndarray | None):
        self.label = label
        self.binned = binned
        self.signal = y == 1
        self.w = np.ones(len(y)) if w is None else w
        self.vote = np.zeros(len(y))

    def add(self, tree: Tree, alpha: float) -> float:
        """Add one tree's vote; return the ensemble's weighted misclassification rate."""
        self.vote += alpha * tree.leaf[tree.route(self.binned)]
        return float(self.w[(self.vote > 0) != self.signal].sum() / self.w.sum())
