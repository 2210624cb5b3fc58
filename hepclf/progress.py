"""How long-running library work reports what it is doing, without knowing who listens.

The pipeline (and training, cross-validation, tuning) call these hooks; the command line
passes a Rich implementation (:mod:`hepclf.cli.render`), a notebook gets the default, which
logs notes at INFO and warnings at WARNING level of the ``hepclf`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hepclf.results import ModelResult

log = logging.getLogger("hepclf")


class Progress:
    """No-op base: subclass and override what you want to show."""

    bars = False
    """Whether steps that have their own progress bars (ingest, scoring) should draw them."""

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

    def model_done(self, result: ModelResult) -> None:
        """A model finished training and evaluation."""
        log.info(
            "%s: test AUC %.4f, %.1f s", result.name, result.report.auc_test, result.train_seconds
        )
