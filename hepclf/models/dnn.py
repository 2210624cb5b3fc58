"""Fully connected network (Keras 3, TensorFlow backend) with early stopping on validation AUC.

TensorFlow is imported only inside the functions that need it, so importing this module
(and ``hepclf.models``) stays cheap and building other models never loads it.

By default ``ensemble`` independent towers are trained side by side in one Keras model
(one input, one output head per tower) and their probabilities averaged: averaging a few
differently initialised networks is a cheap, reliable gain in AUC, and training them
together keeps the matrix products large, so the cost is well below ``ensemble`` separate
fits. Two classes: one logit per tower, sigmoid, binary cross-entropy. K > 2 classes: K
logits per tower, softmax, categorical cross-entropy; event weights weigh the loss either way.

Prediction calls the network through one traced ``tf.function`` on blocks of
``PREDICT_BATCH`` events: ``keras.Model.predict`` spends most of its time per call and per
batch outside the maths (~43k events/s for the default network on 2 cores).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from scipy.special import expit, softmax

from hepclf.errors import ConfigError
from hepclf.models.base import Classifier
from hepclf.models.derived import DerivedCache
from hepclf.models.dnn_batches import epoch_batches
from hepclf.models.rows import Rows, held_out, joined, refit_rounds

if TYPE_CHECKING:
    import keras

PREDICT_BATCH = 16_384
# batches run per call into the compiled train step: on CPU, Python and dispatch overhead
# per step is comparable to the maths of a small dense network, so this doubles throughput
STEPS_PER_EXECUTION = 32
VERBOSE_ENV = "HEPCLF_VERBOSE"
# fitted DNN -> its network's traced forward pass, tied to its network_; see DNN._forward
_FORWARD: DerivedCache[Any] = DerivedCache()


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


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow's C++ start-up logs to it.

    On a machine without a GPU, importing TensorFlow and listing devices prints lines such
    as "failed call to cuInit" and oneDNN notes from C++ before Python can filter them
    (``TF_CPP_MIN_LOG_LEVEL`` does not reach the ones written before absl logging starts).
    ``HEPCLF_VERBOSE=1`` shows them.
    """
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


TENSORFLOW_MISSING = (
    "the 'dnn' model needs TensorFlow, which is not installed here: install it with "
    "`pip install 'hepclf[dnn]'` (or `make demo`, which does), or leave 'dnn' out of the "
    "pipeline's 'models:'"
)


def tensorflow_installed() -> bool:
    """Whether TensorFlow and Keras can be imported (without importing them: that is slow)."""
    if sys.modules.get("tensorflow") is not None:
        return True
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))
    except (ImportError, ValueError):  # a finder that refuses it, or a None in sys.modules
        return False


def import_tensorflow() -> Any:
    """``tensorflow``, imported quietly (see ``_quiet_native_stderr``) on first use; a
    ``ConfigError`` naming the ``dnn`` extra when it is not installed."""
    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"]
    if not tensorflow_installed():
        raise ConfigError(TENSORFLOW_MISSING)
    if os.environ.get(VERBOSE_ENV) != "1":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # CUDA probing logs here, once per process
    if os.environ.get(VERBOSE_ENV) != "1":
        # e.g. retracing notes when many small models are fitted in one process (tuning)
        tf.get_logger().setLevel(logging.ERROR)
    return tf


def import_keras() -> Any:
    """``keras`` with its TensorFlow backend imported quietly first."""
    import_tensorflow()
    import keras

    return keras


def gpu_device() -> str | None:
    """Name of the first GPU TensorFlow sees, e.g. 'GPU:0 (NVIDIA H100)', or None.

    Also asks TensorFlow to grow its GPU memory as needed instead of taking all of it, so
    xgboost or a second process can share the card (possible only before first use).
    """
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: keep its setting
            tf.config.experimental.set_memory_growth(gpu, True)
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 ({details.get('device_name', 'unknown')})"


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


def weighted_auc(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> float:
    """ROC AUC; macro average of one-vs-rest AUCs for K > 2 classes."""
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1], sample_weight=w))
    return float(
        roc_auc_score(
            y,
            proba,
            sample_weight=w,
            multi_class="ovr",
            average="macro",
            labels=np.arange(proba.shape[1]),
        )
    )


class DNN(Classifier):
    """Dense network; ``network_`` is the fitted Keras model (its output: logits per tower),
    ``history_`` has loss, val_loss, val_auc and learning_rate per epoch."""

    name = "dnn"
    Params = DNNParams
    uses_validation = True
    extra = "dnn"

    @classmethod
    def installed(cls) -> bool:
        return tensorflow_installed()

    def __init__(
        self,
        *,
        layers: tuple[int, ...] | list[int] = (128, 128, 128),
        activation: str = "silu",
        kernel_initializer: str = "glorot_uniform",
        dropout: float = 0.3,
        l2: float = 1e-4,
        batch_norm: bool = False,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float | None = None,
        lr_schedule: str = "plateau",
        batch_size: int = 256,
        epochs: int = 200,
        patience: int = 12,
        ensemble: int = 3,
        mixed_precision: bool = False,
        validation_fraction: float = 0.2,
        refit: bool = False,
        seed: int = 42,
    ) -> None:
        self.layers = layers
        self.activation = activation
        self.kernel_initializer = kernel_initializer
        self.dropout = dropout
        self.l2 = l2
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.ensemble = ensemble
        self.mixed_precision = mixed_precision
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.seed = seed

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """As the base class, ``layers`` as a list like the YAML's (the default is a tuple,
        as scikit-learn wants immutable defaults)."""
        params = super().hyperparameters
        params["layers"] = list(params["layers"])
        return params

    def _fit_rows(self, hp: Any, train: Rows, val: Rows | None) -> None:
        if val is None:
            train, val = held_out(train, hp.validation_fraction, self.seed)
        history = self._train_network(hp, train, val, hp.epochs)
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.items()}
        if hp.refit:  # again on every event, for the epochs early stopping found
            best = int(np.argmax(self.history_["val_auc"])) + 1
            epochs = refit_rounds(best, len(train), len(val))
            rates = self.history_.get("learning_rate", [])[:best]
            self._train_network(hp, joined(train, val), None, epochs, rates)
            self.history_["refit_epochs"] = [float(epochs)]

    def _train_network(
        self,
        hp: Any,
        train: Rows,
        val: Rows | None,
        epochs: int,
        rates: list[float] | None = None,
    ) -> dict[str, list[float]]:
        """A new ``network_`` trained on ``train``: stopped early on ``val`` when given, else
        for ``epochs`` with the per-epoch learning ``rates`` of an earlier fit stretched
        over them (a refit)."""
        keras = import_keras()
        n_classes = len(self.classes_)
        gpu = gpu_device()
        self.device_ = gpu or "CPU"
        dtype = "float32"
        if hp.mixed_precision:
            if gpu:
                dtype = "mixed_bfloat16"
            else:
                warnings.warn(
                    "dnn: mixed_precision needs a GPU; training in float32.", stacklevel=3
                )
        keras.utils.set_random_seed(self.seed)
        self.network_ = build_network(train.n_features, hp, dtype, n_classes)
        steps = -(-len(train) // hp.batch_size)
        compile_network(self.network_, hp, steps, n_classes)
        callbacks: list[Any] = []
        if val is not None:
            callbacks += [
                self._validation_monitor(val),
                keras.callbacks.EarlyStopping(
                    "val_auc", mode="max", patience=hp.patience, restore_best_weights=True
                ),
            ]
            if hp.lr_schedule == "plateau":
                callbacks.append(
                    keras.callbacks.ReduceLROnPlateau(
                        "val_auc", mode="max", factor=0.5, patience=max(1, hp.patience // 3)
                    )
                )
        elif rates and hp.lr_schedule == "plateau":
            stretch = len(rates) / epochs
            callbacks.append(
                keras.callbacks.LearningRateScheduler(
                    lambda epoch: rates[min(int(epoch * stretch), len(rates) - 1)]
                )
            )
        batches = epoch_batches(
            import_tensorflow(), train, hp.batch_size, hp.ensemble, n_classes, self.seed
        )
        history = self.network_.fit(  # shuffled by epoch_batches
            batches, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0
        )
        return history.history

    def _validation_monitor(self, val: Rows) -> Any:
        """Callback adding the ensemble's weighted val_loss and val_auc to each epoch's logs.

        One prediction pass per epoch serves both numbers, so early stopping on AUC costs no
        more than Keras's own validation loss would.
        """
        keras = import_keras()
        from sklearn.metrics import log_loss

        model = self

        class ValidationMonitor(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                logs = {} if logs is None else logs
                proba = np.concatenate([model._predict_proba(x) for _, x in val.blocks()])
                labels = np.arange(proba.shape[1])
                logs["val_loss"] = log_loss(val.y, proba, sample_weight=val.w, labels=labels)
                logs["val_auc"] = weighted_auc(val.y, proba, val.w)

        return ValidationMonitor()

    def _forward(self) -> Any:
        """The network's inference pass as one traced ``tf.function`` (built once per network,
        kept in :mod:`hepclf.models.derived`, tied to ``network_``).

        Traced with a fixed input signature, so any batch length reuses the same graph.
        """
        return _FORWARD.get(self, self.network_, self._trace_forward)

    def _trace_forward(self) -> Any:
        tf = import_tensorflow()
        network = self.network_
        spec = tf.TensorSpec((None, self.n_features_in_), tf.float32)

        @tf.function(input_signature=[spec], reduce_retracing=True)
        def forward(x: Any) -> Any:
            return tf.cast(network(x, training=False), tf.float32)

        return forward

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        forward = self._forward()
        logits = [
            forward(X[i : i + PREDICT_BATCH]).numpy() for i in range(0, len(X), PREDICT_BATCH)
        ]
        return ensemble_proba(np.concatenate(logits) if len(logits) != 1 else logits[0])

    def _save_model(self, directory: Path) -> None:
        self.network_.save(directory / "dnn.keras")

    def _load_model(self, directory: Path) -> None:
        keras = import_keras()
        self.network_ = keras.models.load_model(directory / "dnn.keras", compile=False)
