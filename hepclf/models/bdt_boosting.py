"""AdaBoost over the BDT's trees: TMVA's discrete boosting, SAMME for K > 2 classes.

Each tree is grown (:mod:`hepclf.models.bdt_trees`) on the boosted weights of the binned
training sample, given alpha = beta*(ln((1-err)/err) + ln(K-1)), and the events it got
wrong weigh exp(alpha) more for the next. Learning curves are kept per tree, and a forest
can be cut back to the shortest prefix that is as good on validation events.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.metrics import roc_auc_score

from hepclf.models.bdt_trees import BinnedSample, Tree, grow_tree

PRUNE_STEP = 10
"""Pruning checks the validation AUC every this many trees."""


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


class Monitor:
    """Running ensemble vote on one binned sample: learning curves and pruning read it."""

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
        self.alpha_sum = 0.0

    def vote_for(self, tree: Tree, alpha: float) -> None:
        """Add one tree's vote: alpha * (+-1) for two classes, alpha to its class else."""
        leaf = tree.leaf[tree.route(self.binned)]
        self.alpha_sum += alpha
        if self.n_classes == 2:
            self.vote += alpha * (2 * leaf - 1)
        else:
            self.vote[self.rows, leaf] += alpha

    def add(self, tree: Tree, alpha: float) -> float:
        """Add one tree's vote; return the ensemble's weighted misclassification rate."""
        self.vote_for(tree, alpha)
        if self.n_classes == 2:
            wrong = (self.vote > 0) != (self.y == 1)
        else:
            wrong = np.argmax(self.vote, axis=1) != self.y
        return float(self.w[wrong].sum() / self.w.sum())

    def auc(self) -> float:
        """The ensemble's weighted AUC so far (macro one-vs-rest of SAMME's probabilities)."""
        if self.n_classes == 2:
            return float(roc_auc_score(self.y, self.vote, sample_weight=self.w))
        return macro_auc(self.y, samme_proba(self.vote, self.alpha_sum), self.w)


def boost(
    sample: BinnedSample,
    w: np.ndarray,
    monitors: list[Monitor],
    rng: np.random.Generator,
    *,
    n_trees: int,
    max_depth: int,
    beta: float,
    min_node_size: float,
    use_bagging: bool,
    bagged_sample_fraction: float,
) -> tuple[list[Tree], list[float], dict[str, list[float]]]:
    """Boost up to ``n_trees`` trees; return them, their alphas and the learning curves
    (``tree_error`` and each monitor's ``<label>_error``, one entry per kept tree)."""
    y, k, n = sample.y, sample.n_classes, len(sample.y)
    counted = (w > 0).astype(np.float64)  # zero-weight events do not count as events
    total = counted.sum()
    history: dict[str, list[float]] = {"tree_error": []}
    history.update({f"{m.label}_error": [] for m in monitors})
    # mean 1 over the counted events, kept so by the boosting (zero-weight events do not
    # change the scale)
    boost_w = w * (total / w.sum())
    trees: list[Tree] = []
    alphas: list[float] = []
    for _ in range(n_trees):
        count = counted * rng.poisson(bagged_sample_fraction, n) if use_bagging else counted
        tree, leaf = grow_tree(sample, boost_w * count, count, max_depth, min_node_size)
        miss = tree.leaf[leaf] != y
        err = boost_w[miss].sum() / boost_w.sum()
        if err >= 1 - 1 / k:  # no better than chance on the full sample: useless tree
            if use_bagging:  # another resample may do better (TMVA gives alpha=0)
                continue
            break
        alpha = beta * (np.log((1 - err) / max(err, 1e-10)) + np.log(k - 1))
        trees.append(tree)
        alphas.append(alpha)
        history["tree_error"].append(float(err))
        for monitor in monitors:
            history[f"{monitor.label}_error"].append(monitor.add(tree, alpha))
        if err == 0:  # perfectly separated: every further tree would be this one
            break
        boost_w[miss] *= np.exp(alpha)
        boost_w *= total / boost_w.sum()
    if not trees:
        raise ValueError("the BDT found no cut that separates the classes")
    return trees, alphas, history


def pruned_length(
    validation: Monitor, trees: list[Tree], alphas: list[float], tolerance: float
) -> tuple[int, list[float]]:
    """Shortest forest whose validation AUC is within tolerance of the best prefix, and the
    AUCs checked (every ``PRUNE_STEP`` trees and at the end).

    Boosting keeps lowering the training error long after the validation AUC has levelled
    off; the extra trees only fit fluctuations of the training sample, which the
    train-vs-test KS test then flags. With more than two classes the AUC is the macro
    one-vs-rest AUC of the SAMME probabilities.
    """
    prefix = Monitor(
        validation.label, validation.binned, validation.y, validation.w, validation.n_classes
    )
    lengths, aucs = [], []
    for i, (tree, alpha) in enumerate(zip(trees, alphas, strict=True), start=1):
        prefix.vote_for(tree, alpha)
        if i % PRUNE_STEP == 0 or i == len(trees):
            lengths.append(i)
            aucs.append(prefix.auc())
    best = max(aucs)
    keep = next(n for n, a in zip(lengths, aucs, strict=True) if a >= best - tolerance)
    return keep, aucs
