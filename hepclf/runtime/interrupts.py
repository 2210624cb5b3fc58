"""Hold Ctrl-C and SIGTERM while a step must finish once started.

A store migration stopped half-way leaves a database nobody can open; a pipeline stopped
between registering its champion and publishing its files would leave a registered model
for a run marked KILLED. Inside :class:`Deferred` (once ``hold`` is called) both signals
are noted instead of acted on, and delivered to the handlers that were in place when the
block ends, so the step completes or never starts.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Deferred:
    """Context manager: after ``hold()``, SIGINT/SIGTERM wait until the block is left."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.pending: int | None = None

    def hold(self) -> None:
        """Start holding the signals (handlers can only be set in the main thread)."""
        if self.previous or threading.current_thread() is not threading.main_thread():
            return
        for number in SIGNALS:
            self.previous[number] = signal.signal(number, self._note)

    def _note(self, number: int, frame: FrameType | None) -> None:
        self.pending = self.pending or number

    def __enter__(self) -> Deferred:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
        if self.pending is not None:  # delivered now, to the handler it was meant for
            number, self.pending = self.pending, None
            signal.raise_signal(number)


def deferred() -> Deferred:
    """A block in which the signals wait from its start."""
    guard = Deferred()
    guard.hold()
    return guard
