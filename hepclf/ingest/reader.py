"""Open ROOT files and iterate over their trees in chunks, with errors a physicist can act on."""

from __future__ import annotations

import difflib
import glob
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import uproot

from hepclf.errors import InputDataError

TREE_CLASSES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")
REWRITE_HINT = (
    "If the file was written with a compression algorithm or a class that uproot cannot read, "
    "rewrite it with ROOT (e.g. `hadd -f1 new.root old.root` or TTree::CloneTree) and try again."
)


def expand_files(patterns: Sequence[str], where: str) -> list[str]:
    """Expand globs in order; a pattern that matches nothing is an error naming it."""
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matched = [m for m in matched if Path(m).is_file()]
        if not matched:
            raise InputDataError(
                f"{where}: no file matches {pattern!r}; check the path (relative paths are "
                "taken from the pipeline file's folder) or create the data first "
                "(e.g. `hepclf demo-data --out DIR`)"
            )
        files.extend(m for m in matched if m not in files)
    return files


def open_tree(path: str, tree: str) -> Any:
    """The TTree or RNTuple ``tree`` in ``path``; errors list what the file holds instead."""
    try:
        file = uproot.open(path)
    except FileNotFoundError:
        raise InputDataError(f"{path}: file not found") from None
    except Exception as err:
        raise InputDataError(
            f"{path}: cannot be opened as a ROOT file ({type(err).__name__}: "
            f"{_first_line(err)}). Check that it is a complete ROOT file (not truncated by an "
            f"interrupted copy). {REWRITE_HINT}"
        ) from None
    try:
        classes = file.classnames()
    except Exception as err:
        raise InputDataError(
            f"{path}: the list of objects cannot be read ({_first_line(err)}); the file is "
            f"probably truncated or corrupt. {REWRITE_HINT}"
        ) from None
    trees = sorted({k.rsplit(";", 1)[0] for k, v in classes.items() if v in TREE_CLASSES})
    if tree not in trees:
        present = ", ".join(trees) if trees else "none"
        raise InputDataError(
            f"{path}: no tree named {tree!r}. Trees in this file: {present}. Set 'tree:' of the "
            "sample to one of them."
        )
    try:
        return file[tree]
    except Exception as err:
        raise InputDataError(
            f"{path}: tree {tree!r} cannot be read ({type(err).__name__}: {_first_line(err)}). "
            f"{REWRITE_HINT}"
        ) from None


def check_branches(tree_obj: Any, needed: set[str], where: str) -> None:
    """Fail with close matches when a needed branch is missing."""
    present = set(tree_obj.keys(recursive=True, full_paths=True)) | set(tree_obj.keys())
    missing = sorted(needed - present)
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, sorted(present), n=3, cutoff=0.5)
        hints.append(
            f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
        )
    raise InputDataError(
        f"{where}: missing branch{'es' if len(missing) > 1 else ''} {', '.join(hints)}. "
        f"The tree has {len(present)} branches; list them with `uproot.open(FILE)[TREE].keys()`. "
        "Names that are not Python identifiers must be written in backticks in expressions."
    )


def iterate_chunks(
    tree_obj: Any, branches: set[str], step_size: str | int, where: str
) -> Iterator[ak.Array]:
    """Chunks of the needed branches as awkward records; read errors name the file and tree."""
    iterator = tree_obj.iterate(sorted(branches), step_size=step_size, library="ak")
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as err:
            raise InputDataError(
                f"{where}: reading branches {sorted(branches)} failed ({type(err).__name__}: "
                f"{_first_line(err)}). The file may be truncated or corrupt. {REWRITE_HINT}"
            ) from None
        yield chunk


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"
