"""Shuffled training batches for the dnn, gathered from rows of the table as Keras asks.

Keras given NumPy arrays converts them to tensors whole: one more copy of the training
rows (plus the per-tower labels). Here each epoch draws a seeded permutation of the rows
and a generator gathers and normalises ``GATHER_BATCHES`` batches at a time (one NumPy
call per block, not per batch, so Python stays out of the step); ``tf.data`` splits each
block back into batches and reads the next block ahead while the network trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from hepclf.models.rows import Rows

GATHER_BATCHES = 64
"""Batches gathered per generator call: 64 x 256 events = 1.2 MB at 19 features."""


def epoch_batches(
    tf: Any, train: Rows, batch_size: int, towers: int, n_classes: int, seed: int
) -> Any:
    """A ``tf.data.Dataset`` of (inputs, per-tower targets, weights) batches, reshuffled
    every epoch (seeded: the k-th epoch's order is the same in every run). ``tf`` is the
    module the caller imported quietly (``hepclf.models.dnn_tensorflow.import_tensorflow``)."""
    rng = np.random.default_rng(seed)
    assert train.w is not None
    weights = train.w.astype(np.float32)
    # binary: one float target per tower; categorical: one class index per tower, whose
    # (events, towers) loss Keras wants weights of the same shape for
    y_type = np.float32 if n_classes == 2 else np.int32
    per_tower_weights = n_classes > 2
    block = batch_size * GATHER_BATCHES

    def shaped(a: np.ndarray, n_batches: int) -> np.ndarray:
        return a.reshape(n_batches, -1, *a.shape[1:])

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        order = rng.permutation(len(train))
        for start in range(0, len(order), block):
            pick = order[start : start + block]
            full = len(pick) // batch_size * batch_size
            for part in (pick[:full], pick[full:]):  # whole batches, then the remainder
                if not len(part):
                    continue
                n_batches = len(part) // batch_size if len(part) >= batch_size else 1
                rows = train.take(part)
                x = rows.block(0, len(rows))
                y = np.repeat(train.y[part].astype(y_type)[:, None], towers, axis=1)
                w = weights[part]
                if per_tower_weights:
                    w = np.repeat(w[:, None], towers, axis=1)
                yield shaped(x, n_batches), shaped(y, n_batches), shaped(w, n_batches)

    y_dtype = tf.float32 if n_classes == 2 else tf.int32
    w_shape = (None, None, towers) if per_tower_weights else (None, None)
    signature = (
        tf.TensorSpec((None, None, train.n_features), tf.float32),
        tf.TensorSpec((None, None, towers), y_dtype),
        tf.TensorSpec(w_shape, tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(blocks, output_signature=signature).unbatch()
    # Keras then knows an epoch's length (every event once, the last batch possibly short)
    steps = -(-len(train) // batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)
