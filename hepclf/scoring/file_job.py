"""Score one input file into one output file: the unit of work, in process or on a Dask worker.

Every problem with a file (unreadable, missing branch, bad expression) ends up in its
:class:`FileResult` rather than as an exception, so one bad file never stops the others.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hepclf.ingest.events.expressions import parse
from hepclf.ingest.events.features import branches_of
from hepclf.ingest.reader import branch_names, iterate_chunks, open_tree
from hepclf.runtime.errors import HepclfError, InputDataError
from hepclf.runtime.files import with_hints
from hepclf.scoring import DEFAULT_STEP_SIZE, Format
from hepclf.scoring.chunks import ChunkPlan, NonFinite, empty_columns, score_chunk
from hepclf.scoring.outputs import (
    ExistingOutput,
    OutputMeta,
    atomic_output,
    input_identity,
    inspect_output,
    remove_stale_partials,
)
from hepclf.scoring.scorers import ScoringModel

Status = Literal["scored", "skipped", "failed"]
_STEP_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*[kKMGT]?i?B\s*$")
_LISTED_BRANCHES = 40


@dataclass(frozen=True)
class ScoreSettings:
    """How every file of a run is read and written."""

    tree: str = "Events"
    out_dir: Path | None = None
    fmt: Format = "root"
    step_size: str | int = DEFAULT_STEP_SIZE
    keep_branches: tuple[str, ...] = ()
    selection: str | None = None
    overwrite: bool = False
    on_nonfinite: NonFinite = "error"

    def __post_init__(self) -> None:
        if self.selection:  # a bad or unbounded selection is refused before any file is read
            parse(self.selection)


def parse_step_size(text: str) -> str | int:
    """Entries per chunk (``100000``) or memory per chunk (``100 MB``), as uproot reads them."""
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    if _STEP_SIZE.match(text):
        return text.strip()
    raise InputDataError(
        f"step size {text!r}: give a number of entries (e.g. 100000) or a memory size "
        "(e.g. '100 MB')"
    )


@dataclass
class FileResult:
    """What happened to one input: scored, skipped (output complete) or failed (why).

    ``nan_scores``: events scored NaN for non-finite features (``on_nonfinite="nan"``);
    ``note``: what a re-run found and replaced (a damaged earlier output).
    """

    input: str
    output: str
    status: Status
    entries: int = 0
    written: int = 0
    seconds: float = 0.0
    error: str | None = None
    nan_scores: int = 0
    note: str | None = None


def score_file(
    path: str,
    output: Path,
    models: Sequence[ScoringModel],
    settings: ScoreSettings,
    on_chunk: Callable[[int], None] | None = None,
) -> FileResult:
    """Score ``path`` into ``output``; ``on_chunk`` hears the number of entries of each chunk."""
    start = time.perf_counter()
    result = FileResult(path, str(output), "failed")
    try:
        _score(path, output, models, settings, on_chunk, result)
    except HepclfError as err:
        result.status, result.error = "failed", str(err)
    except Exception as err:  # e.g. a full disk: reported for this file, the others go on
        lines = str(err).strip().splitlines()
        result.status = "failed"
        result.error = f"{path}: {type(err).__name__}: {lines[0] if lines else 'no details'}"
    result.seconds = time.perf_counter() - start
    return result


def _score(
    path: str,
    output: Path,
    models: Sequence[ScoringModel],
    settings: ScoreSettings,
    on_chunk: Callable[[int], None] | None,
    result: FileResult,
) -> None:
    plan = ChunkPlan(models, settings.keep_branches, settings.selection, settings.on_nonfinite)
    plan.check()
    tree = open_tree(path, settings.tree)
    try:
        _score_tree(tree, path, output, plan, settings, on_chunk, result)
    finally:
        tree.file.close()  # the service runs many jobs: do not wait for the collector


def _score_tree(
    tree: Any,
    path: str,
    output: Path,
    plan: ChunkPlan,
    settings: ScoreSettings,
    on_chunk: Callable[[int], None] | None,
    result: FileResult,
) -> None:
    where = f"{path} (tree {settings.tree!r})"
    check_branches(tree, plan, where)
    result.entries = int(tree.num_entries)
    models = {m.branch: m.spec.source for m in plan.models}
    identity = input_identity(path, tree)
    classes = {m.branch: m.bundle.classes for m in plan.models if m.bundle.multiclass}
    meta = OutputMeta(
        result.entries,
        plan.columns,
        settings.selection,
        models,
        identity,
        classes=classes,
        tree=settings.tree,
    )
    if not settings.overwrite and (output.exists() or output.is_symlink()):
        existing = inspect_output(output, settings.fmt, settings.tree)
        if existing.state == "foreign":
            raise InputDataError(
                f"{output} exists and was not written by hepclf ({existing.why}); it is left "
                "as it is. Move it away, choose another --out, or pass --overwrite to replace it"
            )
        if existing.state == "damaged":
            result.note = f"rewrote {output}: an earlier output, damaged ({existing.why})"
            warnings.warn(result.note, stacklevel=1)
        elif _complete_or_refuse(existing, meta, output):
            result.status, result.written = "skipped", existing.entries
            return
    remove_stale_partials(output)
    zero = tree.arrays(list(plan.keep_branches), entry_stop=0) if plan.keep_branches else None
    template = empty_columns(plan, zero)
    with atomic_output(output, settings.fmt, settings.tree, template, meta) as writer:
        first = 0
        for chunk in iterate_chunks(tree, plan.branches, settings.step_size, where):
            try:
                columns = score_chunk(plan, chunk, first)
            except InputDataError as err:
                raise InputDataError(f"{where}: {err}") from None
            writer.write(columns)
            result.nan_scores += sum(
                int(np.isnan(columns[m.columns[0]]).sum()) for m in plan.models
            )
            first += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        if first != result.entries:
            raise InputDataError(
                f"{where}: read {first} of {result.entries} entries; the file is probably truncated"
            )
        result.written = writer.entries
    result.status = "scored"


def _complete_or_refuse(existing: ExistingOutput, meta: OutputMeta, output: Path) -> bool:
    """True for an output of this input with these settings; a different layout is an error.

    An output with other columns or selection is refused rather than replaced, so that a
    re-run with other models never silently deletes earlier scores. An output of another
    model version with the same branches (an alias that moved), or of an input file since
    replaced, is stale and is rewritten.
    """
    old = existing.meta
    assert old is not None, "a complete output has its meta"
    if old.tree is not None and old.tree != meta.tree:
        raise InputDataError(
            f"{output} holds the scores of tree {old.tree!r}, this run scores {meta.tree!r}; "
            "it is left as it is: choose another --out, or pass --overwrite to replace it"
        )
    if old.columns != meta.columns or old.selection != meta.selection:
        raise InputDataError(
            f"{output} already exists with columns {list(old.columns)} and selection "
            f"{old.selection!r}, but this run writes {list(meta.columns)} with selection "
            f"{meta.selection!r}; pass --overwrite to replace it, or choose another --out"
        )
    expected = meta.input_entries if meta.selection is None else existing.entries
    return (
        old.input_entries == meta.input_entries
        and existing.entries == expected
        and old.models == meta.models
        and old.input == meta.input
    )


def check_branches(tree: Any, plan: ChunkPlan, where: str) -> None:
    """Every branch the models, --keep-branches and --selection read must be in the tree."""
    present = branch_names(tree)
    problems = []
    for model in plan.models:
        required = model.bundle.required_branches
        missing = [b for b in required if b not in present]
        if missing:
            problems.append(
                f"model {model.bundle.name!r} ({model.spec.source}) needs the branches "
                f"{required}; missing: {with_hints(missing, present)}"
            )
    missing = [b for b in plan.keep_branches if b not in present]
    if missing:
        problems.append(f"--keep-branches names missing {with_hints(missing, present)}")
    if plan.selection:
        missing = sorted(branches_of([plan.selection]) - present)
        if missing:
            problems.append(f"--selection reads missing {with_hints(missing, present)}")
    if problems:
        listed = sorted(present)
        shown = ", ".join(listed[:_LISTED_BRANCHES])
        more = (
            f" and {len(listed) - _LISTED_BRANCHES} more" if len(listed) > _LISTED_BRANCHES else ""
        )
        raise InputDataError(
            f"{where}: " + "; ".join(problems) + f". The tree has the branches: {shown}{more}."
        )
