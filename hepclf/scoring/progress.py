"""A Rich progress display over files and events, fed by chunks or by finished files.

In process, every chunk advances the event bar; on Dask workers only finished files are
heard of, so a file's events are added when it completes. Either way each file's events
are counted once.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hepclf.scoring.file_job import FileResult


class ScoreProgress:
    """Two bars, files and events; a no-op when disabled (the service, tests)."""

    def __init__(self, files: int, events: int, console: Console | None, enabled: bool) -> None:
        self._progress = (
            Progress(
                TextColumn("[bold]{task.description:>6}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            if enabled
            else None
        )
        self._files: TaskID | None = None
        self._events: TaskID | None = None
        self._counted = 0
        if self._progress is not None:
            self._files = self._progress.add_task("files", total=files)
            self._events = self._progress.add_task("events", total=events)

    def __enter__(self) -> ScoreProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def chunk(self, entries: int) -> None:
        """Entries of the file being scored in this process."""
        self._counted += entries
        if self._progress is not None and self._events is not None:
            self._progress.advance(self._events, entries)

    def file_done(self, result: FileResult) -> None:
        """A finished file: its events not yet counted chunk by chunk, and one more file."""
        rest, self._counted = max(result.entries - self._counted, 0), 0
        if self._progress is not None and self._files is not None and self._events is not None:
            self._progress.advance(self._events, rest)
            self._progress.advance(self._files, 1)
