"""How long-running library work reports what it is doing, without knowing who listens.

The pipeline (and training, cross-validation, tuning) call these hooks; the command line
passes a Rich implementation (:mod:`hepclf.cli.render`), a notebook gets the default, which
logs notes at INFO and warnings at WARNING level of the ``hepclf`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

log = logging.getLogger("hepclf")


Advance = Callable[[int], None]
"""Adds ``n`` done units (events, files) to a progress bar."""


def _ignore(n: int) -> None:
    pass


@contextmanager
def silent_bar(listener: object, description: str, total: int) -> Iterator[Advance]:
    """The default ``Progress.bar`` hook: a bar that shows nothing."""
    yield _ignore


class FinishedModel(Protocol):
    """What a listener hears of a trained and evaluated model (a ``ModelResult``)."""

    name: str
    report: Any
    """Its evaluation: ``auc_test`` and the rest."""
    classifier: Any
    """The fitted model: ``device_`` says where it trained."""
    train_seconds: float


class Progress:
    """No-op base: subclass and override what you want to show."""

    bars = False
    """Whether steps that have their own progress bars (ingest, scoring) should draw them."""

    bar = silent_bar
    """A bar of ``total`` units: a context manager yielding ``advance(n)``; silent here,
    drawn by the command line's ``RichProgress``."""

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A unit of work in progress (e.g. "training bdt"); a spinner in the terminal."""
        yield

    def note(self, message: str) -> None:
        """Information worth a line (data sizes, registration)."""
        log.info(message)

    def warn(self, message: str) -> None:
        """Something the user must read (e.g. an over-trained champion)."""
        log.warning(message)

    def model_done(self, result: FinishedModel) -> None:
        """A model finished training and evaluation."""
        log.info(
            "%s: test AUC %.4f, %.1f s", result.name, result.report.auc_test, result.train_seconds
        )


def bar(progress: Progress | None, description: str, total: int) -> AbstractContextManager[Advance]:
    """A bar of ``total`` units from the listener where it draws bars, else a silent one.

    Long loops (ingest, scoring) ask for one and call the ``advance(n)`` they get; the library
    never draws: the command line's listener does.
    """
    if progress is None or not progress.bars:
        return silent_bar(progress, description, total)
    return progress.bar(description, total)
