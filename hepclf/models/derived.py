"""Objects derived from a fitted model for fast prediction, kept beside the model.

Prediction must not change an estimator's attributes (scikit-learn's contract) and a pickled
model must not carry a loaded library or a traced graph, so such objects live here, keyed
weakly by the model (they go when it goes) and tied to the fitted attribute they were built
from (a refit replaces that attribute, and the object is built anew).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")


class DerivedCache(Generic[Value]):
    """One derived object per fitted model and source attribute."""

    def __init__(self) -> None:
        self._store: weakref.WeakKeyDictionary[Any, tuple[Any, Value]] = weakref.WeakKeyDictionary()

    def cached(self, model: Any) -> Value | None:
        """What is kept for ``model`` (None: nothing yet), for tests and diagnostics."""
        entry = self._store.get(model)
        return None if entry is None else entry[1]

    def get(self, model: Any, source: Any, build: Callable[[], Value]) -> Value:
        """The object built from ``source`` (an attribute of ``model``), built on first use."""
        cached = self._store.get(model)
        if cached is not None and cached[0] is source:
            return cached[1]
        value = build()
        self._store[model] = (source, value)
        return value
