"""The feature table: what ingest produces and every later step consumes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hepclf.runtime.errors import InputDataError
from hepclf.runtime.files import atomic_path

METADATA_KEY = b"hepclf"
DIGEST_ROWS = 65_536


@dataclass
class FeatureTable:
    """Features (float32), label (class index; 1 = signal for two classes), physical weight,
    sample index, event id and, with ``categories:``, each event's category index."""

    X: np.ndarray
    columns: list[str]
    label: np.ndarray
    weight: np.ndarray
    sample: np.ndarray
    sample_names: list[str]
    event_id: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    category: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, index: np.ndarray) -> FeatureTable:
        """The rows at ``index`` (an integer or boolean array)."""
        return FeatureTable(
            self.X[index],
            self.columns,
            self.label[index],
            self.weight[index],
            self.sample[index],
            self.sample_names,
            self.event_id[index],
            self.info,
            None if self.category is None else self.category[index],
        )

    def features(self, rows: np.ndarray) -> np.ndarray:
        """The features of ``rows`` (a partitioned table reads them from its partitions)."""
        return self.X[rows]

    def digest(self) -> str:
        """A short content digest of features, labels, weights and event ids."""
        h = hashlib.blake2b(digest_size=4)
        # fed a block of rows at a time: the features are stored column by column, and a
        # row-major copy of them all would double the table
        for array in (self.X, self.label, self.weight, self.event_id):
            for start in range(0, max(len(array), 1), DIGEST_ROWS):
                h.update(np.ascontiguousarray(array[start : start + DIGEST_ROWS]).data)
        return h.hexdigest()

    def features_frame(self) -> pd.DataFrame:
        """The raw (not normalised) feature columns, as a model's pyfunc expects them."""
        return pd.DataFrame(self.X, columns=self.columns, copy=False)

    def to_pandas(self) -> pd.DataFrame:
        frame = self.features_frame()
        frame["label"] = self.label
        frame["weight"] = self.weight
        frame["sample"] = pd.Categorical.from_codes(self.sample, categories=self.sample_names)
        frame["event_id"] = self.event_id
        return frame

    def to_arrow(self, copy: bool = False) -> pa.Table:
        """The table as Arrow columns.

        Without ``copy`` the feature columns share memory with ``X`` (no copy when it is
        stored column by column); ``copy=True`` gives a snapshot that later changes to ``X``
        cannot reach, for a writer running in the background.
        """
        features = np.array(self.X.T, order="C") if copy else self.X.T
        arrays = [pa.array(column) for column in features]
        arrays += [  # a snapshot (copy) for a background writer, else shared where possible
            pa.array(self.label.astype(np.int8, copy=copy)),
            pa.array(self.weight.astype(np.float64, copy=copy)),
            pa.DictionaryArray.from_arrays(
                pa.array(self.sample.astype(np.int32)), pa.array(self.sample_names)
            ),
            pa.array(self.event_id.astype(np.int64, copy=copy)),
        ]
        names = [*self.columns, "label", "weight", "sample", "event_id"]
        if self.category is not None:
            arrays.append(pa.array(self.category.astype(np.int16, copy=copy)))
            names.append("category")
        meta = {"columns": self.columns, "sample_names": self.sample_names, "info": self.info}
        return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(
            {METADATA_KEY: json.dumps(meta).encode()}
        )

    def write_parquet(self, path: str | Path, arrow: pa.Table | None = None) -> Path:
        """Write atomically (a temporary file renamed when complete).

        Dictionary encoding is used for the sample column only: tried on float features it
        costs most of the writing time and saves nothing. LZ4 keeps writing and reading fast.
        """
        path = Path(path)
        with atomic_path(path) as temporary:
            pq.write_table(
                arrow if arrow is not None else self.to_arrow(),
                temporary,
                compression="lz4",
                use_dictionary=["sample"],
            )
        return path

    @classmethod
    def read_parquet(cls, path: str | Path) -> FeatureTable:
        """Read a table written by :meth:`write_parquet`."""
        try:
            table = pq.read_table(path)
        except Exception as err:
            raise InputDataError(f"{path}: not a readable Parquet feature table ({err})") from None
        raw = (table.schema.metadata or {}).get(METADATA_KEY)
        if raw is None:
            raise InputDataError(f"{path}: not written by `hepclf ingest` (no hepclf metadata)")
        meta = json.loads(raw)
        columns = meta["columns"]
        # column-major, as ingest builds it, filled column by column: no row-major
        # temporary beside the Arrow columns
        X = np.empty((len(columns), table.num_rows), dtype=np.float32)
        for j, column in enumerate(columns):
            X[j] = table[column].to_numpy()
        X = X.T
        sample = table["sample"].combine_chunks().indices.to_numpy().astype(np.int16)
        return cls(
            X,
            columns,
            table["label"].to_numpy().astype(np.int8),
            table["weight"].to_numpy(),
            sample,
            meta["sample_names"],
            table["event_id"].to_numpy(),
            meta.get("info", {}),
            table["category"].to_numpy() if "category" in table.column_names else None,
        )
