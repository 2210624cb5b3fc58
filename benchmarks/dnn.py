"""Training throughput of hepclf's dnn against a bare Keras ``model.fit`` of the same network.

Both train the default network (``hepclf.models.dnn_network.build_network``) on the same arrays with
the same batch size and validation set; the bare one is compiled and fitted with Keras's
defaults. Early stopping is disabled so epoch counts match. Each fit is timed end to end
for 1 and for 1 + ``--epochs`` epochs (best of ``--repeats``); the difference is the
steady per-epoch cost, without the one-off build and tracing.
Goal: ratio >= 0.9.

Prediction: events/s through ``DNN.predict_proba`` (what scoring and the pyfunc call) for
the default network, beside a bare traced forward pass of the same Keras network on large
batches and Keras's ``model.predict``. Goal: >= 300k events/s on 2 cores, ratio to the bare
forward pass >= 0.9.
Run: .venv/bin/python benchmarks/dnn.py [--events 50000] [--epochs 5] [--predict-events 500000]
[--predict-only]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hepclf.models import build_model
from hepclf.models.dnn_network import DNNParams, build_network
from hepclf.models.dnn_tensorflow import gpu_device


def bare_keras_fit(X, y, w, X_val, y_val, w_val, hp: DNNParams, validate: bool) -> float:
    """Seconds for the plain Keras recipe: build, compile, ``model.fit`` on numpy arrays."""
    import keras

    start = time.perf_counter()
    model = build_network(X.shape[1], hp)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    validation = (X_val, np.repeat(y_val[:, None], hp.ensemble, axis=1), w_val)
    model.fit(
        X,
        np.repeat(y[:, None], hp.ensemble, axis=1),
        sample_weight=w,
        batch_size=hp.batch_size,
        epochs=hp.epochs,
        validation_data=validation if validate else None,
        verbose=0,
    )
    return time.perf_counter() - start


def hepclf_fit(X, y, w, X_val, y_val, w_val, hp: DNNParams) -> float:
    """Seconds for ``build_model('dnn').fit`` with the same validation set."""
    start = time.perf_counter()
    model = build_model("dnn", hp.model_dump(), seed=0)
    model.fit(X, y, w, X_val=X_val, y_val=y_val, w_val=w_val)
    return time.perf_counter() - start


def best_rate(n_events: int, run, repeats: int = 3) -> float:
    """Events per second of the fastest of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return n_events / min(times)


def prediction(n_events: int) -> None:
    """Print predict_proba, bare forward pass and Keras predict throughput."""
    from hepclf.models.dnn_tensorflow import import_tensorflow

    tf = import_tensorflow()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_events, 28)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=n_events) > 0).astype(int)
    model = build_model("dnn", {"epochs": 1}, seed=0).fit(X[:5000], y[:5000])
    network = model.network_
    spec = tf.TensorSpec((None, 28), tf.float32)
    forward = tf.function(lambda x: network(x, training=False), input_signature=[spec])
    block = 65_536

    def bare() -> None:
        for i in range(0, n_events, block):
            forward(X[i : i + block]).numpy()

    bare()
    model.predict_proba(X[:1000])  # traces the model's own forward pass
    rates = {
        "hepclf DNN.predict_proba": best_rate(n_events, lambda: model.predict_proba(X)),
        "bare traced forward pass": best_rate(n_events, bare),
        "keras model.predict (batch 16384)": best_rate(
            n_events, lambda: network.predict(X, 16_384, verbose=0), repeats=2
        ),
    }
    load = os.getloadavg()[0]
    print(f"prediction, default network, {n_events} events, 28 features")
    print(
        f"(load average {load:.1f} on {os.cpu_count()} cores: rates are only comparable when idle)"
    )
    for name, value in rates.items():
        print(f"{name:34s} {value:9.0f} events/s")
    cpu = time.process_time()
    model.predict_proba(X)
    cpu = time.process_time() - cpu
    print(f"predict_proba: {n_events / cpu:.0f} events per CPU-second (all threads summed)")
    ratio = rates["hepclf DNN.predict_proba"] / rates["bare traced forward pass"]
    print(f"ratio predict_proba / bare forward pass: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="training events")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after the first")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--predict-events", type=int, default=500_000)
    parser.add_argument("--predict-only", action="store_true", help="skip the training part")
    args = parser.parse_args()
    prediction(args.predict_events)
    if args.predict_only:
        return

    rng = np.random.default_rng(0)
    n_val = args.events // 4
    X = rng.normal(size=(args.events + n_val, 28)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) + X[:, 5] * X[:, 6] + rng.normal(size=len(X)) > 0).astype(np.float32)
    w = np.ones(len(X), dtype=np.float32)
    arrays = (X[n_val:], y[n_val:], w[n_val:], X[:n_val], y[:n_val], w[:n_val])
    short, long = (DNNParams(epochs=e, patience=e + 1) for e in (1, 1 + args.epochs))

    runs = {
        "hepclf dnn": lambda hp: hepclf_fit(*arrays, hp),
        "bare keras fit, validation_data": lambda hp: bare_keras_fit(*arrays, hp, validate=True),
        "bare keras fit, no validation": lambda hp: bare_keras_fit(*arrays, hp, validate=False),
    }
    runs["hepclf dnn"](short)  # imports TensorFlow and warms it up
    times: dict[str, dict[int, list[float]]] = {name: {1: [], 2: []} for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name][1].append(run(short))
            times[name][2].append(run(long))
    rate = {name: args.events * args.epochs / (min(t[2]) - min(t[1])) for name, t in times.items()}

    print(
        f"{args.events} training + {n_val} validation events, 28 features, batch "
        f"{short.batch_size}, layers {short.layers} x {short.ensemble} towers, "
        f"{gpu_device() or 'CPU'}"
    )
    for name, value in rate.items():
        print(f"{name:34s} {value:9.0f} events/s per epoch")
    ours = rate["hepclf dnn"]
    print(
        f"ratio hepclf / bare keras: {ours / rate['bare keras fit, validation_data']:.2f} "
        f"(vs bare keras without validation: {ours / rate['bare keras fit, no validation']:.2f})"
    )


if __name__ == "__main__":
    main()
