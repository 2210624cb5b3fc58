"""Fully connected network (Keras 3, TensorFlow backend) with early stopping on validation AUC.

TensorFlow is imported only inside the functions that need it, so importing this module
(and ``hepclf.models``) stays cheap and building other models never loads it.

By default ``ensemble`` independent towers are trained side by side in one Keras model
(one input, one logit per tower) and their probabilities averaged: averaging a few
differently initialised networks is a cheap, reliable gain in AUC, and training them
together keeps the matrix products large, so the cost is well below ``ensemble`` separate
fits.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from scipy.special import expit

from hepclf.models.base import Classifier, check_inputs, resolve_validation, two_columns

if TYPE_CHECKING:
    import keras

PREDICT_BATCH = 16_384
# batches run per call into the compiled train step: on CPU, Python and dispatch overhead
# per step is comparable to the maths of a small dense network, so this doubles throughput
STEPS_PER_EXECUTION = 32


class DNNParams(BaseModel):
    """Defaults chosen on HIGGS-like data (28 features, 10^4-10^5 events) on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")

    layers: list[PositiveInt] = Field([128, 128, 128], min_length=1, description="hidden widths")
    activation: Literal["relu", "elu", "selu", "gelu", "silu", "tanh"] = "silu"
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout rate after each hidden layer")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on the hidden kernels")
    batch_norm: bool = Field(False, description="batch normalisation before each activation")
    learning_rate: float = Field(1e-3, gt=0, description="initial Adam learning rate")
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


def gpu_device() -> str | None:
    """Name of the first GPU TensorFlow sees, e.g. 'GPU:0 (NVIDIA H100)', or None.

    Also asks TensorFlow to grow its GPU memory as needed instead of taking all of it, so
    xgboost or a second process can share the card (possible only before first use).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: keep its setting
            tf.config.experimental.set_memory_growth(gpu, True)
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 ({details.get('device_name', 'unknown')})"


def build_network(n_features: int, hp: DNNParams, dtype: str = "float32") -> keras.Model:
    """The network: ``hp.ensemble`` towers of Dense layers, one output logit per tower."""
    import keras

    inputs = keras.Input((n_features,))
    # the loss averages the towers, so each tower's share of the L2 penalty is divided too
    l2 = keras.regularizers.L2(hp.l2 / hp.ensemble) if hp.l2 else None
    logits = []
    for _ in range(hp.ensemble):
        x = inputs
        for width in hp.layers:
            x = keras.layers.Dense(width, kernel_regularizer=l2, dtype=dtype)(x)
            if hp.batch_norm:
                x = keras.layers.BatchNormalization(dtype=dtype)(x)
            x = keras.layers.Activation(hp.activation, dtype=dtype)(x)
            if hp.dropout:
                x = keras.layers.Dropout(hp.dropout, dtype=dtype)(x)
        logits.append(keras.layers.Dense(1, dtype="float32")(x))
    outputs = keras.layers.Concatenate()(logits) if len(logits) > 1 else logits[0]
    return keras.Model(inputs, outputs)


def compile_network(model: keras.Model, hp: DNNParams, steps_per_epoch: int) -> None:
    """Adam on binary cross-entropy from logits, with the chosen learning-rate schedule;
    several batches per compiled call keep the Keras step, not Python, the bottleneck."""
    import keras

    learning_rate: Any = hp.learning_rate
    if hp.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=hp.epochs * steps_per_epoch, alpha=0.01
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        steps_per_execution=STEPS_PER_EXECUTION,
    )


def _validation_monitor(X_val: np.ndarray, y_val: np.ndarray, w_val: np.ndarray) -> Any:
    """Callback adding the ensemble's weighted val_loss and val_auc to each epoch's logs.

    One prediction pass per epoch serves both numbers, so early stopping on AUC costs no
    more than Keras's own validation loss would.
    """
    import keras
    from sklearn.metrics import log_loss, roc_auc_score

    class ValidationMonitor(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = {} if logs is None else logs
            score = ensemble_score(self.model.predict(X_val, PREDICT_BATCH, verbose=0))
            logs["val_loss"] = log_loss(y_val, score, sample_weight=w_val, labels=[0, 1])
            logs["val_auc"] = roc_auc_score(y_val, score, sample_weight=w_val)

    return ValidationMonitor()


def ensemble_score(logits: np.ndarray) -> np.ndarray:
    """Average of the towers' sigmoid probabilities."""
    return expit(np.asarray(logits, dtype=np.float64)).mean(axis=1)


class DNN(Classifier):
    """Dense network; ``history_`` has loss, val_loss, val_auc and learning_rate per epoch."""

    name = "dnn"
    Params = DNNParams
    hp: DNNParams

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        w_val: np.ndarray | None = None,
    ) -> Self:
        import keras

        p = self.hp
        X, y, w, X_val, y_val, w_val = resolve_validation(
            X, y, sample_weight, X_val, y_val, w_val, p.validation_fraction, self.seed
        )
        gpu = gpu_device()
        self.device_ = gpu or "CPU"
        dtype = "float32"
        if p.mixed_precision:
            if gpu:
                dtype = "mixed_bfloat16"
            else:
                warnings.warn(
                    "dnn: mixed_precision needs a GPU; training in float32.", stacklevel=2
                )
        keras.utils.set_random_seed(self.seed)
        self._model = build_network(X.shape[1], p, dtype)
        steps = -(-len(X) // p.batch_size)
        compile_network(self._model, p, steps)
        callbacks = [
            _validation_monitor(X_val, y_val, w_val),
            keras.callbacks.EarlyStopping(
                "val_auc", mode="max", patience=p.patience, restore_best_weights=True
            ),
        ]
        if p.lr_schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    "val_auc", mode="max", factor=0.5, patience=max(1, p.patience // 3)
                )
            )
        # labels repeated per tower; weights as float32 so Keras does not cast every batch
        targets = np.repeat(y[:, None].astype(np.float32), p.ensemble, axis=1)
        history = self._model.fit(
            X,
            targets,
            sample_weight=w.astype(np.float32),
            batch_size=p.batch_size,
            epochs=p.epochs,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = check_inputs(X)[0]
        return two_columns(ensemble_score(self._model.predict(X, PREDICT_BATCH, verbose=0)))

    def _save_model(self, directory: Path) -> None:
        self._model.save(directory / "dnn.keras")

    def _load_model(self, directory: Path) -> None:
        import keras

        self._model = keras.models.load_model(directory / "dnn.keras", compile=False)
