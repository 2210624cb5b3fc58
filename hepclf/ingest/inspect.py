"""What a ROOT file offers a pipeline: its trees, and each tree's branches by kind.

``hepclf init`` drafts a pipeline from this: numeric scalar branches become features,
jagged numeric ones ``leading: N`` features, and names that look like an event number or
an event weight are proposed for ``event_id`` and ``weight``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepclf.ingest.reader import TREE_CLASSES, open_tree, root_file_problem
from hepclf.runtime.errors import InputDataError

# trees of bookkeeping, not events: NanoAOD/MiniAOD metadata
BOOKKEEPING_TREES = ("Runs", "LuminosityBlocks", "MetaData", "ParameterSets")
# NanoAOD's generated sum of weights: (tree, branch)
STORED_SUM_WEIGHTS = ("Runs", "genEventSumw")
EVENT_ID_NAMES = ("event", "eventnumber", "event_number", "evt", "evtnum", "eventnum", "eventid")
WEIGHT_NAMES = (
    "genweight",
    "weight",
    "eventweight",
    "event_weight",
    "evtweight",
    "mcweight",
    "weight_mc",
    "mc_weight",
    "totalweight",
    "w",
)
BOOKKEEPING_BRANCHES = ("run", "runnumber", "luminosityblock", "lumi", "lumiblock")
SAMPLED_ENTRIES = 2000  # entries read to spot constant branches


@dataclass
class TreeBranches:
    """The branches of one tree that a pipeline can use, by kind (names in file order)."""

    path: str
    tree: str
    entries: int
    scalars: list[str] = field(default_factory=list)  # one number per event
    flags: list[str] = field(default_factory=list)  # one bool per event (trigger bits...)
    jagged: list[str] = field(default_factory=list)  # a list of numbers per event
    other: list[str] = field(default_factory=list)  # strings, nested lists, objects
    integer: set[str] = field(default_factory=set)
    constant: dict[str, float] = field(default_factory=dict)  # scalar -> its only value

    def first_named(self, candidates: tuple[str, ...], integer: bool) -> str | None:
        """The scalar branch (integer or floating) whose lower-cased name comes first in
        ``candidates``."""
        by_name = {name.lower(): name for name in self.scalars}
        for candidate in candidates:
            name = by_name.get(candidate)
            if name is not None and (name in self.integer) == integer:
                return name
        return None

    def weight_guess(self) -> str | None:
        """A floating branch named like an event weight (``genWeight``, ``weight``...)."""
        named = self.first_named(WEIGHT_NAMES, integer=False)
        if named is not None:
            return named
        return next(
            (b for b in self.scalars if "weight" in b.lower() and b not in self.integer), None
        )


def trees_in(path: str) -> dict[str, int]:
    """Every TTree/RNTuple of a file and its number of entries; errors name the file."""
    problem = root_file_problem(path)
    if problem is not None:
        raise InputDataError(problem)
    try:
        file = uproot.open(path)
        names = sorted(
            {k.rsplit(";", 1)[0] for k, v in file.classnames().items() if v in TREE_CLASSES}
        )
        return {name: int(file[name].num_entries) for name in names}
    except FileNotFoundError:
        raise InputDataError(f"{path}: file not found") from None
    except OSError as err:
        raise InputDataError(f"{path}: cannot be read as a ROOT file ({err})") from None


def event_tree(path: str, trees: dict[str, int]) -> str:
    """The tree that holds the events: the one with most entries, bookkeeping trees last."""
    if not trees:
        raise InputDataError(
            f"{path}: no TTree or RNTuple in this file; give one that holds events "
            "(FILE:TREE names a tree inside a folder of the file)"
        )
    return max(trees, key=lambda name: (name not in BOOKKEEPING_TREES, trees[name]))


def stored_sum_weights(path: str, trees: dict[str, int]) -> tuple[str, str] | None:
    """NanoAOD's (``Runs``, ``genEventSumw``) when the file keeps the generated Σw there."""
    tree, branch = STORED_SUM_WEIGHTS
    if tree not in trees:
        return None
    return (tree, branch) if branch in uproot.open(path)[tree] else None


def inspect_tree(path: str, tree: str) -> TreeBranches:
    """The branches of ``tree`` sorted into scalars, flags, jagged lists and the rest."""
    tree_obj = open_tree(path, tree)
    found = TreeBranches(path, tree, int(tree_obj.num_entries))
    if isinstance(tree_obj, uproot.behaviors.TBranch.HasBranches):
        for branch in tree_obj.itervalues(recursive=True):
            if not branch.branches:  # leaves only: a split object's parent holds no numbers
                _sort(found, branch.name, _kind_of_ttree_branch(branch))
    else:  # an RNTuple: classify from the awkward type of a few entries
        sample = tree_obj.arrays(entry_stop=1)
        for name in sample.fields:
            _sort(found, name, _kind_of_awkward_type(sample[name].type.content))
    found.constant = _constant_scalars(tree_obj, found.scalars)
    return found


def _sort(found: TreeBranches, name: str, kind: tuple[str, str]) -> None:
    what, dtype_kind = kind
    {"scalar": found.scalars, "flag": found.flags, "jagged": found.jagged}.get(
        what, found.other
    ).append(name)
    if what == "scalar" and dtype_kind in "iu":
        found.integer.add(name)


def _kind_of_ttree_branch(branch: Any) -> tuple[str, str]:
    """('scalar'|'flag'|'jagged'|'other', numpy dtype kind) of a TTree leaf."""
    interpretation = branch.interpretation
    if isinstance(interpretation, uproot.interpretation.jagged.AsJagged):
        content = interpretation.content
        dtype = content.to_dtype if isinstance(content, uproot.AsDtype) else None
        if dtype is not None and dtype.shape == () and dtype.kind in "iuf":
            return "jagged", dtype.kind
        return "other", ""
    if isinstance(interpretation, uproot.AsDtype) and interpretation.to_dtype.shape == ():
        dtype = interpretation.to_dtype
        if dtype.kind == "b":
            return "flag", "b"
        if dtype.kind in "iuf":
            return "scalar", dtype.kind
    return "other", ""


def _kind_of_awkward_type(kind: Any) -> tuple[str, str]:
    if isinstance(kind, ak.types.NumpyType):
        dtype = np.dtype(kind.primitive)
        return ("flag" if dtype.kind == "b" else "scalar", dtype.kind)
    if isinstance(kind, ak.types.ListType | ak.types.RegularType):
        inner = kind.content
        if isinstance(inner, ak.types.NumpyType) and np.dtype(inner.primitive).kind in "iuf":
            return "jagged", np.dtype(inner.primitive).kind
    return "other", ""


def _constant_scalars(tree_obj: Any, scalars: list[str]) -> dict[str, float]:
    """Scalars with one value in the first entries: useless as features, or a class label."""
    if not scalars or tree_obj.num_entries == 0:
        return {}
    stop = min(SAMPLED_ENTRIES, int(tree_obj.num_entries))
    arrays = tree_obj.arrays(scalars, entry_stop=stop, library="np")
    return {
        name: float(values[0])
        for name, values in arrays.items()
        if len(values) > 1 and np.all(values == values[0])
    }


def sort_key_guess(branch: str, jagged: set[str]) -> str | None:
    """An expression that orders a collection's objects: its ``pt``, else ``hypot(px, py)``.

    ``Jet_eta`` of a NanoAOD-like tree is sorted by ``Jet_pt``; branches named ``px``,
    ``py``, ``E`` without a prefix by ``hypot(px, py)``. None when there is no such sibling.
    """
    prefix = branch[: len(branch) - len(re.split(r"[_.]", branch)[-1])]
    for pt in (f"{prefix}pt", f"{prefix}pT", f"{prefix}Pt", f"{prefix}PT"):
        if pt in jagged:
            return _in_expression(pt)
    px, py = f"{prefix}px", f"{prefix}py"
    if px in jagged and py in jagged:
        return f"hypot({_in_expression(px)}, {_in_expression(py)})"
    return None


def _in_expression(name: str) -> str:
    """A branch name as an expression writes it: in backticks unless an identifier."""
    return name if name.isidentifier() else f"`{name}`"
