"""One sort of the scores gives the weighted signal and background passing every cut.

ROC curve, best-accuracy cut and significance scans are all read off this table, so a
sample of millions of events is sorted exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from hepclf.evaluation._inputs import labelled
from hepclf.evaluation.stats import effective_entries


class BestCut(NamedTuple):
    """The maximum of a figure of merit over cuts, and the cut (select ``score >= cut``)."""

    value: float
    cut: float


@dataclass(frozen=True, eq=False)
class CutScan:
    """Weighted sums of events with ``score >= cut`` for every distinct score as cut.

    ``cuts`` is in decreasing order, so ``signal`` and ``background`` are cumulative sums
    from the tightest cut (only the highest score) to the loosest (every event).
    Zero-weight events are left out, as scikit-learn does, so they add no cut. Instances
    compare by identity (they hold arrays).
    """

    cuts: np.ndarray
    signal: np.ndarray
    background: np.ndarray
    signal_total: float
    background_total: float
    signal_neff: float
    background_neff: float

    @classmethod
    def from_arrays(
        cls, y: ArrayLike, score: ArrayLike, weight: ArrayLike | None = None
    ) -> CutScan:
        """Build the table; labels 0/1 (1 = signal), higher score = more signal-like.

        Millions of events are scanned with a few arrays of their size alive at a time:
        the sorted weights are summed in place, once per class.
        """
        is_signal, s, w = labelled(y, score, weight)
        nonzero = w != 0
        if not nonzero.all():
            is_signal, s, w = is_signal[nonzero], s[nonzero], w[nonzero]
        del nonzero
        signal_neff = effective_entries(w[is_signal])
        background_neff = effective_entries(w[~is_signal])
        order = np.argsort(s)[::-1]  # order within ties is irrelevant: sums are taken per value
        s = s[order]
        signal_sorted, w_signal = is_signal[order], w[order]
        del order, is_signal, w
        last_of_each_cut = np.flatnonzero(np.append(s[1:] != s[:-1], True))
        cuts = s[last_of_each_cut]
        del s
        w_background = np.where(signal_sorted, 0.0, w_signal)
        background = np.cumsum(w_background, out=w_background)[last_of_each_cut]
        del w_background
        w_signal[~signal_sorted] = 0.0
        signal = np.cumsum(w_signal, out=w_signal)[last_of_each_cut]
        return cls(
            cuts=cuts,
            signal=signal,
            background=background,
            signal_total=float(signal[-1]),
            background_total=float(background[-1]),
            signal_neff=signal_neff,
            background_neff=background_neff,
        )

    def best(
        self,
        figure_of_merit: Callable[[np.ndarray, np.ndarray], np.ndarray],
        signal_scale: float = 1.0,
        background_scale: float = 1.0,
    ) -> BestCut:
        """Maximise ``figure_of_merit(s, b)`` over cuts; s, b are the scaled passing sums.

        The scales turn the sample's weights into expected yields (e.g. luminosity over
        the test fraction). Cuts where the figure of merit is NaN (undefined) are skipped;
        if it is undefined everywhere the result is (NaN, NaN).
        """
        values = figure_of_merit(signal_scale * self.signal, background_scale * self.background)
        return _argmax(values, self.cuts)

    def best_accuracy(self) -> BestCut:
        """Cut with the highest weighted fraction of correctly classified events."""
        correct = self.signal + (self.background_total - self.background)
        return _argmax(correct / (self.signal_total + self.background_total), self.cuts)


def _argmax(values: np.ndarray, cuts: np.ndarray) -> BestCut:
    if np.isnan(values).all():
        return BestCut(float("nan"), float("nan"))
    i = int(np.nanargmax(values))
    return BestCut(float(values[i]), float(cuts[i]))
