"""Which events go into which channel, binned in which score.

``single``: every event, in the signal score (two classes) or Σ P(signal classes).
``nodes`` (CMS ttH(bb)): every event goes to the output node with the highest probability
and is binned in that node's output, one channel per node. ``categories`` (ATLAS style):
one channel per analysis category, in the category's own discriminant. Both together:
one channel per category and node. The same routing applies to the scored events of
systematic variations and to recorded data, so every template of a channel means the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.samples import branch_safe
from hepclf.physics.yields import Scored, VariedEvents
from hepclf.runtime.errors import InputDataError

SINGLE = "discriminant"


def discriminant(
    scores: np.ndarray, class_names: Sequence[str], signal_classes: Sequence[str]
) -> np.ndarray:
    """The one-dimensional score to bin: the signal score, or Σ P(signal classes)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        return scores
    columns = [i for i, name in enumerate(class_names) if name in signal_classes]
    if not columns:
        raise InputDataError(
            f"the model's classes {list(class_names)} include none of the signal classes "
            f"{list(signal_classes)}"
        )
    return scores[:, columns].sum(axis=1)


@dataclass(frozen=True)
class Routing:
    """How a pipeline's ``result.channels`` splits scored events."""

    class_names: list[str]
    signal_classes: list[str]
    categories: list[str]
    nodes: bool
    by_category: bool

    @classmethod
    def of(cls, config: PipelineConfig) -> Routing:
        split = config.result.channel_split if config.result is not None else frozenset()
        return cls(
            list(config.class_names),
            list(config.signal_classes),
            [c.name for c in config.categories or []],
            "nodes" in split,
            "categories" in split,
        )

    @property
    def names(self) -> list[str]:
        """The channel names, in order (``node_<class>``, ``cat_<category>``, both)."""
        nodes = [f"node_{branch_safe(c)}" for c in self.class_names] if self.nodes else [""]
        cats = [f"cat_{c}" for c in self.categories] if self.by_category else [""]
        names = ["_".join(p for p in (c, n) if p) for c in cats for n in nodes]
        return names if names != [""] else [SINGLE]

    def split(
        self, scores: np.ndarray, category: np.ndarray | None
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per channel: the mask of its events and every event's score in that channel."""
        scores = np.asarray(scores, dtype=np.float64)
        n = scores.shape[0]
        if self.nodes:
            node = np.argmax(scores, axis=1)
            by_node = [(node == k, scores[:, k]) for k in range(len(self.class_names))]
        else:
            by_node = [
                (np.ones(n, bool), discriminant(scores, self.class_names, self.signal_classes))
            ]
        if self.by_category:
            if category is None:
                raise InputDataError("channels by category need each event's category")
            by_cat = [category == k for k in range(len(self.categories))]
        else:
            by_cat = [np.ones(n, bool)]
        masks = [(c & m, score) for c in by_cat for m, score in by_node]
        return dict(zip(self.names, masks, strict=True))


def route(routing: Routing, scored: Scored) -> dict[str, VariedEvents]:
    """Scored events (a variation's files, data) per channel, in the channel's score."""
    return {
        name: VariedEvents(score[mask], scored.expected[mask])
        for name, (mask, score) in routing.split(scored.scores, scored.category).items()
    }
