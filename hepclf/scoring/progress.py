"""Progress of a scoring run over files and events, fed by chunks or by finished files.

In process, every chunk advances the event bar; on Dask workers only finished files are
heard of, so a file's events are added when it completes. Either way each file's events
are counted once. The bars are the listener's (:func:`hepclf.progress.bar`): nothing is drawn here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hepclf.progress import Advance, Progress, bar
from hepclf.scoring.file_job import FileResult


@dataclass
class ScoreProgress:
    """Advances the files and events bars."""

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
