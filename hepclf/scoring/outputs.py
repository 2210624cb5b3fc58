"""Score files on disk: ROOT (a TTree) or Parquet, written atomically chunk by chunk.

A file is written under a hidden temporary name in the output folder and renamed into
place only once complete, so a file under the final name is always whole. Each output
records how it was made (``OutputMeta``: writer, models, input file identity, selection):
in ROOT as the TObjString ``hepclf_scores`` (written first, so it survives truncation), in
Parquet as schema metadata. A completion record (``hepclf_complete``: entries and a SHA-256
per flat column) is written last. A re-run uses both to tell apart (``inspect_output``):

- a file hepclf did not write (no marker): never replaced without ``--overwrite``;
- a hepclf output that is damaged (unreadable, truncated, checksum or entries wrong):
  reported and rewritten;
- a complete one: skipped when it matches the run, refused or rewritten otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import uproot

from hepclf.config.samples import branch_safe
from hepclf.runtime.files import atomic_path, stale_partials
from hepclf.runtime.version import __version__
from hepclf.scoring import FORMATS, Format

META_KEY = "hepclf_scores"
DONE_KEY = "hepclf_complete"
_HEAD_BYTES = 1 << 16  # where a ROOT output's marker lies (written before any data)
SUFFIX: dict[str, str] = {fmt: f".{fmt}" for fmt in FORMATS}
Columns = Mapping[str, np.ndarray | ak.Array]


@dataclass(frozen=True)
class OutputMeta:
    """What an output holds and what it was made from."""

    input_entries: int
    columns: tuple[str, ...]
    selection: str | None
    models: dict[str, str]
    input: dict[str, Any] = field(default_factory=dict)
    writer: str = f"hepclf {__version__}"
    classes: dict[str, list[str]] = field(default_factory=dict)
    """Multi-class models only: score branch -> class order (``node_<label>`` indexes it)."""
    tree: str | None = None
    """The input tree scored (None in outputs of hepclf before it was recorded)."""

    def to_json(self) -> str:
        data = asdict(self)
        if not data["classes"]:  # two-class outputs keep their record as it was
            del data["classes"]
        if data["tree"] is None:
            del data["tree"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OutputMeta:
        data = json.loads(text)
        return cls(
            int(data["input_entries"]),
            tuple(data["columns"]),
            data["selection"],
            data["models"],
            dict(data["input"]),
            str(data["writer"]),
            dict(data.get("classes", {})),
            data.get("tree"),
        )


def input_identity(path: str, tree: Any) -> dict[str, Any]:
    """What identifies an input file: its name, size and ROOT file UUID (kept by copies)."""
    return {
        "name": Path(path).name,
        "bytes": getattr(tree.file.source, "num_bytes", None),
        "uuid": str(getattr(tree.file, "uuid", "")),
    }


@dataclass(frozen=True)
class ExistingOutput:
    """A file found at an output name, as hepclf judges it.

    ``state``: ``complete`` (a whole hepclf output: ``meta`` and ``entries`` are set),
    ``damaged`` (hepclf wrote it, it is no longer whole: rewrite it), or ``foreign`` (not
    written by hepclf: never replaced without --overwrite); ``why`` says what was found.
    """

    state: Literal["complete", "damaged", "foreign"]
    why: str = ""
    meta: OutputMeta | None = None
    entries: int = 0


def output_path(
    input_path: str, out_dir: Path | None, fmt: Format, tree: str | None = None
) -> Path:
    """``<out_dir or the input's folder>/<input stem>_scores.<root|parquet>``; with ``tree``
    (an input holding several trees) ``<input stem>_<tree>_scores.<root|parquet>``, so the
    outputs of two trees of one file never share a name."""
    source = Path(input_path)
    folder = out_dir if out_dir is not None else source.parent
    part = f"_{branch_safe(tree)}" if tree is not None else ""
    return folder / f"{source.stem}{part}_scores{SUFFIX[fmt]}"


def written_for_tree(path: Path, fmt: Format, tree: str) -> bool:
    """Whether the hepclf output at ``path`` holds the scores of the input tree ``tree``:
    its record names the tree, or (ROOT outputs of earlier versions) it holds that tree."""
    if foreign_reason(path, fmt) is not None:
        return False
    try:
        if fmt == "parquet":
            kv = pq.read_schema(path).metadata or {}
            return OutputMeta.from_json(kv[META_KEY.encode()].decode()).tree == tree
        with uproot.open(path) as file:
            recorded = OutputMeta.from_json(str(file[META_KEY])).tree
            names = {k.rsplit(";", 1)[0] for k in file.keys(recursive=False)}
        return recorded == tree if recorded is not None else tree in names
    except Exception:  # unreadable: not claimed, so it is left as it is
        return False


def foreign_reason(path: Path, fmt: Format) -> str | None:
    """Why ``path`` is not a file hepclf wrote (None: it carries hepclf's marker).

    Cheap (no data read): the service asks it for every output before accepting a job.
    """
    try:
        if fmt == "parquet":
            try:
                schema = pq.read_schema(path)
            except Exception:
                return "it is not a readable Parquet file and carries no hepclf marker"
            if META_KEY.encode() not in (schema.metadata or {}):
                return "it is a Parquet file without hepclf's metadata"
            return None
        with path.open("rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if not head.startswith(b"root"):
        return "it is not a ROOT file"
    if META_KEY.encode() not in head:
        return "it is a ROOT file without hepclf's marker"
    return None


def inspect_output(path: Path, fmt: Format, tree: str) -> ExistingOutput:
    """Judge an existing file at an output name; reads it whole to check it (see module)."""
    foreign = foreign_reason(path, fmt)
    if foreign is not None:
        return ExistingOutput("foreign", foreign)
    try:
        meta, done, entries, digests = _read_back(path, fmt, tree)
    except Exception as err:  # unreadable: truncated, corrupted, killed while copied
        lines = str(err).strip().splitlines()
        why = f"{type(err).__name__}: {lines[0] if lines else 'no details'}"
        return ExistingOutput("damaged", f"it cannot be read whole ({why})")
    if done is None:
        return ExistingOutput("damaged", "it has no completion record", meta, entries)
    if done.get("entries") != entries:
        return ExistingOutput(
            "damaged",
            f"it holds {entries} entries, its completion record says {done.get('entries')}",
            meta,
            entries,
        )
    if done.get("sha256") != digests:
        return ExistingOutput("damaged", "its columns do not match their checksums", meta, entries)
    return ExistingOutput("complete", "", meta, entries)


def _read_back(
    path: Path, fmt: Format, tree: str
) -> tuple[OutputMeta, dict[str, Any] | None, int, dict[str, str]]:
    """Meta, completion record, entries and column checksums, reading every column."""
    checksum = Checksum()
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        kv = parquet.metadata.metadata or {}
        meta = OutputMeta.from_json(kv[META_KEY.encode()].decode())
        raw_done = kv.get(DONE_KEY.encode())
        for column in meta.columns:
            checksum.update({column: parquet.read(columns=[column])[column].to_numpy()})
        entries = parquet.metadata.num_rows
    else:
        with uproot.open(path) as file:
            meta = OutputMeta.from_json(str(file[META_KEY]))
            raw_done = str(file[DONE_KEY]).encode() if DONE_KEY in file else None
            scores = file[meta.tree or tree]  # judged whole even if of another tree
            entries = int(scores.num_entries)
            for column in meta.columns:
                branch = scores[column]
                flat = isinstance(branch.interpretation, uproot.AsDtype)
                checksum.update({column: branch.array(library="np" if flat else "ak")})
    done = json.loads(raw_done) if raw_done is not None else None
    return meta, done, entries, checksum.digests()


class Checksum:
    """SHA-256 of each flat column's values, fed chunk by chunk, as written or read back."""

    def __init__(self) -> None:
        self._hashes: dict[str, Any] = {}

    def update(self, columns: Columns) -> None:
        for name, values in columns.items():
            if isinstance(values, ak.Array):
                if values.ndim != 1 or not isinstance(values.layout, ak.contents.NumpyArray):
                    continue  # jagged: checked by reading it whole, not by checksum
                values = ak.to_numpy(values)
            array = np.ascontiguousarray(values)
            array = array.astype(array.dtype.newbyteorder("<"), copy=False)
            self._hashes.setdefault(name, hashlib.sha256()).update(array.tobytes())

    def digests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}


class ChunkWriter(Protocol):
    """Appends chunks of equal-length columns; ``entries`` counts the rows written."""

    entries: int

    def write(self, columns: Columns) -> None: ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


class RootWriter:
    """A TTree made with ``mktree`` and grown with ``extend`` (a TTree, not an RNTuple)."""

    def __init__(self, path: Path, tree: str, template: Columns, meta: OutputMeta) -> None:
        self.entries = 0
        self.checksum = Checksum()
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
            self.checksum.update(columns)
            self.entries += n

    def finish(self) -> None:
        """Write the completion record: the file is whole once this is in it."""
        self._file[DONE_KEY] = _done_record(self.entries, self.checksum)

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """One Parquet row group per chunk, schema (and meta) fixed by the template."""

    def __init__(self, path: Path, template: Columns, meta: OutputMeta) -> None:
        self.entries = 0
        self.checksum = Checksum()
        schema = _arrow_table(template).schema.with_metadata({META_KEY: meta.to_json()})
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, columns: Columns) -> None:
        table = _arrow_table(columns)
        if table.num_rows:  # a chunk the selection emptied adds nothing
            self._writer.write_table(table.cast(self._writer.schema))
            self.checksum.update(columns)
            self.entries += table.num_rows

    def finish(self) -> None:
        """Write the completion record into the footer's key-value metadata."""
        self._writer.add_key_value_metadata({DONE_KEY: _done_record(self.entries, self.checksum)})

    def close(self) -> None:
        self._writer.close()


def _done_record(entries: int, checksum: Checksum) -> str:
    return json.dumps({"entries": entries, "sha256": checksum.digests()}, sort_keys=True)


def _arrow_table(columns: Columns) -> pa.Table:
    arrays = [
        ak.to_arrow(v, extensionarray=False) if isinstance(v, ak.Array) else pa.array(v)
        for v in columns.values()
    ]
    return pa.Table.from_arrays(arrays, names=list(columns))


def remove_stale_partials(final: Path) -> None:
    """Remove temporary files an earlier, killed run left for this output."""
    for stale in stale_partials(final):
        with suppress(OSError):
            stale.unlink()


@contextmanager
def atomic_output(
    final: Path, fmt: Format, tree: str, template: Columns, meta: OutputMeta
) -> Iterator[ChunkWriter]:
    """A writer on a temporary file that becomes ``final`` only if the block completes."""
    with atomic_path(final) as temporary:
        writer: Any = (
            ParquetWriter(temporary, template, meta)
            if fmt == "parquet"
            else RootWriter(temporary, tree, template, meta)
        )
        try:
            yield writer
            writer.finish()
        except BaseException:
            with suppress(Exception):
                writer.close()
            raise
        writer.close()
