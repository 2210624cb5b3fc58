"""Growing one TMVA-style Gini tree of the BDT from features binned once.

Features are binned once into ``n_cuts + 1`` quantile bins (TMVA's nCuts grid; by default
one cut per 10 training events up to 1000, uint16 above 254 cuts, as good as exact cuts);
each tree level is then grown from one weighted ``np.bincount`` over (node, class, feature,
bin), so a tree costs a few passes over the binned data instead of a sort per node.

Trees are complete binary trees of depth ``max_depth``: a node that does not split sends
every event left (cut index max) and its empty sibling inherits its class.
"""

from __future__ import annotations

import numpy as np

# n_cuts 'auto': a quantile cut per this many training events, within AUTO_CUTS; finer bins
# resolve nothing a 0.2 % node could use, and on 5000 training events 500 cuts fitted 2.5x faster
# than 1000 at the same AUC (docs/defaults-study.md)
EVENTS_PER_CUT = 10
AUTO_CUTS = (20, 1000)


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
