"""Feature scaling fitted on the training part, saved with every trained model.

Fitting uses scikit-learn's scalers; the fitted state is kept as one affine map
``(x - center) / scale`` (optionally clipped), which is all each of those scalers is.
That keeps the state a small JSON document that can travel with a model and be
exported (e.g. into an ONNX graph) without scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from hepclf.config.training import NormalizationConfig


@dataclass
class Normalizer:
    """A fitted (or identity) per-feature affine transform."""

    method: str
    center: np.ndarray
    scale: np.ndarray
    clip: float | None = None

    @classmethod
    def fit(
        cls, X: np.ndarray, config: NormalizationConfig, rows: np.ndarray | None = None
    ) -> Normalizer:
        """Fit on training rows only (never on test rows): ``rows`` of ``X``, all without.

        One column at a time, so fitting costs a column of the training rows in memory
        rather than a (double-precision) copy of them all; each scaler treats every column
        on its own anyway.
        """
        n = X.shape[1]
        if config.method == "none":
            center, scale = np.zeros(n), np.ones(n)
        else:
            fits = [
                _fit_column(X[:, j] if rows is None else X[rows, j], config.method)
                for j in range(n)
            ]
            center, scale = np.array([c for c, _ in fits]), np.array([s for _, s in fits])
        scale = np.where(np.asarray(scale) > 0, scale, 1.0)
        return cls(
            config.method,
            np.asarray(center, np.float64),
            np.asarray(scale, np.float64),
            config.clip,
        )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled float32 features (clipped to ±clip when set)."""
        out = ((np.asarray(X, np.float64) - self.center) / self.scale).astype(np.float32)
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Normalizer:
        return cls(
            state["method"],
            np.asarray(state["center"], np.float64),
            np.asarray(state["scale"], np.float64),
            state.get("clip"),
        )


def _fit_column(column: np.ndarray, method: str) -> tuple[float, float]:
    """(center, scale) of one feature by scikit-learn's scaler for ``method``."""
    values = np.asarray(column).reshape(-1, 1)
    if method == "standard":
        fitted = StandardScaler().fit(values)
        return float(fitted.mean_[0]), float(fitted.scale_[0])
    if method == "robust":
        fitted = RobustScaler().fit(values)
        return float(fitted.center_[0]), float(fitted.scale_[0])
    fitted = MinMaxScaler().fit(values)
    return float(fitted.data_min_[0]), float(1.0 / fitted.scale_[0])
