"""Training events as rows of one feature table, normalised block by block on the way in.

The feature table is the only full-size array a training run holds. A model that can
stream (xgb's ``QuantileDMatrix``, the dnn's batches, Fisher's sufficient statistics) reads
normalised blocks of the rows it trains on; one that keeps its training set in memory (bdt,
rf, svm) asks for the array of at most ``max_train_events`` of them. Index arrays select
the rows, so a fold or a validation part costs 8 bytes per event instead of a copy of its
features.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from sklearn.model_selection import train_test_split

BLOCK_EVENTS = 65_536
"""Events normalised at a time: ~5 MB of float32 at 19 features, large enough for speed."""

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Rows:
    """Rows ``index`` of the raw features ``X`` (all rows when None), their labels ``y`` and
    weights ``w``; ``transform`` (the fitted normaliser) maps a raw block to model inputs.

    What a model reads, bound to the feature array itself. A fit task names its rows with
    :class:`hepclf.training.plan.FitRows` instead (indices and training weights only), so
    that the task stays small and picklable and its rows may live in this process or in a
    cluster's partitions; the task's source binds them to its features as ``Rows`` when the
    task runs (:meth:`hepclf.training.plan.TableSource.rows`).
    """

    X: np.ndarray
    index: np.ndarray | None
    y: np.ndarray
    w: np.ndarray | None = None
    transform: Transform | None = None

    @classmethod
    def of(cls, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> Rows:
        """Rows of an array already holding model inputs (no index, no transform)."""
        return cls(X, None, np.asarray(y), None if w is None else np.asarray(w))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def block(self, start: int, stop: int) -> np.ndarray:
        """Model inputs of rows ``start:stop``: float32, C-ordered, a new array or a view."""
        raw = self.X[start:stop] if self.index is None else self.X[self.index[start:stop]]
        out = raw if self.transform is None else self.transform(raw)
        return np.ascontiguousarray(out, dtype=np.float32)

    def blocks(self, size: int = BLOCK_EVENTS) -> Iterator[tuple[slice, np.ndarray]]:
        """(positions, inputs) of consecutive blocks of at most ``size`` rows."""
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            yield slice(start, stop), self.block(start, stop)

    def array(self) -> np.ndarray:
        """All rows' model inputs as one float32 C-ordered array (for models that keep their
        training set in memory); no copy when the rows already are such an array."""
        if len(self) <= BLOCK_EVENTS or (self.index is None and self.transform is None):
            return self.block(0, len(self))
        out = np.empty((len(self), self.n_features), dtype=np.float32)
        for rows, block in self.blocks():
            out[rows] = block
        return out

    def take(self, positions: np.ndarray) -> Rows:
        """The rows at ``positions`` (into these rows), composing index arrays, not copying
        features."""
        positions = np.asarray(positions)
        index = positions if self.index is None else self.index[positions]
        w = None if self.w is None else self.w[positions]
        return replace(self, index=index, y=self.y[positions], w=w)

    def with_labels(self, y: np.ndarray, w: np.ndarray | None) -> Rows:
        """The same rows with other labels and weights (e.g. encoded, normalised)."""
        return replace(self, y=y, w=w)


def held_out(train: Rows, fraction: float, seed: int) -> tuple[Rows, Rows]:
    """A stratified, seeded draw of ``fraction`` of the rows for early stopping, and the rest.

    The same draw as ``train_test_split`` of the arrays gave before rows existed, so a fit
    on arrays keeps its former numbers.
    """
    fit, val = train_test_split(
        np.arange(len(train)), test_size=fraction, stratify=train.y, random_state=seed
    )
    return train.take(fit), train.take(val)


def capped(train: Rows, max_events: int | None, model: str, seed: int) -> Rows:
    """At most ``max_events`` rows: a stratified, seeded subsample above it, with a warning
    (for models that keep their training set in memory, or scale worse than linearly)."""
    if max_events is None or len(train) <= max_events:
        return train
    warnings.warn(
        f"{model}: training on a stratified subsample of {max_events} of {len(train)} events "
        "(max_train_events).",
        stacklevel=4,
    )
    keep, _ = train_test_split(
        np.arange(len(train)), train_size=max_events, stratify=train.y, random_state=seed
    )
    return train.take(keep)


def joined(first: Rows, second: Rows) -> Rows:
    """One set of rows holding both (for a refit on fit and validation events); the index
    arrays are joined when both index the same table, the arrays otherwise."""
    assert first.w is not None and second.w is not None
    y, w = np.concatenate([first.y, second.y]), np.concatenate([first.w, second.w])
    if first.X is second.X and first.transform is second.transform:
        every = np.arange(len(first.X))
        index = [every if r.index is None else r.index for r in (first, second)]
        return Rows(first.X, np.concatenate(index), y, w, first.transform)
    return Rows.of(np.concatenate([first.array(), second.array()]), y, w)


def refit_rounds(rounds: int, n_fit: int, n_validation: int) -> int:
    """Rounds (or epochs) for a refit on fit + validation events: those early stopping found
    on the fit events, scaled by how many more events the refit learns from."""
    return max(1, round(rounds * (n_fit + n_validation) / n_fit))
