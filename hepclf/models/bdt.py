"""TMVA-style AdaBoost boosted decision trees, vectorised with numpy; SAMME for K > 2 classes.

Features are binned once into ``n_cuts + 1`` quantile bins (TMVA's nCuts grid; by default
one cut per 10 training events up to 1000, uint16 above 254 cuts, as good as exact cuts);
each tree
level is then grown from one weighted ``np.bincount`` over (node, class, feature, bin), so
a tree costs a few passes over the binned data instead of a sort per node.

Trees are stored as complete binary trees of depth ``max_depth``: a node that does not
split sends every event left (threshold +inf) and its empty sibling inherits its class.
Predictions run through a branch-free loop over the same arrays, compiled by numba
(:mod:`hepclf.models.compiled_trees`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.special import softmax
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted, validate_data

from hepclf.models import compiled_trees
from hepclf.models.base import Classifier
from hepclf.models.derived import DerivedCache

PRUNE_STEP = 10
# n_cuts 'auto': a quantile cut per this many training events, within AUTO_CUTS; finer bins
# resolve nothing a 0.2 % node could use, and on 5000 training events 500 cuts fitted 2.5x faster
# than 1000 at the same AUC (docs/defaults-study.md)
EVENTS_PER_CUT = 10
AUTO_CUTS = (20, 1000)
# fitted BDT -> the forest prepared for the kernel, tied to its alpha_
_PREPARED: DerivedCache[compiled_trees.CompiledForest] = DerivedCache()

STAGED_CELLS = 1 << 20
"""Events x trees walked per numpy step of ``staged_error`` (a few MB of indices)."""


MAX_TRAIN_EVENTS = 1_000_000
"""Default cap on training events: the training set is held in memory with its binned copy."""


class BDTParams(BaseModel):
    """TMVA's AdaBoost (NTrees=850, MaxDepth=3) with settings re-derived on data other than
    the demo (docs/defaults-study.md): TMVA's nCuts=20 grid is adaptive per node in TMVA but a
    global quantile grid here, and lost 0.01 AUC to exact cuts, so up to 1000 quantile cuts
    (as good as exact: scikit-learn's AdaBoost on the same binned inputs scores the same);
    AdaBoostBeta 0.3 rather than 0.5; no bagging and a 0.2 % minimum node size rather than
    TMVA's bagged 2.5 % (which lost 0.015 AUC at 10^4 training events). Every training
    event trains, up to ``max_train_events`` (the events and their binned copy are held in
    memory, and the fit time grows with them); pruning on validation events is an option."""

    model_config = ConfigDict(extra="forbid")

    n_trees: int = Field(850, ge=1, description="number of boosted trees (NTrees)")
    max_depth: int = Field(3, ge=1, le=12, description="depth of each tree (MaxDepth)")
    beta: float = Field(0.3, gt=0, le=1, description="AdaBoostBeta: learning rate of boosting")
    min_node_size: float = Field(
        0.002,
        ge=0,
        description="minimum events per node (count and weight): below 0.5 a fraction of the "
        "training events (TMVA's MinNodeSize), from 1 a number of events",
    )
    n_cuts: int | Literal["auto"] = Field(
        "auto",
        description="quantile cut points scanned per variable (nCuts); 'auto': one per "
        f"{EVENTS_PER_CUT} training events, {AUTO_CUTS[0]} to {AUTO_CUTS[1]}",
    )
    use_bagging: bool = Field(False, description="grow each tree on a Poisson-resampled sample")
    bagged_sample_fraction: float = Field(
        0.6, gt=0, le=1, description="mean resampling multiplicity when use_bagging"
    )
    prune_on_validation: bool = Field(
        False,
        description="hold out the validation events and keep the shortest prefix of the "
        "forest whose validation AUC (macro one-vs-rest for K > 2 classes) is within "
        "prune_tolerance of the best prefix",
    )
    prune_tolerance: float = Field(0.002, ge=0, lt=0.1, description="AUC tolerance for pruning")
    max_train_events: int | None = Field(
        MAX_TRAIN_EVENTS,
        ge=100,
        description="train on a stratified subsample above this many events (null: all)",
    )

    @field_validator("n_cuts", mode="before")
    @classmethod
    def _auto_or_whole(cls, value: Any) -> Any:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value != "auto" and not (whole and 1 <= value <= 65534):
            raise ValueError("n_cuts is 'auto' or a number of cuts from 1 to 65534")
        return value

    @field_validator("min_node_size")
    @classmethod
    def _fraction_or_count(cls, value: float) -> float:
        if 0.5 <= value < 1 or (value >= 1 and value != int(value)):
            raise ValueError(
                "min_node_size is a fraction of the events below 0.5 or a whole number of "
                "events from 1"
            )
        return value


def cut_count(n_cuts: int | str, events: int) -> int:
    """The cuts per variable: as given, or 'auto' from the number of training events."""
    if n_cuts != "auto":
        return int(n_cuts)
    return int(np.clip(events // EVENTS_PER_CUT, *AUTO_CUTS))


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
    binned = np.empty(X.shape, dtype=np.uint8 if cuts.shape[1] < 255 else np.uint16)
    for f in range(X.shape[1]):
        binned[:, f] = np.searchsorted(cuts[f], X[:, f], side="right")
    return binned


def gini_index(parts: list[np.ndarray]) -> np.ndarray:
    """Half the weighted Gini impurity W*(1 - sum p_k^2)/2 = sum_{i<j} w_i*w_j / W.

    For two classes this is s*b/W, computed with exactly TMVA-style two-class arithmetic.
    """
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    cross = np.zeros_like(total)
    for i, part in enumerate(parts):
        for other in parts[i + 1 :]:
            cross = cross + part * other
    return np.divide(cross, total, out=np.zeros_like(total), where=total > 0)


def gini_gain(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    """Gini separation gain of a split: parent impurity minus both daughters' (per class
    weights in ``left``/``right``)."""
    w_left, w_right = sum(left[1:], left[0]), sum(right[1:], right[0])
    cross = np.zeros_like(w_left)
    totals = [a + b for a, b in zip(left, right, strict=True)]
    for i, part in enumerate(totals):
        for other in totals[i + 1 :]:
            cross = cross + part * other
    parent = cross / (w_left + w_right)
    return parent - gini_index(left) - gini_index(right)


class Tree:
    """One grown tree in complete-binary-tree layout (heap order for the inner nodes)."""

    def __init__(self, depth: int, n_features: int) -> None:
        self.depth = depth
        self.feature = np.zeros(2**depth - 1, dtype=np.intp)
        self.cut = np.full(2**depth - 1, np.iinfo(np.intp).max)  # bin index; max = all left
        self.leaf = np.zeros(2**depth, dtype=np.int16)  # majority class index
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

    def __init__(self, X: np.ndarray, y: np.ndarray, cuts: np.ndarray, n_classes: int) -> None:
        n_features = X.shape[1]
        self.y = y
        self.n_classes = n_classes
        self.n_bins = cuts.shape[1] + 1
        self.binned = bin_features(X, cuts)
        self.class_bins = y[:, None].astype(np.intp) * n_features + np.arange(n_features)
        self.class_bins = self.class_bins * self.n_bins + self.binned


def grow_tree(
    sample: BinnedSample, w: np.ndarray, count: np.ndarray, depth: int, min_node_size: float
) -> tuple[Tree, np.ndarray]:
    """Grow one depth-limited Gini tree level by level; return it and each event's leaf.

    As in TMVA, both daughters of a split must hold ``min_node_size`` events (a fraction of
    the sample's event count below 1) and as much weight as that many average events: the
    count keeps late boosting iterations from cutting out a few heavy events.
    """
    n, n_features = sample.binned.shape
    tree = Tree(depth, n_features)
    events = count.sum()
    min_count = min_node_size if min_node_size >= 1 else min_node_size * events
    min_weight = min_count * w.sum() / events  # as many events of average weight
    rows = np.arange(n)
    node = np.zeros(n, dtype=np.intp)
    node_class = np.zeros(1, dtype=np.intp)
    for d in range(depth):
        class_w, node_class = _node_stats(node, sample, w, node_class, 2**d)
        n_node = np.bincount(node, count, 2**d)
        big = (sum(class_w[1:], class_w[0]) >= 2 * min_weight) & (n_node >= 2 * min_count)
        active = np.flatnonzero(big & ((class_w > 0).sum(axis=0) >= 2))
        if len(active):
            hist, counts = _histograms(sample, w, count, node, active, 2**d)
            _split_level(tree, d, active, hist, counts, min_weight, min_count)
        heap = 2**d - 1 + node
        node = 2 * node + (sample.binned[rows, tree.feature[heap]] > tree.cut[heap])
    node_class = _node_stats(node, sample, w, node_class, 2**depth)[1]
    tree.leaf[:] = node_class
    return tree, node


def _node_stats(
    node: np.ndarray, sample: BinnedSample, w: np.ndarray, parent_class: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weight per (class, node), and each node's majority class (empty: the parent's)."""
    k = sample.n_classes
    class_w = np.bincount(sample.y * n_nodes + node, w, k * n_nodes).reshape(k, n_nodes)
    inherited = parent_class[np.arange(n_nodes) // 2]
    filled = sum(class_w[1:], class_w[0]) > 0
    return class_w, np.where(filled, np.argmax(class_w, axis=0), inherited)


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
    shape = (len(active) + 1, sample.n_classes, n_features, sample.n_bins)
    stride = sample.n_classes * n_features * sample.n_bins
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
    n_active, n_classes, n_features, n_bins = hist.shape
    cum = np.cumsum(hist, axis=-1)
    left = [cum[:, k, :, :-1] for k in range(n_classes)]
    right = [cum[:, k, :, -1:] - left[k] for k in range(n_classes)]
    count_cum = np.cumsum(counts, axis=-1)
    count_left = count_cum[..., :-1]
    count_right = count_cum[..., -1:] - count_left
    parent = cum[:, :, 0, -1].sum(axis=1)
    tiny = 1e-12 * parent[:, None, None]  # guards the subtraction's rounding for empty sides
    w_left, w_right = sum(left[1:], left[0]), sum(right[1:], right[0])
    allowed = (w_left >= np.maximum(min_weight, tiny)) & (w_right >= np.maximum(min_weight, tiny))
    allowed &= (count_left >= min_count) & (count_right >= min_count)
    gain = np.where(allowed, gini_gain(left, right), -np.inf)
    gain = gain.reshape(n_active, -1)
    # the first of the cuts whose gain ties with the best up to rounding: a sum rounded in
    # another order (say, with zero-weight events) must not pick another cut
    top = gain.max(axis=1, keepdims=True)
    best = np.argmax(gain >= top - 1e-9 * np.abs(top), axis=1)
    best_gain = gain[np.arange(n_active), best]
    split = best_gain > 1e-12 * parent
    feature, cut = np.divmod(best[split], n_bins - 1)
    heap = 2**d - 1 + active[split]
    tree.feature[heap] = feature
    tree.cut[heap] = cut
    tree.gain += np.bincount(feature, best_gain[split], n_features)


def samme_proba(votes: np.ndarray, alpha_sum: float) -> np.ndarray:
    """scikit-learn's SAMME probabilities from the alpha-weighted class votes (n, K).

    The decision of class k is sum(alpha * (1 if h = k else -1/(K-1))) / sum(alpha); the
    probabilities are softmax(decision / (K-1)).
    """
    k = votes.shape[1]
    decision = (k * votes / alpha_sum - 1) / (k - 1)
    return softmax(decision / (k - 1), axis=1)


def macro_auc(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> float:
    """Mean over classes of the weighted one-vs-rest AUC (scikit-learn's 'ovr' macro)."""
    aucs = [roc_auc_score(y == k, proba[:, k], sample_weight=w) for k in range(proba.shape[1])]
    return float(np.mean(aucs))


class BDT(Classifier):
    """Discrete AdaBoost as TMVA does it: majority-class leaves, alpha = beta*ln((1-err)/err).

    Two classes: the score is TMVA's alpha-weighted vote of the trees,
    sum(alpha*h)/sum(alpha) in [-1, 1] with h = +-1, mapped to [0, 1]. K > 2 classes: SAMME,
    the multi-class AdaBoost scikit-learn implements, with alpha = beta*(ln((1-err)/err) +
    ln(K-1)) and its probabilities (softmax of the normalised vote / (K-1)).

    Fitted attributes: ``feature_`` and ``threshold_`` (n_trees, 2**max_depth - 1), the
    inner nodes in heap order (children of ``h``: ``2h+1`` when ``x[feature] < threshold``,
    else ``2h+2``; threshold +inf sends every event left), ``leaf_class_`` (n_trees,
    2**max_depth), the class index voted by each leaf, ``alpha_`` (n_trees,), plus
    ``feature_importances_`` and ``history_``: per tree the weighted error of that tree
    (``tree_error``) and of the ensemble so far on the training (``train_error``) and
    validation (``val_error``) sets, and ``val_auc`` every ``PRUNE_STEP`` trees when pruning.
    A deliberately over-trained configuration (train AUC ~1, KS p-value ~0):
    ``max_depth=8, min_node_size=0`` (add ``n_trees=100`` to fit in seconds).
    """

    name = "bdt"
    importance_type = "share of the alpha-weighted Gini gain of the splits"
    Params = BDTParams

    @property
    def uses_validation(self) -> bool:  # type: ignore[override]
        """Only a pruned forest needs validation events; otherwise they train as well."""
        return bool(self.prune_on_validation)

    def __init__(
        self,
        *,
        n_trees: int = 850,
        max_depth: int = 3,
        beta: float = 0.3,
        min_node_size: float = 0.002,
        n_cuts: int | str = "auto",
        use_bagging: bool = False,
        bagged_sample_fraction: float = 0.6,
        prune_on_validation: bool = False,
        prune_tolerance: float = 0.002,
        max_train_events: int | None = MAX_TRAIN_EVENTS,
        seed: int = 42,
    ) -> None:
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.beta = beta
        self.min_node_size = min_node_size
        self.n_cuts = n_cuts
        self.use_bagging = use_bagging
        self.bagged_sample_fraction = bagged_sample_fraction
        self.prune_on_validation = prune_on_validation
        self.prune_tolerance = prune_tolerance
        self.max_train_events = max_train_events
        self.seed = seed

    def _fit(
        self,
        hp: BDTParams,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        n, k = len(X), len(self.classes_)
        counted = (w > 0).astype(np.float64)  # zero-weight events do not count as events
        total = counted.sum()
        cuts = make_cuts(X, w, cut_count(hp.n_cuts, int(total)))
        sample = BinnedSample(X, y, cuts, k)
        monitors = [_Monitor("train", sample.binned, y, w, k)]
        if val is not None:
            monitors.append(_Monitor("val", bin_features(val[0], cuts), val[1], val[2], k))
        self.history_ = {"tree_error": [], **{f"{m.label}_error": [] for m in monitors}}

        rng = np.random.default_rng(self.seed)
        # mean 1 over the counted events, kept so by the boosting (zero-weight events do
        # not change the scale)
        boost_w = w * (total / w.sum())
        trees: list[Tree] = []
        alphas: list[float] = []
        for _ in range(hp.n_trees):
            count = (
                counted * rng.poisson(hp.bagged_sample_fraction, n) if hp.use_bagging else counted
            )
            tree, leaf = grow_tree(sample, boost_w * count, count, hp.max_depth, hp.min_node_size)
            miss = tree.leaf[leaf] != y
            err = boost_w[miss].sum() / boost_w.sum()
            if err >= 1 - 1 / k:  # no better than chance on the full sample: useless tree
                if hp.use_bagging:  # another resample may do better (TMVA gives alpha=0)
                    continue
                break
            alpha = hp.beta * (np.log((1 - err) / max(err, 1e-10)) + np.log(k - 1))
            trees.append(tree)
            alphas.append(alpha)
            self.history_["tree_error"].append(float(err))
            for monitor in monitors:
                self.history_[f"{monitor.label}_error"].append(monitor.add(tree, alpha))
            if err == 0:  # perfectly separated: every further tree would be this one
                break
            boost_w[miss] *= np.exp(alpha)
            boost_w *= total / boost_w.sum()
        if not trees:
            raise ValueError("the BDT found no cut that separates the classes")
        if hp.prune_on_validation and len(monitors) > 1:
            keep = self._pruned_length(monitors[1], trees, alphas, hp.prune_tolerance)
            trees, alphas = trees[:keep], alphas[:keep]
        self._store(trees, np.array(alphas), cuts)

    def _pruned_length(
        self, validation: _Monitor, trees: list[Tree], alphas: list[float], tolerance: float
    ) -> int:
        """Shortest forest whose validation AUC is within tolerance of the best prefix.

        Boosting keeps lowering the training error long after the validation AUC has
        levelled off; the extra trees only fit fluctuations of the training sample, which
        the train-vs-test KS test then flags. Checked every ``PRUNE_STEP`` trees; with more
        than two classes on the macro one-vs-rest AUC of the SAMME probabilities.
        """
        k = validation.n_classes
        vote = np.zeros(len(validation.y)) if k == 2 else np.zeros((len(validation.y), k))
        rows = np.arange(len(validation.y))
        lengths, aucs = [], []
        alpha_sum = 0.0
        for i, (tree, alpha) in enumerate(zip(trees, alphas, strict=True), start=1):
            leaf = tree.leaf[tree.route(validation.binned)]
            alpha_sum += alpha
            if k == 2:
                vote += alpha * (2 * leaf - 1)
            else:
                vote[rows, leaf] += alpha
            if i % PRUNE_STEP == 0 or i == len(trees):
                lengths.append(i)
                if k == 2:
                    aucs.append(roc_auc_score(validation.y, vote, sample_weight=validation.w))
                else:
                    proba = samme_proba(vote, alpha_sum)
                    aucs.append(macro_auc(validation.y, proba, validation.w))
        self.history_["val_auc"] = [float(a) for a in aucs]
        best = max(aucs)
        return next(n for n, a in zip(lengths, aucs, strict=True) if a >= best - tolerance)

    def _store(self, trees: list[Tree], alphas: np.ndarray, cuts: np.ndarray) -> None:
        """Keep the forest as dense arrays with float thresholds (binning is not needed later)."""
        self.feature_ = np.stack([t.feature for t in trees]).astype(np.int16)
        cut = np.stack([t.cut for t in trees])
        split = cut < cuts.shape[1]
        self.threshold_ = np.full(cut.shape, np.inf, dtype=np.float32)
        self.threshold_[split] = cuts[self.feature_[split], cut[split]]
        self.leaf_class_ = np.stack([t.leaf for t in trees])
        self.alpha_ = alphas
        gain = alphas @ np.stack([t.gain for t in trees])
        self.feature_importances_ = gain / gain.sum() if gain.sum() > 0 else gain

    # -- prediction ---------------------------------------------------------------------
    def class_votes(self, X: Any) -> np.ndarray:
        """Alpha-weighted votes: two classes sum(alpha*h) with h = +-1 (n,), else (n, K).

        Through the compiled kernel (:mod:`hepclf.models.compiled_trees`): each event sums
        its trees in tree order, so an event's votes do not depend on the batch it comes in
        (k-fold scoring reproduces out-of-fold scores exactly).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        return self._forest().predict(X)

    def _forest(self) -> compiled_trees.CompiledForest:
        """The forest prepared for the kernel, once per fitted forest (kept in
        :mod:`hepclf.models.derived`, tied to ``alpha_``)."""
        return _PREPARED.get(self, self.alpha_, self._prepare_forest)

    def _prepare_forest(self) -> compiled_trees.CompiledForest:
        k = len(self.classes_)
        if k == 2:  # TMVA's vote: alpha * (+-1) per leaf
            value = self.alpha_[:, None] * (2 * self.leaf_class_ - 1)
        else:  # SAMME: alpha in the column of the leaf's class
            value = self.alpha_[:, None, None] * (self.leaf_class_[..., None] == np.arange(k))
        return compiled_trees.CompiledForest(self.feature_, self.threshold_, value)

    def decision_function(self, X: Any) -> np.ndarray:
        """Two classes: TMVA's BDT response sum(alpha*h)/sum(alpha) in [-1, 1]; K > 2:
        SAMME's decision (n, K) as scikit-learn's ``AdaBoostClassifier`` defines it."""
        votes = self.class_votes(X)
        total = self.alpha_.sum()
        if votes.ndim == 1:
            return votes / total
        k = votes.shape[1]
        return (k * votes / total - 1) / (k - 1)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        votes = self._forest().predict(X)
        if votes.ndim == 2:
            return samme_proba(votes, self.alpha_.sum())
        score = np.clip((votes / self.alpha_.sum() + 1) / 2, 0.0, 1.0)  # rounding of the sum
        return np.column_stack([1 - score, score])

    # -- persistence --------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        np.savez_compressed(
            directory / "bdt.npz",
            feature=self.feature_,
            threshold=self.threshold_,
            leaf_class=self.leaf_class_,
            alpha=self.alpha_,
        )

    def _load_model(self, directory: Path) -> None:
        with np.load(directory / "bdt.npz") as data:
            self.feature_ = data["feature"]
            self.threshold_ = data["threshold"]
            if "leaf_class" in data:
                self.leaf_class_ = data["leaf_class"]
            else:  # saved before multi-class: leaves held TMVA's +-1
                self.leaf_class_ = ((data["leaf"].astype(np.int16) + 1) // 2).astype(np.int16)
            self.alpha_ = data["alpha"]

    # -- monitoring ---------------------------------------------------------------------
    def staged_error(self, X: Any, y: Any, sample_weight: Any = None) -> np.ndarray:
        """Weighted misclassification rate of the first 1, 2, ... trees on these events:
        the learning curve on held-out events (TMVA monitors its BDT on the test sample),
        comparable with ``history_['train_error']``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C")
        y = self._encode(y)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        n_trees, n_inner = self.threshold_.shape
        k = len(self.classes_)
        depth = int(np.log2(n_inner + 1))
        trees = np.arange(n_trees)
        wrong = np.zeros(n_trees)
        chunk = max(1, STAGED_CELLS // n_trees)
        for start in range(0, len(X), chunk):
            x, yc, wc = X[start : start + chunk], y[start : start + chunk], w[start : start + chunk]
            node = np.zeros((len(x), n_trees), dtype=np.intp)
            for d in range(depth):
                heap = 2**d - 1 + node
                value = np.take_along_axis(x, self.feature_[trees, heap], axis=1)
                node = 2 * node + (value >= self.threshold_[trees, heap])
            leaf = self.leaf_class_[trees, node]  # (events, trees)
            if k == 2:  # running vote sum(alpha * (+-1)) after each tree
                vote = np.cumsum((2 * leaf - 1) * self.alpha_, axis=1)
                miss = (vote > 0) != (yc == 1)[:, None]
            else:  # running SAMME vote per class
                votes = np.zeros((len(x), k))
                miss = np.empty(leaf.shape, dtype=bool)
                rows = np.arange(len(x))
                for t in range(n_trees):
                    votes[rows, leaf[:, t]] += self.alpha_[t]
                    miss[:, t] = np.argmax(votes, axis=1) != yc
            wrong += wc @ miss
        return wrong / w.sum()


class _Monitor:
    """Running ensemble vote on one sample, for the learning curves in ``history_``."""

    def __init__(
        self, label: str, binned: np.ndarray, y: np.ndarray, w: np.ndarray, n_classes: int
    ) -> None:
        self.label = label
        self.binned = binned
        self.y = y
        self.w = w
        self.n_classes = n_classes
        self.rows = np.arange(len(y))
        self.vote = np.zeros(len(y)) if n_classes == 2 else np.zeros((len(y), n_classes))

    def add(self, tree: Tree, alpha: float) -> float:
        """Add one tree's vote; return the ensemble's weighted misclassification rate."""
        leaf = tree.leaf[tree.route(self.binned)]
        if self.n_classes == 2:
            self.vote += alpha * (2 * leaf - 1)
            wrong = (self.vote > 0) != (self.y == 1)
        else:
            self.vote[self.rows, leaf] += alpha
            wrong = np.argmax(self.vote, axis=1) != self.y
        return float(self.w[wrong].sum() / self.w.sum())
