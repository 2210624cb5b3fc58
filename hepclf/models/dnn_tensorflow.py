"""TensorFlow for the dnn: imported only when used, quietly, and the GPU it finds.

Importing this module does not import TensorFlow, so ``hepclf.models`` stays cheap and
building other models never loads it; the core install has no TensorFlow at all, and asking
for the dnn there is an error naming the ``dnn`` extra.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from hepclf.runtime.errors import ConfigError

VERBOSE_ENV = "HEPCLF_VERBOSE"


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
