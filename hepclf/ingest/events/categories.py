"""Analysis categories: one classifier per phase-space region (TMVA's Category method).

``categories:`` in the pipeline lists ``{name, selection}``; every event must pass exactly
one selection. Each model of the zoo is then trained once per category on that category's
events, and an event is always scored by its own category's model, in training, in the
combined evaluation and in scoring. An event in no category or in several is a
configuration error at training time (with the counts) and gets NaN when scored (with a
logged count), never a score from the wrong model.

Routing is a function of the event's branches, not of the model's features: the variable a
category cuts on (|eta| in TMVA's example) need not be an input of the classifiers.

Reproducing the routing elsewhere (e.g. in C++ with ONNX Runtime): evaluate the category
selections stored in ``categories.json`` of a saved :class:`CategoryModel` in order, in
ROOT/C++ syntax (``&&``, ``||``, ``abs``); the first-and-only passing one names the
sub-folder (one ONNX file per category with ``hepclf export``) whose model scores the event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepclf.config.training import CategoryConfig
from hepclf.ingest.events.expressions import parse
from hepclf.ingest.events.selection import selection_mask
from hepclf.runtime.errors import ConfigError

log = logging.getLogger(__name__)

NO_CATEGORY = -1
SEVERAL_CATEGORIES = -2
INDEX_FILE = "categories.json"


def category_branches(categories: Sequence[CategoryConfig]) -> set[str]:
    """The branches the routing selections read."""
    return {b for c in categories for b in parse(c.selection).branches}


def assign(categories: Sequence[CategoryConfig], arrays: Mapping[str, Any], n: int) -> np.ndarray:
    """Category index per event (int16): ``NO_CATEGORY`` / ``SEVERAL_CATEGORIES`` otherwise."""
    passed = np.column_stack(
        [selection_mask(c.selection, arrays, n, what="the category selection") for c in categories]
    )
    count = passed.sum(axis=1)
    index = np.argmax(passed, axis=1).astype(np.int16)
    index[count == 0] = NO_CATEGORY
    index[count > 1] = SEVERAL_CATEGORIES
    return index


def unrouted_counts(index: np.ndarray) -> tuple[int, int]:
    """(events in no category, events in several)."""
    return int((index == NO_CATEGORY).sum()), int((index == SEVERAL_CATEGORIES).sum())


def require_one_category(
    categories: Sequence[CategoryConfig], index: np.ndarray, where: str
) -> None:
    """Training: every event must be in exactly one category (the message gives counts)."""
    none, several = unrouted_counts(index)
    if none or several:
        listing = "; ".join(f"{c.name}: {c.selection!r}" for c in categories)
        raise ConfigError(
            f"{where}: {none} event(s) pass no category selection and {several} pass more than "
            f"one, out of {len(index)}; the categories must split the selected events into "
            f"disjoint parts that cover them all ({listing})"
        )


@dataclass
class CategoryModel:
    """One fitted classifier per category plus the routing selections.

    Offers what the pipeline, the bundle and tracking read from a zoo model (``name``,
    ``classes_``, ``n_features_in_``, ``device_``, ``history_``, ``predict_proba``), with the
    category index of each event as an extra argument.
    """

    name: str
    categories: list[CategoryConfig]
    models: list[Any]
    history_: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.models) != len(self.categories):
            raise ValueError(f"{len(self.categories)} categories but {len(self.models)} models")
        first = self.models[0].classes_
        for category, model in zip(self.categories, self.models, strict=True):
            if not np.array_equal(model.classes_, first):
                raise ValueError(
                    f"category {category.name!r}: its model learned classes "
                    f"{model.classes_.tolist()}, the first one {first.tolist()}"
                )

    @property
    def classes_(self) -> np.ndarray:
        return self.models[0].classes_

    @property
    def n_features_in_(self) -> int:
        return int(self.models[0].n_features_in_)

    @property
    def device_(self) -> str:
        return self.models[0].device_

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def branches(self) -> set[str]:
        return category_branches(self.categories)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.models[0].hyperparameters

    @property
    def importance_type(self) -> str:
        """The importance the parts' ``feature_importances_`` hold (averaged here)."""
        return str(getattr(self.models[0], "importance_type", "")) + " (mean)"

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean over categories (absent when a category's model has none)."""
        found = [getattr(m, "feature_importances_", None) for m in self.models]
        if any(f is None for f in found):
            raise AttributeError("not every category model has feature importances")
        return np.mean(found, axis=0)

    def route(self, arrays: Mapping[str, Any], n: int) -> np.ndarray:
        """The category index of each event (see :func:`assign`)."""
        return assign(self.categories, arrays, n)

    def predict_proba(
        self, X: np.ndarray, category: np.ndarray, fold: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, K) probabilities from each event's own category model; NaN where unrouted.

        ``fold`` (k-fold category models, whose models are fold ensembles) then picks the
        fold model within the category: the one that did not train on the event.
        """
        category = np.asarray(category)
        out = np.full((len(X), len(self.classes_)), np.nan)
        for i, model in enumerate(self.models):
            rows = category == i
            if rows.any():
                if fold is None:
                    out[rows] = model.predict_proba(X[rows])
                else:
                    out[rows] = model.predict_proba_folds(X[rows], np.asarray(fold)[rows])
        none, several = unrouted_counts(category)
        if none or several:
            log.warning(
                "%d event(s) in no category and %d in several got NaN scores (categories: %s)",
                none,
                several,
                ", ".join(self.names),
            )
        return out

    def save(self, directory: Path | str) -> None:
        """One sub-folder per category (each a saved zoo model) plus ``categories.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for category, model in zip(self.categories, self.models, strict=True):
            model.save(directory / category.name)
        index = {
            "name": self.name,
            "categories": [c.model_dump(mode="json") for c in self.categories],
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, indent=2))

    @classmethod
    def load(cls, directory: Path | str) -> CategoryModel:
        from hepclf.models import load_model

        directory = Path(directory)
        index = json.loads((directory / INDEX_FILE).read_text())
        categories = [CategoryConfig.model_validate(c) for c in index["categories"]]
        models = [load_model(directory / c.name) for c in categories]
        return cls(index["name"], categories, models)


def is_category_model(directory: Path | str) -> bool:
    """Whether a saved model folder holds a :class:`CategoryModel`."""
    return (Path(directory) / INDEX_FILE).is_file()
