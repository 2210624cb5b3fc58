"""The dnn's network: its settings, the towers of Dense layers, optimiser, loss and the
probabilities of the towers' logits.

``ensemble`` independent towers are built side by side in one Keras model (one input, one
output head per tower) and their probabilities averaged: averaging a few differently
initialised networks is a cheap, reliable gain in AUC, and training them together keeps the
matrix products large, so the cost is well below ``ensemble`` separate fits. Two classes:
one logit per tower, sigmoid, binary cross-entropy. K > 2 classes: K logits per tower,
softmax, categorical cross-entropy; event weights weigh the loss either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from scipy.special import expit, softmax

from hepclf.models.dnn_tensorflow import import_keras

if TYPE_CHECKING:
    import keras

# batches run per call into the compiled train step: on CPU, Python and dispatch overhead
# per step is comparable to the maths of a small dense network, so this doubles throughput
STEPS_PER_EXECUTION = 32


class DNNParams(BaseModel):
    """Defaults chosen on HIGGS-like data (28 features, 10^4-10^5 events) on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")

    layers: list[PositiveInt] = Field([128, 128, 128], min_length=1, description="hidden widths")
    activation: Literal["relu", "elu", "selu", "gelu", "silu", "tanh"] = "silu"
    kernel_initializer: Literal[
        "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"
    ] = Field("glorot_uniform", description="hidden and output weights (He suits relu)")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout rate after each hidden layer")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on the hidden kernels")
    batch_norm: bool = Field(False, description="batch normalisation before each activation")
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, description="initial learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only: momentum")
    nesterov: bool = Field(False, description="sgd only: Nesterov momentum")
    weight_decay: float | None = Field(
        None, ge=0, description="decoupled weight decay; None: AdamW's 0.004, none for the others"
    )
    lr_schedule: Literal["plateau", "cosine", "constant"] = Field(
        "plateau", description="plateau: halve when val AUC stalls; cosine: decay over epochs"
    )
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(200, ge=1, description="maximum epochs")
    patience: int = Field(12, ge=1, description="epochs without val AUC gain before stopping")
    ensemble: int = Field(3, ge=1, le=16, description="towers trained together and averaged")
    mixed_precision: bool = Field(False, description="bfloat16 compute; used only on a GPU")
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="held out for early stopping when no validation set is given"
    )
    refit: bool = Field(
        False,
        description="after early stopping, train again on the training and validation events "
        "for the epochs found, scaled to the larger sample",
    )


def build_network(
    n_features: int, hp: DNNParams, dtype: str = "float32", n_classes: int = 2
) -> keras.Model:
    """``hp.ensemble`` towers of Dense layers; logits (n, towers) for two classes, else
    (n, towers, n_classes)."""
    keras = import_keras()

    inputs = keras.Input((n_features,))
    # the loss averages the towers, so each tower's share of the L2 penalty is divided too
    l2 = keras.regularizers.L2(hp.l2 / hp.ensemble) if hp.l2 else None
    n_out = 1 if n_classes == 2 else n_classes
    init = hp.kernel_initializer
    logits = []
    for _ in range(hp.ensemble):
        x = inputs
        for width in hp.layers:
            x = keras.layers.Dense(
                width, kernel_initializer=init, kernel_regularizer=l2, dtype=dtype
            )(x)
            if hp.batch_norm:
                x = keras.layers.BatchNormalization(dtype=dtype)(x)
            x = keras.layers.Activation(hp.activation, dtype=dtype)(x)
            if hp.dropout:
                x = keras.layers.Dropout(hp.dropout, dtype=dtype)(x)
        logits.append(keras.layers.Dense(n_out, kernel_initializer=init, dtype="float32")(x))
    outputs = keras.layers.Concatenate()(logits) if len(logits) > 1 else logits[0]
    if n_out > 1:
        outputs = keras.layers.Reshape((hp.ensemble, n_out))(outputs)
    return keras.Model(inputs, outputs)


def make_optimizer(hp: DNNParams, learning_rate: Any) -> Any:
    """The chosen Keras optimiser; only the arguments that apply to it are passed."""
    keras = import_keras()

    decay = {} if hp.weight_decay is None else {"weight_decay": hp.weight_decay}
    if hp.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=hp.momentum, nesterov=hp.nesterov, **decay
        )
    optimizer = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }[hp.optimizer]
    return optimizer(learning_rate, **decay)


def compile_network(
    model: keras.Model, hp: DNNParams, steps_per_epoch: int, n_classes: int
) -> None:
    """Cross-entropy from logits (binary or categorical), the chosen optimiser and
    learning-rate schedule; several batches per compiled call keep the Keras step, not
    Python, the bottleneck."""
    keras = import_keras()

    learning_rate: Any = hp.learning_rate
    if hp.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=hp.epochs * steps_per_epoch, alpha=0.01
        )
    if n_classes == 2:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=make_optimizer(hp, learning_rate),
        loss=loss,
        steps_per_execution=STEPS_PER_EXECUTION,
    )


def ensemble_proba(logits: np.ndarray) -> np.ndarray:
    """(n, K) probabilities: the towers' sigmoid (two classes) or softmax averaged."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 2:
        signal = expit(logits).mean(axis=1)
        return np.column_stack([1.0 - signal, signal])
    return softmax(logits, axis=2).mean(axis=1)
