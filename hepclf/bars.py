"""Progress bars of long loops (ingest, scoring), drawn by whoever listens, never by the library.

Library code asks for ``bar(progress, description, total)`` and calls the ``advance(n)`` it
gets; a :class:`hepclf.progress.Progress` listener whose ``bars`` is true draws it through
its ``bar`` hook (the command line's Rich one), any other gets a bar that shows nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hepclf.progress import Progress

Advance = Callable[[int], None]
"""Adds ``n`` done units (events, files) to a bar."""


def _ignore(n: int) -> None:
    pass


@contextmanager
def silent_bar(listener: object, description: str, total: int) -> Iterator[Advance]:
    """The default ``Progress.bar`` hook: a bar that shows nothing."""
    yield _ignore


def bar(progress: Progress | None, description: str, total: int) -> AbstractContextManager[Advance]:
    """A bar of ``total`` units from the listener where it draws bars, else a silent one."""
    if progress is None or not progress.bars:
        return silent_bar(progress, description, total)
    return progress.bar(description, total)  # type: ignore[attr-defined]
