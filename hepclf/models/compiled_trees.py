"""Branch-free evaluation of complete binary trees, compiled by numba in each process.

Why not a tree library: walking 850 depth-3 trees with numpy fancy indexing runs at ~20k
events per CPU second. The maintained evaluators were measured beside this kernel on the
default forest (``benchmarks/bdt.py`` prints the table on every run; per CPU second relative
to this kernel, measured at load 12 on 2 cores: tl2cgen's compiled library 0.31x, xgboost's
predictor 0.22x, ONNX Runtime's TreeEnsembleRegressor 0.07x). They compile or walk every cut as an
if/else, and with AdaBoost's ~50/50 cuts the CPU mispredicts about every other branch.

Two kernels, chosen by depth:

* Trees of depth <= 3 (TMVA's default is 3; shallower trees are padded to depth 3 with
  cuts at +inf whose two leaves carry the same value) are evaluated *whole*: a block of
  events is copied column by column, and for each tree all seven cuts are compared and the
  leaf value is selected by the three answers. The loop over events then has no branch and
  no gather, so LLVM turns it into SIMD compares and blends: 2.3x the walk below per CPU
  second on the default forest.
* Deeper trees are walked: the next node is computed, ``2k + 1 + (x >= cut)``, so the walk
  has no data-dependent branch, and four events are walked together so that their
  independent chains of loads overlap; indices are unsigned so numba adds no wrap-around
  test per load. Multi-class forests (a row of values per leaf) are always walked.

Why numba compiles in memory, once per process, and keeps nothing on disk: numba's
``cache=True`` files are pickles of machine code loaded without a checksum. Measured with
numba 0.68: zeroing 1 KiB of a cached file at each of 68 offsets crashed the loading process
at 7 of them (SIGSEGV or abort), made every call raise at 20 more, until someone deleted the
file; and whoever can write the cache folder runs code in every process that loads it. The
cache saved 0.4 of the first call's 1.5 CPU seconds (the rest is numba's own start-up), so a
process compiles the kernel at its first bdt prediction and nothing can be damaged, shared
between CPUs or found read-only. numba's wheels carry LLVM: no compiler is needed.

Why Python threads rather than numba's ``parallel=True``: the kernel releases the GIL and
the events are split over ``NUMBA_NUM_THREADS`` threads (by default the cores this process
may use). Where neither TBB nor OpenMP is installed (the slim Docker image), numba's parallel
loops run on its workqueue layer, which aborts the process when two threads enter it at once,
as the service's concurrent requests would.

The sums are exact functions of the inputs: each event adds its trees' leaf values in double
precision in tree order, starting from 0.0, whatever the kernel, the batch, the thread or the
split of events between threads; numba does not reorder floating-point additions (no
fastmath), and a NaN feature goes left at every cut in both kernels (``NaN >= cut`` is
false). A numpy loop that adds ``value[t, leaf]`` tree by tree gives the same bits (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

MIN_SHARE = 20_000  # events per thread below which the calling thread walks them all
WHOLE_DEPTH = 3  # trees up to this depth are evaluated whole (padded to it)
BLOCK = 1024  # events copied column-major per step of the whole-tree kernel (~115 kB at 28)


def _binary_sums(
    X: np.ndarray,
    n_features: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    value: np.ndarray,
    n_trees: int,
    depth: int,
    out: np.ndarray,
) -> None:
    """``out[i]``: the sum over trees, in order, of ``value`` at the leaf event ``i``
    reaches; four events at a time (the last block repeats the last event)."""
    one, two = np.uint64(1), np.uint64(2)
    stride = np.uint64(n_features)
    inner = np.uint64((1 << depth) - 1)
    leaves = inner + one
    n = out.shape[0]
    for block in range((n + 3) // 4):
        i0 = min(4 * block, n - 1)
        i1, i2, i3 = min(i0 + 1, n - 1), min(i0 + 2, n - 1), min(i0 + 3, n - 1)
        r0, r1 = np.uint64(i0) * stride, np.uint64(i1) * stride
        r2, r3 = np.uint64(i2) * stride, np.uint64(i3) * stride
        s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        for t in range(n_trees):
            node = np.uint64(t) * inner
            k0, k1, k2, k3 = np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0)
            for _ in range(depth):
                k0 = two * k0 + one + np.uint64(X[r0 + feature[node + k0]] >= threshold[node + k0])
                k1 = two * k1 + one + np.uint64(X[r1 + feature[node + k1]] >= threshold[node + k1])
                k2 = two * k2 + one + np.uint64(X[r2 + feature[node + k2]] >= threshold[node + k2])
                k3 = two * k3 + one + np.uint64(X[r3 + feature[node + k3]] >= threshold[node + k3])
            leaf = np.uint64(t) * leaves
            s0 += value[leaf + (k0 - inner)]
            s1 += value[leaf + (k1 - inner)]
            s2 += value[leaf + (k2 - inner)]
            s3 += value[leaf + (k3 - inner)]
        out[i0], out[i1], out[i2], out[i3] = s0, s1, s2, s3


def _depth3_sums(
    X: np.ndarray,
    n_features: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    value: np.ndarray,
    n_trees: int,
    out: np.ndarray,
) -> None:
    """``out[i]``: as :func:`_binary_sums` for depth-3 trees, every cut of a tree compared
    on a column-major block of events and the leaf value selected by the answers (heap
    order: node k's children are 2k+1 below the cut, 2k+2 at or above it)."""
    n = out.shape[0]
    block = np.empty((n_features, BLOCK), dtype=np.float32)
    sums = np.empty(BLOCK)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        for i in range(m):
            row = (start + i) * n_features
            for f in range(n_features):
                block[f, i] = X[row + f]
            sums[i] = 0.0
        for t in range(n_trees):
            node, leaf = 7 * t, 8 * t
            x0, x1, x2 = block[feature[node]], block[feature[node + 1]], block[feature[node + 2]]
            x3, x4 = block[feature[node + 3]], block[feature[node + 4]]
            x5, x6 = block[feature[node + 5]], block[feature[node + 6]]
            c0, c1, c2, c3 = (
                threshold[node],
                threshold[node + 1],
                threshold[node + 2],
                threshold[node + 3],
            )
            c4, c5, c6 = threshold[node + 4], threshold[node + 5], threshold[node + 6]
            v0, v1, v2, v3 = value[leaf], value[leaf + 1], value[leaf + 2], value[leaf + 3]
            v4, v5, v6, v7 = value[leaf + 4], value[leaf + 5], value[leaf + 6], value[leaf + 7]
            for i in range(m):
                low = (v3 if x4[i] >= c4 else v2) if x1[i] >= c1 else (v1 if x3[i] >= c3 else v0)
                high = (v7 if x6[i] >= c6 else v6) if x2[i] >= c2 else (v5 if x5[i] >= c5 else v4)
                sums[i] += high if x0[i] >= c0 else low
        for i in range(m):
            out[start + i] = sums[i]


def _class_sums(
    X: np.ndarray,
    n_features: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    value: np.ndarray,
    n_trees: int,
    depth: int,
    width: int,
    out: np.ndarray,
) -> None:
    """``out[i * width + j]``: the sum over trees, in order, of column ``j`` of the value of
    the leaf event ``i`` reaches."""
    one, two = np.uint64(1), np.uint64(2)
    stride, columns = np.uint64(n_features), np.uint64(width)
    inner = np.uint64((1 << depth) - 1)
    leaves = inner + one
    for i in range(out.shape[0] // width):
        row, first = np.uint64(i) * stride, np.uint64(i) * columns
        for j in range(width):
            out[first + np.uint64(j)] = 0.0
        for t in range(n_trees):
            node = np.uint64(t) * inner
            k = np.uint64(0)
            for _ in range(depth):
                k = two * k + one + np.uint64(X[row + feature[node + k]] >= threshold[node + k])
            leaf = (np.uint64(t) * leaves + (k - inner)) * columns
            for j in range(width):
                out[first + np.uint64(j)] += value[leaf + np.uint64(j)]


@cache
def _kernels() -> tuple[Callable[..., None], Callable[..., None], Callable[..., None], int]:
    """The three kernels, compiled by numba at their first call (numba is imported here, not
    at start-up: ``hepclf score`` with another model never pays for it), and the threads
    to use: ``NUMBA_NUM_THREADS``, by default the cores this process may run on."""
    import numba

    jit = numba.njit(nogil=True, boundscheck=False, cache=False)
    return (
        jit(_depth3_sums),
        jit(_binary_sums),
        jit(_class_sums),
        int(numba.config.NUMBA_NUM_THREADS),
    )


class CompiledForest:
    """A forest of complete trees ready for the kernel: ``predict(X)`` sums leaf values.

    ``feature``/``threshold``: (n_trees, 2**depth - 1) inner nodes in heap order (children
    of ``k``: ``2k+1`` when ``x[feature] < threshold``, else ``2k+2``); ``value``:
    (n_trees, 2**depth, width) leaf values, or (n_trees, 2**depth) for width 1.
    """

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, value: np.ndarray) -> None:
        n_trees, n_inner = threshold.shape
        self.n_trees = n_trees
        self.depth = int(np.log2(n_inner + 1))
        self.width = 1 if value.ndim == 2 else value.shape[2]
        if (
            feature.shape != threshold.shape
            or value.shape[:2] != (n_trees, n_inner + 1)
            or n_inner != 2**self.depth - 1
        ):
            raise ValueError("feature, threshold and value describe different forests")
        if np.any(feature < 0):
            raise ValueError("negative feature index in the forest")
        self.n_features = int(feature.max(initial=-1)) + 1  # the least a row must hold
        self.whole = self.width == 1 and self.depth <= WHOLE_DEPTH
        while self.whole and self.depth < WHOLE_DEPTH:
            feature, threshold, value = _one_level_deeper(feature, threshold, value)
            self.depth += 1
        self.feature = np.ascontiguousarray(feature, dtype=np.uint16).ravel()
        self.threshold = np.ascontiguousarray(threshold, dtype=np.float32).ravel()
        self.value = np.ascontiguousarray(value, dtype=np.float64).ravel()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) sums for width 1, else (n, width); ``X`` float32 of the trained features."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] < self.n_features:
            raise ValueError(
                f"the forest reads {self.n_features} features; got an array of shape {X.shape}"
            )
        out = np.empty(len(X)) if self.width == 1 else np.empty((len(X), self.width))
        if not len(X):
            return out
        whole, binary, classes, threads = _kernels()
        forest = (self.feature, self.threshold, self.value, self.n_trees)

        def share(start: int, stop: int) -> None:
            rows, sums = X[start:stop].reshape(-1), out[start:stop].reshape(-1)
            if self.whole:
                whole(rows, X.shape[1], *forest, sums)
            elif self.width == 1:
                binary(rows, X.shape[1], *forest, self.depth, sums)
            else:
                classes(rows, X.shape[1], *forest, self.depth, self.width, sums)

        _in_threads(share, len(X), threads)
        return out


def _one_level_deeper(
    feature: np.ndarray, threshold: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same forest one level deeper: each leaf becomes a cut at +inf on feature 0
    whose two leaves carry the leaf's value, so every event gets the same value."""
    n_trees, n_leaves = value.shape[:2]
    feature = np.concatenate([feature, np.zeros((n_trees, n_leaves), feature.dtype)], axis=1)
    cuts = np.full((n_trees, n_leaves), np.inf, dtype=threshold.dtype)
    return feature, np.concatenate([threshold, cuts], axis=1), np.repeat(value, 2, axis=1)


def _in_threads(share: Callable[[int, int], Any], n: int, threads: int) -> None:
    """``share(start, stop)`` over contiguous slices of ``n`` events, one per thread (the
    kernel releases the GIL); small batches stay in the calling thread."""
    workers = max(1, min(threads, n // MIN_SHARE))
    if workers == 1:
        share(0, n)
        return
    edges = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(share, edges[:-1], edges[1:]))
