"""``hepclf init``: a commented pipeline YAML drafted from the user's own ROOT files.

The draft trains as written (every branch it names is in every sample's tree, and it is
validated like any pipeline before it is written); its comments say what was guessed
(the event tree, an event-number and a weight branch from their names, the ordering of
jagged collections) and what only the user knows (cross-sections, for a physics result).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from hepclf.config import parse_pipeline
from hepclf.config.features import RESERVED_COLUMNS
from hepclf.ingest.inspect import (
    BOOKKEEPING_BRANCHES,
    EVENT_ID_NAMES,
    TreeBranches,
    event_tree,
    inspect_tree,
    sort_key_guess,
    stored_sum_weights,
    trees_in,
)
from hepclf.runtime.errors import ConfigError, InputDataError
from hepclf.runtime.files import matching_files

LEADING = 4  # objects kept per jagged collection
MAX_COLUMNS = 100  # features beyond this many table columns are written commented out
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_.\-/*?]*")


@dataclass(frozen=True)
class DraftInput:
    """One ``--signal/--background/--class`` argument: a class label, files and a tree."""

    label: str
    pattern: str
    tree: str | None = None

    @classmethod
    def parse(cls, label: str, spec: str) -> DraftInput:
        """``FILE[:TREE]``; a colon followed by a path (``root://host//f.root``) is no tree."""
        head, sep, tail = spec.rpartition(":")
        if sep and head and tail and "/" not in tail:
            return cls(label, head, tail)
        return cls(label, spec)


@dataclass
class _Sample:
    name: str
    source: DraftInput
    files: list[str]
    trees: dict[str, int]
    branches: TreeBranches
    sum_weights: tuple[str, str] | None


def draft_pipeline(inputs: list[DraftInput], out: Path) -> str:
    """The pipeline YAML text for ``inputs``, with file patterns relative to ``out``'s
    folder; raises ``ConfigError``/``InputDataError`` naming the argument at fault."""
    labels = list(dict.fromkeys(i.label for i in inputs))
    if len(labels) < 2:
        raise ConfigError(
            f"hepclf init needs files of at least two classes, got only {labels}: give "
            "--signal FILE and --background FILE (or --class NAME=FILE for each class)"
        )
    samples = _samples(inputs)
    text = _render(samples, labels, out)
    parse_pipeline(yaml.safe_load(text), source=str(out), base_dir=out.parent.resolve())
    return text


def _samples(inputs: list[DraftInput]) -> list[_Sample]:
    samples: list[_Sample] = []
    for source in inputs:
        files = matching_files(source.pattern)
        if not files:
            raise InputDataError(
                f"{source.pattern}: no file matches (given for {source.label!r}); check the "
                "path, relative to the folder you run hepclf init in"
            )
        trees = trees_in(files[0])
        tree = source.tree or event_tree(files[0], trees)
        branches = inspect_tree(files[0], tree)
        sum_weights = stored_sum_weights(files[0], trees)
        samples.append(_Sample("", source, files, trees, branches, sum_weights))
    _name_samples(samples)
    return samples


def _name_samples(samples: list[_Sample]) -> None:
    """File stems (``ttbar_*.root`` -> ``ttbar``); tree names where stems repeat."""
    stems = [re.sub(r"[*?\[\]]+.*$", "", Path(s.source.pattern).stem).strip("_-.") for s in samples]
    stems = [stem or s.source.label for stem, s in zip(stems, samples, strict=True)]
    names = [
        s.branches.tree if stems.count(stem) > 1 else stem
        for stem, s in zip(stems, samples, strict=True)
    ]
    seen: dict[str, int] = {}
    for sample, name in zip(samples, names, strict=True):
        seen[name] = seen.get(name, 0) + 1
        sample.name = name if names.count(name) == 1 else f"{name}_{seen[name]}"


def _common(samples: list[_Sample], kind: str) -> list[str]:
    first = getattr(samples[0].branches, kind)
    others = [set(getattr(s.branches, kind)) for s in samples[1:]]
    return [name for name in first if all(name in o for o in others)]


@dataclass
class _Choice:
    """What the draft trains on, and what it leaves out and why."""

    features: list[str]  # YAML of each feature entry
    left_out: dict[str, list[str]]  # reason -> branch names
    event_id: str | None
    weights: dict[str, str | None]  # sample name -> weight branch


def _choose(samples: list[_Sample]) -> _Choice:
    """Features from the numeric branches every sample has; weights, ids, bookkeeping,
    constants and class labels in disguise left out, each with its reason."""
    scalars = _common(samples, "scalars")
    jagged = _common(samples, "jagged")
    event_id = samples[0].branches.first_named(EVENT_ID_NAMES, integer=True)
    if event_id is not None and not all(event_id in s.branches.integer for s in samples):
        event_id = None
    choice = _Choice([], {}, event_id, {s.name: s.branches.weight_guess() for s in samples})

    def leave_out(name: str, why: str) -> None:
        choice.left_out.setdefault(why, []).append(name)

    for name in scalars:
        constant = [s.branches.constant.get(name) for s in samples]
        if name == event_id:
            continue
        if name in choice.weights.values() or "weight" in name.lower():
            leave_out(name, "event weights")
        elif name.lower() in BOOKKEEPING_BRANCHES:
            leave_out(name, "run bookkeeping")
        elif None not in constant and len(set(constant)) > 1:
            leave_out(name, "constant in each sample but different between them (a class label)")
        elif None not in constant:
            leave_out(name, "constant")
        else:
            choice.features.append(_feature(name))
    choice.features += [_jagged_feature(name, set(jagged)) for name in jagged]
    for kind, why in (
        ("flags", "true/false flags (triggers, filters): use them in 'selection:'"),
        ("other", "not numbers or lists of numbers (text, nested lists, objects, bools)"),
    ):
        for name in _common(samples, kind):
            leave_out(name, why)
    everywhere = set(scalars) | set(jagged) | set(choice.weights.values())
    for name in sorted({b for s in samples for b in s.branches.scalars + s.branches.jagged}):
        if name not in everywhere:
            leave_out(name, "not in every sample's tree")
    return choice


def _render(samples: list[_Sample], labels: list[str], out: Path) -> str:
    choice = _choose(samples)
    event_id = choice.event_id
    lines = _header(samples, out)
    lines.append(f"name: {_value(_pipeline_name(out))}")
    if "signal" not in labels:
        lines.append(f"signal: {_value(labels[0])}              # the class the physics is about")
    lines.append("samples:")
    for sample in samples:
        lines += _sample_lines(sample, choice.weights[sample.name], out)
    if event_id is not None:
        lines += [
            f"event_id: {_value(event_id)}   # guessed from its name (an integer branch); "
            "the split below uses it",
            "split: {method: event_id, folds: 2, test_fold: 0, validation_fraction: 0.2}"
            "   # test: odd/even event",
        ]
    else:
        lines.append(
            "split: {method: random, test_fraction: 0.5, validation_fraction: 0.2, seed: 42}"
        )
    lines += _feature_lines(choice.features, choice.left_out)
    lines += _model_lines()
    lines += [
        "# For a physics result (expected significance, limit) set every sample's 'scale' and",
        "# uncomment (docs/physics.md):",
        "# result:",
        "#   luminosity: 140               # fb^-1, if 'scale' is sigma x BR in fb",
    ]
    return "\n".join(lines) + "\n"


def _header(samples: list[_Sample], out: Path) -> list[str]:
    shown = out.name if out.parent == Path(".") else str(out)
    return [
        f"# Drafted by `hepclf init` on {date.today().isoformat()} from "
        f"{sum(len(s.files) for s in samples)} file(s). It trains as written:",
        f"#   hepclf train {shown} --output results",
        "# Lines marked CHECK are guesses from branch names. Every key: docs/configuration.md.",
    ]


def _sample_lines(sample: _Sample, weight: str | None, out: Path) -> list[str]:
    others = ", ".join(f"{t} ({n:,})" for t, n in sample.trees.items())
    guessed = sample.source.tree is None and len(sample.trees) > 1
    lines = [
        f"  - name: {_value(sample.name)}",
        f"    label: {_value(sample.source.label)}",
        f"    files: [{_value(_relative(sample.source.pattern, out))}]"
        f"   # {len(sample.files)} file(s)",
        f"    tree: {_value(sample.branches.tree)}"
        + (f"   # CHECK: the largest of {others}" if guessed else ""),
    ]
    if weight is not None:
        lines.append(f"    weight: {_value(weight)}   # CHECK: guessed from its name")
    if sample.sum_weights is not None:
        tree, branch = sample.sum_weights
        lines += [
            f"    sum_weights: {{tree: {tree}, branch: {branch}}}   # generated sum of weights",
            "    scale: 1.0   # CHECK: cross-section x BR (x L) for expected events",
        ]
    else:
        lines.append(
            "    scale: 1.0   # CHECK: sigma x BR (x L) / sum of generated weights, or add "
            "'sum_weights:'"
        )
    return lines


def _feature_lines(features: list[str], left_out: dict[str, list[str]]) -> list[str]:
    lines = ["features:   # numeric branches of every sample's tree; remove what must not train"]
    columns = 0
    for i, feature in enumerate(features):
        columns += LEADING if "leading:" in feature else 1
        if columns > MAX_COLUMNS:
            lines.append(
                f"  # {len(features) - i} more, left out to keep the first run small; "
                "uncomment what you want:"
            )
            lines += [f"  # - {f}" for f in features[i:]]
            break
        lines.append(f"  - {feature}")
    for why, names in left_out.items():
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        lines.append(f"  # not features, {why}: {shown}")
    return lines


def _model_lines() -> list[str]:
    from hepclf.models import MODEL_TYPES

    lines = ["models:   # the zoo with its defaults; remove what you do not need"]
    for name, cls in MODEL_TYPES.items():
        if cls.installed():
            lines.append(f"  {name}: {{}}")
        else:
            lines.append(f"  # {name}: {{}}   # needs `pip install 'hepclf[{cls.extra}]'`")
    return lines


def _feature(name: str) -> str:
    if name in RESERVED_COLUMNS:  # the table's own columns: keep the branch, rename the feature
        return f"{{name: {_value(name + '_branch')}, branch: {_value(name)}}}"
    return _value(name)


def _jagged_feature(name: str, jagged: set[str]) -> str:
    sort_by = sort_key_guess(name, jagged)
    text = f"{{name: {_value(name)}, branch: {_value(name)}, leading: {LEADING}, pad: 0.0"
    if sort_by is None:
        return text + "}   # the first objects as stored"
    return text + f", sort_by: {_value(sort_by)}}}   # CHECK: ordered by {sort_by}"


def _value(text: str) -> str:
    """A string as a YAML scalar: plain where YAML reads it back unchanged, else quoted."""
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def _relative(pattern: str, out: Path) -> str:
    """``pattern`` as the pipeline resolves it: relative to the YAML's folder."""
    if os.path.isabs(pattern) or "://" in pattern:
        return pattern
    return os.path.relpath(os.path.abspath(pattern), out.parent.resolve())


def _pipeline_name(out: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", out.stem) or "pipeline"
