"""Events the physics result needs beyond the training table: weight-variation factors,
the files of systematic variations and recorded data, read with the pipeline's own ingest.

Each is read as a pipeline of its own (the same features, selection, categories and event
id, other samples), so its events pass exactly the cuts and feature definitions the
nominal ones did, and are cached like them. Weight-variation factors are read per sample
together with the features and checked to line up event by event with the nominal table.
Varied files and data are scored with the same model (and its normaliser) as the nominal
events; :class:`PhysicsInputs` reads each once per run and scores it per model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepclf.config import PipelineConfig
from hepclf.config.features import FeatureConfig
from hepclf.config.result import ShapeConfig
from hepclf.config.samples import SampleConfig
from hepclf.ingest import FeatureTable, ingest
from hepclf.physics.yields import Scored
from hepclf.runtime.errors import InputDataError
from hepclf.training.bundle import ModelBundle

EXTRA_LABEL = "extra"


def read_extra(
    config: PipelineConfig,
    samples: list[SampleConfig],
    *,
    features: list[FeatureConfig] | None = None,
    categories: bool = True,
    use_cache: bool = True,
) -> FeatureTable:
    """The feature table of ``samples`` read as the pipeline reads its own."""
    derived = config.model_copy(
        update={
            "samples": [s.model_copy(update={"label": EXTRA_LABEL}) for s in samples],
            "classes": None,
            "signal": None,
            "result": None,
            "features": features or config.features,
            "categories": config.categories if categories else None,
        }
    )
    return ingest(derived, use_cache=use_cache)


def weight_factors(
    config: PipelineConfig, table: FeatureTable, use_cache: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per weight-variation shape, the per-event (up, down) factors over the whole table
    (1 for samples it does not vary; down None: to be mirrored)."""
    shapes = _weight_shapes(config)
    factors = {
        name: (np.ones(len(table)), None if s.down is None else np.ones(len(table)))
        for name, s in shapes.items()
    }
    for k, sample in enumerate(config.simulated_samples):
        mine = [n for n, s in shapes.items() if s.samples is None or sample.name in s.samples]
        if not mine:
            continue
        extra = [
            FeatureConfig(name=f"__{name}_{side}", expr=expression)
            for name in mine
            for side, expression in (("up", shapes[name].up), ("down", shapes[name].down))
            if expression is not None
        ]
        read = read_extra(
            config,
            [sample],
            features=[*config.features, *extra],
            categories=False,
            use_cache=use_cache,
        )
        rows = np.flatnonzero(table.sample == k)
        n = len(config.feature_columns)
        if len(read) != rows.size or not np.array_equal(read.X[:, :n], table.features(rows)):
            raise InputDataError(
                f"sample {sample.name!r}: the weight variations {mine} are not finite for "
                f"{abs(rows.size - len(read))} or more selected events; an 'up'/'down' "
                "expression must give a finite number for every event"
            )
        for j, feature in enumerate(extra):
            name, side = feature.name[2:].rsplit("_", 1)
            factors[name][0 if side == "up" else 1][rows] = read.X[:, n + j]  # type: ignore[index]
    return factors


def _weight_shapes(config: PipelineConfig) -> dict[str, ShapeConfig]:
    if config.result is None:
        return {}
    return {n: s for n, s in config.result.systematics.shapes.items() if s.up is not None}


def score_table(bundle: ModelBundle, table: FeatureTable) -> np.ndarray:
    """The model's outputs on every event of ``table`` (each k-fold event by the fold model
    its event id names, category models by the table's categories)."""
    features = table.features_frame()[bundle.columns].to_numpy(dtype=np.float32)
    if bundle.routing_columns:
        if table.category is None:
            raise InputDataError(f"model {bundle.name!r} needs each event's category")
        features = np.column_stack([features, table.category])
    X = bundle.with_folds(features, table.event_id if bundle.fold_columns else None)
    proba = bundle.probabilities(X)
    return proba[:, 1] if proba.shape[1] == 2 else proba


@dataclass
class PhysicsInputs:
    """Reads the extra events once per run; scores them per model.

    ``table`` is the nominal table. Varied files of a sample drop the events whose event id
    the model trained on (when the pipeline has ``event_id`` and a test part), and their
    yields are scaled by the kept fraction, as the nominal test events' are.
    """

    config: PipelineConfig
    table: FeatureTable
    use_cache: bool = True
    _factors: dict[str, tuple[np.ndarray, np.ndarray | None]] | None = None
    _tables: dict[tuple[str, str, str], FeatureTable | None] = field(default_factory=dict)

    @property
    def shapes(self) -> dict[str, ShapeConfig]:
        return self.config.result.systematics.shapes if self.config.result else {}

    def factors(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        if self._factors is None:
            self._factors = weight_factors(self.config, self.table, self.use_cache)
        return self._factors

    def _varied_table(self, shape: str, sample: str, side: str) -> FeatureTable | None:
        key = (shape, sample, side)
        if key not in self._tables:
            inputs = (self.shapes[shape].inputs or {})[sample]
            files = inputs.up if side == "up" else inputs.down
            nominal = next(s for s in self.config.simulated_samples if s.name == sample)
            self._tables[key] = (
                None
                if files is None
                else read_extra(
                    self.config,
                    [
                        nominal.model_copy(
                            update={"files": files.files, "tree": files.tree or nominal.tree}
                        )
                    ],
                    use_cache=self.use_cache,
                )
            )
        return self._tables[key]

    def data(self, bundle: ModelBundle) -> Scored:
        """Recorded data scored by the model; each event counts its weight (1 unless set)."""
        if ("data", "", "") not in self._tables:
            self._tables["data", "", ""] = read_extra(
                self.config, self.config.data_samples, use_cache=self.use_cache
            )
        table = self._tables["data", "", ""]
        assert table is not None
        return Scored(score_table(bundle, table), table.weight.astype(np.float64), table.category)

    def varied(
        self, bundle: ModelBundle, rows: np.ndarray | None
    ) -> dict[str, dict[str, tuple[Scored, Scored | None]]]:
        """Per input shape and sample, the (up, down) events scored by the model
        (``rows``: the evaluated nominal rows; None: out-of-fold, every row)."""
        out: dict[str, dict[str, tuple[Scored, Scored | None]]] = {}
        luminosity = self.config.result.luminosity if self.config.result else 1.0
        for shape, config in self.shapes.items():
            for sample in config.inputs or {}:
                sides: list[Scored | None] = []
                for side in ("up", "down"):
                    table = self._varied_table(shape, sample, side)
                    if table is None:
                        sides.append(None)
                        continue
                    keep = self._untrained(table, sample, rows)
                    expected = table.weight[keep] * luminosity * len(table) / max(keep.size, 1)
                    category = None if table.category is None else table.category[keep]
                    sides.append(
                        Scored(score_table(bundle, table.subset(keep)), expected, category)
                    )
                up, down = sides
                assert up is not None
                out.setdefault(shape, {})[sample] = (up, down)
        return out

    def _untrained(self, table: FeatureTable, sample: str, rows: np.ndarray | None) -> np.ndarray:
        """Rows of a varied table whose event id the model did not train on."""
        everything = np.arange(len(table))
        if rows is None or self.config.event_id is None:
            return everything
        trained = self.table.sample == self.table.sample_names.index(sample)
        trained[rows] = False
        return everything[~np.isin(table.event_id, self.table.event_id[trained])]
