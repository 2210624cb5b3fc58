"""Score files on disk: ROOT (a TTree) or Parquet, written atomically chunk by chunk.

A file is written under a hidden temporary name in the output folder and renamed into
place only once complete, so a file under the final name is always whole. Each output
records how it was made (``OutputMeta``) so a re-run can tell a complete, matching output
from a stale one: in ROOT as the TObjString ``hepclf_scores``, in Parquet as schema
metadata.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import uproot

Format = Literal["root", "parquet"]
META_KEY = "hepclf_scores"
SUFFIX = {"root": ".root", "parquet": ".parquet"}
Columns = Mapping[str, np.ndarray | ak.Array]


@dataclass(frozen=True)
class OutputMeta:
    """What an output holds and what it was made from."""

    input_entries: int
    columns: tuple[str, ...]
    selection: str | None
    models: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OutputMeta:
        data = json.loads(text)
        return cls(
            int(data["input_entries"]), tuple(data["columns"]), data["selection"], data["models"]
        )


@dataclass(frozen=True)
class ExistingOutput:
    """An output already on disk: its recorded meta and its actual number of entries."""

    meta: OutputMeta
    entries: int


def output_path(input_path: str, out_dir: Path | None, fmt: Format) -> Path:
    """``<out_dir or the input's folder>/<input stem>_scores.<root|parquet>``."""
    source = Path(input_path)
    folder = out_dir if out_dir is not None else source.parent
    return folder / f"{source.stem}_scores{SUFFIX[fmt]}"


def read_existing(path: Path, fmt: Format, tree: str) -> ExistingOutput | None:
    """The meta and entry count of an output, or None if it is not a readable hepclf output."""
    try:
        if fmt == "parquet":
            parquet = pq.ParquetFile(path)
            raw = (parquet.schema_arrow.metadata or {}).get(META_KEY.encode())
            if raw is None:
                return None
            return ExistingOutput(OutputMeta.from_json(raw.decode()), parquet.metadata.num_rows)
        with uproot.open(path) as file:
            return ExistingOutput(OutputMeta.from_json(str(file[META_KEY])), file[tree].num_entries)
    except Exception:  # unreadable, foreign or damaged: not a complete output
        return None


class ChunkWriter(Protocol):
    """Appends chunks of equal-length columns; ``entries`` counts the rows written."""

    entries: int

    def write(self, columns: Columns) -> None: ...

    def close(self) -> None: ...


class RootWriter:
    """A TTree made with ``mktree`` and grown with ``extend`` (a TTree, not an RNTuple)."""

    def __init__(self, path: Path, tree: str, template: Columns, meta: OutputMeta) -> None:
        self.entries = 0
        self._file = uproot.recreate(path)
        self._file[META_KEY] = meta.to_json()
        types = {
            k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in template.items()
        }
        self._tree = self._file.mktree(tree, types, title="hepclf scores")

    def write(self, columns: Columns) -> None:
        n = len(next(iter(columns.values())))
        if n:  # a chunk the selection emptied adds nothing
            self._tree.extend(dict(columns))
            self.entries += n

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """One Parquet row group per chunk, schema (and meta) fixed by the template."""

    def __init__(self, path: Path, template: Columns, meta: OutputMeta) -> None:
        self.entries = 0
        schema = _arrow_table(template).schema.with_metadata({META_KEY: meta.to_json()})
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, columns: Columns) -> None:
        table = _arrow_table(columns)
        if table.num_rows:  # a chunk the selection emptied adds nothing
            self._writer.write_table(table.cast(self._writer.schema))
            self.entries += table.num_rows

    def close(self) -> None:
        self._writer.close()


def _arrow_table(columns: Columns) -> pa.Table:
    arrays = [
        ak.to_arrow(v, extensionarray=False) if isinstance(v, ak.Array) else pa.array(v)
        for v in columns.values()
    ]
    return pa.Table.from_arrays(arrays, names=list(columns))


def remove_stale_partials(final: Path) -> None:
    """Remove temporary files an earlier, killed run left for this output."""
    for stale in final.parent.glob(f".{final.name}.*.partial"):
        with suppress(OSError):
            stale.unlink()


@contextmanager
def atomic_output(
    final: Path, fmt: Format, tree: str, template: Columns, meta: OutputMeta
) -> Iterator[ChunkWriter]:
    """A writer on a temporary file that becomes ``final`` only if the block completes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.partial"
    writer: Any = None
    try:
        if fmt == "parquet":
            writer = ParquetWriter(temporary, template, meta)
        else:
            writer = RootWriter(temporary, tree, template, meta)
        yield writer
        writer.close()
        os.replace(temporary, final)
    except BaseException:
        if writer is not None:
            with suppress(Exception):
                writer.close()
        temporary.unlink(missing_ok=True)
        raise
