"""A scoring run over many files: plan the outputs, score in process or on Dask, summarise."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uproot

from hepclf.ingest.reader import tree_names
from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import expand_files
from hepclf.runtime.progress import Advance, Progress, bar
from hepclf.scoring.file_job import FileResult, ScoreSettings, score_file
from hepclf.scoring.outputs import output_path, written_for_tree
from hepclf.scoring.scorers import ScoringModel
from hepclf.tracking.store import current_tracking_uri


@dataclass
class ScoreProgress:
    """Advances the listener's files and events bars (:func:`hepclf.runtime.progress.bar`).

    In process every chunk advances the events bar; from Dask workers only finished files
    are heard of, so a file's events are added when it completes. Either way each file's
    events are counted once.
    """

    files: Advance
    events: Advance
    counted: int = 0

    def chunk(self, entries: int) -> None:
        """Entries of the file being scored in this process."""
        self.counted += entries
        self.events(entries)

    def file_done(self, result: FileResult) -> None:
        """A finished file: its events not yet counted chunk by chunk, and one more file."""
        rest, self.counted = max(result.entries - self.counted, 0), 0
        self.events(rest)
        self.files(1)


@contextmanager
def score_progress(progress: Progress | None, files: int, events: int) -> Iterator[ScoreProgress]:
    """Bars over ``files`` files and ``events`` events while the block runs."""
    with bar(progress, "files", files) as files_bar, bar(progress, "events", events) as events_bar:
        yield ScoreProgress(files_bar, events_bar)


@dataclass
class RunSummary:
    """Per-file results of a run and its wall time."""

    results: list[FileResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def events(self) -> int:
        """Input entries read and scored in this run (skipped files not counted)."""
        return sum(r.entries for r in self.results if r.status == "scored")

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Files and globs in order, each once; a pattern matching no file is an error."""
    return expand_files(
        patterns,
        lambda pattern: InputDataError(
            f"no input file matches {pattern!r}; check the path or glob"
        ),
    )


BOOKKEEPING_TREES = frozenset({"Runs", "LuminosityBlocks", "MetaData", "ParameterSets"})
"""Trees of a NanoAOD-like file that hold no events to score (they do not count as a
second tree when naming outputs)."""


def output_for(path: str, settings: ScoreSettings) -> Path:
    """The output of one input: ``<stem>_scores``; ``<stem>_<tree>_scores`` when the input
    holds several trees, so that scoring another tree never replaces this one's scores.
    An output of an earlier hepclf under the old name, written for this tree, is still
    found (and resumed or skipped) rather than scored again beside it."""
    plain = output_path(path, settings.out_dir, settings.fmt)
    trees = tree_names(path)
    if trees is None:  # unreadable files are reported when scored
        return plain
    # bookkeeping trees beside the events (NanoAOD's Runs with the generated sum of weights,
    # as the demo files have) are not a second tree of events: the name stays <stem>_scores
    events = [t for t in trees if t == settings.tree or t not in BOOKKEEPING_TREES]
    if len(events) <= 1:
        return plain
    named = output_path(path, settings.out_dir, settings.fmt, settings.tree)
    earlier = not named.exists() and plain.is_file()
    return plain if earlier and written_for_tree(plain, settings.fmt, settings.tree) else named


def plan_outputs(inputs: Sequence[str], settings: ScoreSettings) -> list[tuple[str, Path]]:
    """The output path of every input; two inputs may not share one output."""
    plan = [(path, output_for(path, settings)) for path in inputs]
    seen: dict[Path, str] = {}
    for path, output in plan:
        key = output.resolve()
        if key in seen:
            raise InputDataError(
                f"{seen[key]} and {path} would both be scored into {output}; score files with "
                "the same name into different --out folders"
            )
        seen[key] = path
    inputs_resolved = {Path(path).resolve(): path for path in inputs}
    clash = [inputs_resolved[out] for out in seen if out in inputs_resolved]
    if clash:
        raise InputDataError(
            f"{clash[0]} is an input and also the output of {seen[Path(clash[0]).resolve()]}; "
            "earlier outputs matched by a glob are not inputs: narrow the pattern or score "
            "into another --out folder"
        )
    return plan


def _entries(path: str, tree: str) -> int:
    """Entries of an input for the progress total (0 when unreadable: the task reports it)."""
    try:
        with uproot.open(path) as file:
            return int(file[tree].num_entries)
    except Exception:
        return 0


def score_files(
    inputs: Sequence[str],
    models: Sequence[ScoringModel],
    settings: ScoreSettings,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Score every input into its own output, in process (``workers=1``) or on Dask;
    ``progress`` hears of files and events done (see :func:`hepclf.runtime.progress.bar`)."""
    plan = plan_outputs(inputs, settings)
    total = sum(_entries(path, settings.tree) for path, _ in plan)
    start = time.perf_counter()
    results: list[FileResult] = []
    with score_progress(progress, len(plan), total) as counter:
        if workers <= 1 and scheduler is None:
            for path, output in plan:
                result = score_file(path, output, models, settings, on_chunk=counter.chunk)
                counter.file_done(result)
                results.append(result)
        else:
            from hepclf.cluster.client import dask_client
            from hepclf.scoring.cluster import run_on_dask, warm_workers

            specs, uri = tuple(m.spec for m in models), current_tracking_uri()
            with dask_client(workers, scheduler) as client:
                warm_workers(client, specs, uri)
                results = run_on_dask(client, plan, specs, uri, settings, counter.file_done)
    return RunSummary(results, time.perf_counter() - start)
