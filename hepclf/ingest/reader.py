"""Open ROOT files and iterate over their trees in chunks, with errors a physicist can act on.

A file that cannot be read is described by what is wrong with it, from its own header:
not a ROOT file at all, a truncated one (shorter than the header says), or one with
corrupted bytes (a compressed block that no longer decompresses, named by its branch).
"""

from __future__ import annotations

import lzma
import os
import queue
import threading
import zlib
from collections.abc import Iterator
from typing import Any, TypeVar

import awkward as ak
import uproot

from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import with_hints

T = TypeVar("T")
TREE_CLASSES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")
REWRITE_HINT = (
    "If the file was written with a compression algorithm or a class that uproot cannot read, "
    "rewrite it with ROOT (e.g. `hadd -f1 new.root old.root` or TTree::CloneTree) and try again."
)
DAMAGED_HINT = (
    "The file is damaged (a disk or transfer error): copy it again from its source (compare "
    "checksums) or produce it again."
)
INCOMPLETE_HINT = (
    "It was probably cut short by an interrupted copy or a job that stopped while writing it: "
    "copy it again from its source (compare sizes) or produce it again."
)
_FORMATS = {
    b"PAR1": "a Parquet file",
    b"\x89HDF": "an HDF5 file",
    b"\x1f\x8b": "a gzip-compressed file",
    b"PK\x03\x04": "a zip archive",
    b"\x93NUMPY": "a NumPy .npy file",
}


def root_file_problem(path: str) -> str | None:
    """What is wrong with ``path`` as a ROOT file, judged from its size and header, or None.

    ROOT files start with ``root``; the header then gives ``fEND``, the file's length when
    it was closed, so a shorter file is known to be incomplete.
    """
    if "://" in path:  # remote (root://, https://): uproot reports what it finds
        return None
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as err:
        return (
            f"{path}: cannot be read ({err.strerror or err}); check that it is a file you may read"
        )
    if size == 0:
        return f"{path}: empty file (0 bytes), not a ROOT file. {INCOMPLETE_HINT}"
    if not head.startswith(b"root"):
        kind = next((f" ({v})" for k, v in _FORMATS.items() if head.startswith(k)), "")
        return (
            f"{path}: not a ROOT file (it starts with {_preview(head)}){kind}. hepclf reads "
            "ROOT files holding a TTree or RNTuple: check the path, or convert the file."
        )
    if len(head) < 20:
        return _truncated(path, size, 20)
    version = int.from_bytes(head[4:8], "big")
    wide = version >= 1_000_000
    if wide and len(head) < 24:
        return _truncated(path, size, 24)
    end = int.from_bytes(head[12:20] if wide else head[12:16], "big")
    return _truncated(path, size, end) if size < end else None


def _truncated(path: str, size: int, expected: int) -> str:
    return (
        f"{path}: truncated or incomplete ROOT file ({size:,} bytes, expected at least "
        f"{expected:,}). {INCOMPLETE_HINT}"
    )


def _preview(head: bytes) -> str:
    """The first bytes as text when they are text (the first line), else in hex."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if (
        text is not None
        and text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable()
    ):
        line = text.splitlines()[0] if text.strip() else text
        return repr(line[:24] + ("..." if len(line) > 24 else ""))
    return "the bytes " + head[:12].hex(" ")


def is_decompression_error(err: BaseException) -> bool:
    """True for the errors a corrupted compressed block raises (zlib, LZMA, LZ4, ZSTD)."""
    if isinstance(err, zlib.error | lzma.LZMAError):
        return True
    module = type(err).__module__ or ""
    if any(name in module for name in ("lz4", "zstd", "cramjam")):
        return True
    text = str(err)
    return isinstance(err, ValueError) and any(
        marker in text
        for marker in ("checksum", "decompress", "compression algorithm", "block header")
    )


def _cause(err: BaseException) -> str:
    if is_decompression_error(err):
        return "decompression failed"
    return f"{type(err).__name__}: {_first_line(err)}"


def tree_names(path: str) -> list[str] | None:
    """The trees (TTree, RNTuple) of a ROOT file by name; None when it cannot be listed
    (scoring it then reports why)."""
    try:
        with uproot.open(path) as file:
            classes = file.classnames()
    except Exception:
        return None
    return sorted({k.rsplit(";", 1)[0] for k, v in classes.items() if v in TREE_CLASSES})


def open_tree(path: str, tree: str) -> Any:
    """The TTree or RNTuple ``tree`` in ``path``; errors say what is wrong with the file."""
    if "://" not in path and not os.path.isfile(path):
        if os.path.isdir(path):
            raise InputDataError(f"{path}: a folder, not a file; give its files (e.g. DIR/*.root)")
        raise InputDataError(f"{path}: file not found")
    problem = root_file_problem(path)
    if problem is not None:
        raise InputDataError(problem)
    try:
        file = uproot.open(path)
        classes = file.classnames()
    except FileNotFoundError:
        raise InputDataError(f"{path}: file not found") from None
    except Exception as err:
        raise InputDataError(
            f"{path}: corrupted ROOT file: its list of objects cannot be read ({_cause(err)}). "
            f"{DAMAGED_HINT}"
        ) from None
    trees = sorted({k.rsplit(";", 1)[0] for k, v in classes.items() if v in TREE_CLASSES})
    if tree not in trees:
        if not classes:
            raise InputDataError(
                f"{path}: the file's directory lists no objects at all, so there is no tree "
                f"{tree!r}; if the file should hold one, its directory is corrupted. "
                f"{DAMAGED_HINT}"
            )
        present = ", ".join(trees) if trees else "none"
        raise InputDataError(
            f"{path}: no tree named {tree!r}. Trees in this file: {present}. Set 'tree:' of the "
            "sample to one of them."
        )
    try:
        return file[tree]
    except Exception as err:
        raise InputDataError(
            f"{path}: corrupted data in the description of tree {tree!r} ({_cause(err)}). "
            f"{DAMAGED_HINT} {REWRITE_HINT}"
        ) from None


def branch_names(tree_obj: Any) -> set[str]:
    """Every branch name of a tree, nested ones by full path and by their own name.

    Names with unprintable characters come from corrupted bytes in the tree's description:
    that is reported as corruption, not later as a "missing" branch.
    """
    names = set(tree_obj.keys(recursive=True, full_paths=True)) | set(tree_obj.keys())
    garbled = sorted(name for name in names if not name.isprintable())
    if garbled:
        path = getattr(getattr(tree_obj, "file", None), "file_path", "the file")
        raise InputDataError(
            f"{path}: corrupted data in the description of tree "
            f"{getattr(tree_obj, 'name', '?')!r} (garbled branch names: "
            f"{', '.join(ascii(n) for n in garbled[:3])}). {DAMAGED_HINT}"
        )
    return names


def check_branches(tree_obj: Any, needed: set[str], where: str) -> None:
    """Fail with close matches when a needed branch is missing."""
    present = branch_names(tree_obj)
    missing = sorted(needed - present)
    if not missing:
        return
    raise InputDataError(
        f"{where}: missing branch{'es' if len(missing) > 1 else ''} "
        f"{with_hints(missing, present)}. The tree has {len(present)} branches; list them with "
        "`uproot.open(FILE)[TREE].keys()`. Names that are not Python identifiers must be "
        "written in backticks in expressions."
    )


def iterate_chunks(
    tree_obj: Any,
    branches: set[str],
    step_size: str | int,
    where: str,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> Iterator[ak.Array]:
    """Chunks of the needed branches as awkward records; read errors name the file and tree.

    ``entry_start``/``entry_stop`` read a range of entries (one task's part of a large
    file). A corrupted block is traced to its branch by reading the failed chunk branch by
    branch.
    """
    names = sorted(branches)
    iterator = tree_obj.iterate(
        names,
        step_size=step_size,
        library="ak",
        entry_start=entry_start,
        entry_stop=entry_stop,
    )
    first = entry_start or 0
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as err:
            raise _read_error(tree_obj, names, step_size, first, err, where) from None
        first += len(chunk)
        yield chunk


def _read_error(
    tree_obj: Any, names: list[str], step_size: str | int, first: int, err: Exception, where: str
) -> InputDataError:
    stop = int(tree_obj.num_entries)
    try:
        step = (
            step_size
            if isinstance(step_size, int)
            else tree_obj.num_entries_for(step_size, filter_name=names)
        )
        stop = min(stop, first + max(int(step), 1))
    except Exception:
        pass
    for name in names:
        try:
            tree_obj[name].array(entry_start=first, entry_stop=stop, library="np")
        except Exception as branch_err:
            return InputDataError(
                f"{where}: corrupted data in branch {name!r} (entries {first}-{stop - 1}; "
                f"{_cause(branch_err)}). {DAMAGED_HINT}"
            )
    return InputDataError(
        f"{where}: reading branches {names} failed ({_cause(err)}); the file may be "
        f"truncated or corrupted. {DAMAGED_HINT} {REWRITE_HINT}"
    )


def read_ahead(iterator: Iterator[T], depth: int = 1) -> Iterator[T]:
    """The items of ``iterator``, produced one step ahead in a background thread.

    Reading a chunk (I/O and decompression, which release the GIL) then overlaps with
    computing on the previous one. Errors are raised in the consumer, in order; a consumer
    that stops early stops the thread.
    """
    items: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterator:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as err:  # handed to the consumer
            put((False, err))

    thread = threading.Thread(target=produce, name="hepclf-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = items.get()
            if not ok:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"
