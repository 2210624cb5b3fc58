"""Fully connected network (Keras 3, TensorFlow backend) with early stopping on validation AUC.

The estimator: training from rows of the table (batches from :mod:`.dnn_batches`), early
stopping and the optional refit, prediction and saving. The network itself and its settings
are in :mod:`.dnn_network`; TensorFlow is imported on first use (:mod:`.dnn_tensorflow`).

Prediction calls the network through one traced ``tf.function`` on blocks of
``PREDICT_BATCH`` events: ``keras.Model.predict`` spends most of its time per call and per
batch outside the maths (~43k events/s for the default network on 2 cores).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hepclf.models.base import Classifier
from hepclf.models.derived import DerivedCache
from hepclf.models.dnn_batches import epoch_batches
from hepclf.models.dnn_network import DNNParams, build_network, compile_network, ensemble_proba
from hepclf.models.dnn_tensorflow import (
    gpu_device,
    import_keras,
    import_tensorflow,
    tensorflow_installed,
)
from hepclf.models.rows import Rows, held_out, joined, refit_rounds

PREDICT_BATCH = 16_384
# fitted DNN -> its network's traced forward pass, tied to its network_; see DNN._forward
_FORWARD: DerivedCache[Any] = DerivedCache()


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
