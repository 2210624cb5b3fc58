"""The AdaBoost forest as a compiled shared library (treelite model -> tl2cgen C code -> gcc).

Walking 850 trees with numpy fancy indexing costs two index arrays per tree level and
event (~33k events/s); compiled if/else code walks each event's trees in registers. The
library is built once per forest (a few seconds) and kept in a cache folder keyed by a hash
of the forest, so every later process that loads the same model reuses it.

The compiled forest sums, per event, ``alpha * h`` (two classes, h = +-1) or the one-hot
class votes times ``alpha`` (K > 2) in double precision, on double inputs (float32
features and cuts are exact in double), so it takes every event down the same path as the
numpy walk in :class:`hepclf.models.bdt.BDT` and agrees with it to rounding of the sum.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np

CACHE_ENV = "HEPCLF_COMPILED_CACHE"
FORMAT_VERSION = "1"  # bump when the generated model changes meaning
# quantize: compare small integer bin indices instead of doubles (same paths, measured
# faster); parallel_comp: several translation units, so gcc uses every core
COMPILE_PARAMS = {"quantize": 1, "parallel_comp": 8}
ANNOTATE_EVENTS = 20_000


class CompileError(RuntimeError):
    """The forest could not be compiled (no compiler, no treelite/tl2cgen, build failure)."""


def cache_dir() -> Path:
    """``$HEPCLF_COMPILED_CACHE``, else a per-user folder in the system temp directory."""
    default = Path(tempfile.gettempdir()) / f"hepclf-compiled-{os.getuid()}"
    return Path(os.environ.get(CACHE_ENV, default))


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence Python prints and the native libraries' own writes to stderr meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull, redirect_stdout(io.StringIO()):
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class CompiledForest:
    """A loaded library: ``predict(X)`` returns the alpha-weighted votes."""

    def __init__(self, libpath: Path, n_classes: int, n_threads: int | None = None) -> None:
        import tl2cgen

        self.libpath = libpath
        self.n_classes = n_classes
        with redirect_stdout(io.StringIO()):  # a note on the bundled treelite's version
            self._predictor = tl2cgen.Predictor(libpath, nthread=n_threads or os.cpu_count() or 1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Votes (n,) for two classes, (n, K) otherwise."""
        import tl2cgen

        if len(X) == 0:
            return np.zeros(0) if self.n_classes == 2 else np.zeros((0, self.n_classes))
        dmat = tl2cgen.DMatrix(np.ascontiguousarray(X, dtype=np.float64), dtype="float64")
        out = np.asarray(self._predictor.predict(dmat, pred_margin=True), dtype=np.float64)
        return out.reshape(len(X)) if self.n_classes == 2 else out.reshape(len(X), -1)


def forest_key(*arrays: np.ndarray, n_classes: int, n_features: int) -> str:
    """Hash of the forest's arrays and of the library versions that compile it."""
    import tl2cgen
    import treelite

    digest = hashlib.sha256()
    meta = f"{FORMAT_VERSION}:{treelite.__version__}:{tl2cgen.__version__}:{n_classes}:{n_features}"
    digest.update(meta.encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:32]


def build_model(
    feature: np.ndarray,
    threshold: np.ndarray,
    leaf_class: np.ndarray,
    alpha: np.ndarray,
    n_classes: int,
    n_features: int,
):
    """The forest as a treelite model; unreachable and undivided subtrees are folded away.

    Inner node ``h`` sends ``x[feature] < threshold`` to ``2h+1``, else to ``2h+2``; a
    threshold of +inf sends everything left, so only the left subtree is kept, and a
    subtree whose leaves all vote for one class becomes that leaf.
    """
    from treelite.model_builder import Metadata, ModelBuilder, PostProcessorFunc, TreeAnnotation

    n_trees, n_inner = threshold.shape
    two = n_classes == 2
    builder = ModelBuilder(
        threshold_type="float64",
        leaf_output_type="float64",
        metadata=Metadata(
            num_feature=n_features,
            task_type="kRegressor" if two else "kMultiClf",
            average_tree_output=False,
            num_target=1,
            num_class=[1 if two else n_classes],
            leaf_vector_shape=(1, 1 if two else n_classes),
        ),
        tree_annotation=TreeAnnotation(
            num_tree=n_trees, target_id=[0] * n_trees, class_id=[0 if two else -1] * n_trees
        ),
        postprocessor=PostProcessorFunc(name="identity" if two else "identity_multiclass"),
        base_scores=[0.0] * (1 if two else n_classes),
    )

    def leaf_value(cls: int, a: float) -> float | list[float]:
        if two:
            return float(a * (2 * cls - 1))
        vote = [0.0] * n_classes
        vote[cls] = float(a)
        return vote

    for t in range(n_trees):
        builder.start_tree()
        _emit_tree(builder, feature[t], threshold[t], leaf_class[t], n_inner, leaf_value, alpha[t])
        builder.end_tree()
    return builder.commit()


def _emit_tree(builder, feat, thr, leaves, n_inner, leaf_value, a) -> None:
    """Emit one tree's nodes depth-first with keys 0, 1, 2, ... (children before keys used)."""
    counter = iter(range(1 << 30))

    def collapse(h: int) -> int:
        while h < n_inner and np.isinf(thr[h]):
            h = 2 * h + 1
        return h

    def classes(h: int) -> set[int]:
        h = collapse(h)
        if h >= n_inner:
            return {int(leaves[h - n_inner])}
        return classes(2 * h + 1) | classes(2 * h + 2)

    def emit(h: int, key: int) -> None:
        h = collapse(h)
        reached = classes(h)
        builder.start_node(key)
        if len(reached) == 1:
            builder.leaf(leaf_value(reached.pop(), a))
            builder.end_node()
            return
        left, right = next(counter), next(counter)
        builder.numerical_test(
            int(feat[h]), float(thr[h]), default_left=True, opname="<",
            left_child_key=left, right_child_key=right,
        )  # fmt: skip
        builder.end_node()
        emit(2 * h + 1, left)
        emit(2 * h + 2, right)

    emit(0, next(counter))


def compile_forest(
    feature: np.ndarray,
    threshold: np.ndarray,
    leaf_class: np.ndarray,
    alpha: np.ndarray,
    n_classes: int,
    n_features: int,
    sample: np.ndarray | None = None,
) -> CompiledForest:
    """Load the forest's library from the cache, compiling it first if it is not there.

    ``sample``: events like those to be scored; up to ``ANNOTATE_EVENTS`` of them tell the
    compiler which branch of every cut is the likely one (measured ~1.5x faster); they
    change the speed only, never the results.
    """
    try:
        import tl2cgen
        from filelock import FileLock
    except ImportError as exc:
        raise CompileError(f"{exc.name} is not installed") from None
    if shutil.which("gcc") is None:
        raise CompileError("no C compiler (gcc) on PATH")
    key = forest_key(
        feature, threshold, leaf_class, alpha, n_classes=n_classes, n_features=n_features
    )
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        libpath = folder / f"bdt-{key}.so"
        with FileLock(str(folder / f"bdt-{key}.lock")):
            if not libpath.is_file():
                model = build_model(feature, threshold, leaf_class, alpha, n_classes, n_features)
                # tl2cgen prints progress notes, and its bundled treelite a note on the
                # version the model was built with: not for the user's terminal
                with tempfile.TemporaryDirectory(dir=folder) as tmp, quiet_native_output():
                    built = Path(tmp) / libpath.name
                    params = dict(COMPILE_PARAMS)
                    if sample is not None and len(sample):
                        annotation = Path(tmp) / "branches.json"
                        events = np.asarray(sample[:ANNOTATE_EVENTS], dtype=np.float64)
                        tl2cgen.annotate_branch(
                            model, tl2cgen.DMatrix(events, dtype="float64"), annotation
                        )
                        params["annotate_in"] = str(annotation)
                    tl2cgen.export_lib(
                        model, toolchain="gcc", libpath=built, params=params,
                        nthread=os.cpu_count(),
                    )  # fmt: skip
                    os.replace(built, libpath)
        return CompiledForest(libpath, n_classes)
    except (OSError, tl2cgen.TL2cgenError, RuntimeError) as exc:
        raise CompileError(f"compiling the forest failed: {exc}") from exc
