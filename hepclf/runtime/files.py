"""One home for what every command does with files: atomic outputs, globs, "did you mean".

Outputs are written under a hidden temporary name in the target folder and renamed into
place when complete, so a file under the final name is always whole and an earlier result
stays intact if the writer dies. The temporary file gets the permissions an ordinary
``open(..., "w")`` would give (``0666 & ~umask``): ``tempfile.mkstemp`` alone would leave
every output readable by its owner only.
"""

from __future__ import annotations

import difflib
import glob
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # not thread-safe, hence only the fallback
    os.umask(mask)
    return mask


def output_mode() -> int:
    """Permission bits of a new output file: what the user's umask allows."""
    return 0o666 & ~current_umask()


def partial_path(final: Path) -> Path:
    """A unique hidden temporary name next to ``final`` (same file system: rename is atomic)."""
    return final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}"


def written_path(final: str | Path) -> Path:
    """Where an output named ``final`` is written: a symbolic link's target, else itself."""
    final = Path(final).expanduser()
    return Path(os.path.realpath(final)) if final.is_symlink() else final


def stale_partials(final: Path) -> list[Path]:
    """Temporary files an earlier, killed writer left for ``final``."""
    final = written_path(final)
    return sorted(final.parent.glob(f".{final.name}.*{PARTIAL_SUFFIX}"))


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """A temporary path to write; it becomes ``final`` only if the block completes.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``final`` is left as it was. A symbolic link is written through: its target is
    replaced and the link stays, as ``cp`` over a link does.
    """
    final = written_path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(final)
    try:
        yield temporary
        os.chmod(temporary, output_mode())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(data: bytes, out: str | Path) -> Path:
    """Write ``data`` to ``out`` atomically (flushed to disk before the rename)."""
    out = Path(out).expanduser()
    with atomic_path(out) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return out


def matching_files(pattern: str) -> list[str]:
    """Files a path or glob names, sorted (folders and broken links left out)."""
    matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    return [m for m in matched if Path(m).is_file()]


def expand_files(patterns: Iterable[str], no_match: Callable[[str], Exception]) -> list[str]:
    """Every file of the patterns in order, each once; ``no_match(pattern)`` is raised for a
    pattern that names no file, so each caller words the error for its own users."""
    files: dict[str, None] = {}  # ordered and de-duplicated in linear time
    for pattern in patterns:
        matched = matching_files(pattern)
        if not matched:
            raise no_match(pattern)
        files.update(dict.fromkeys(matched))
    return list(files)


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like a misspelling of ``name``."""
    return difflib.get_close_matches(name, sorted(set(candidates)), n=n, cutoff=0.6)


def with_hints(names: Sequence[str], candidates: Iterable[str]) -> str:
    """``'lep_pT' (did you mean 'lep_pt'?), 'mett' (did you mean 'met'?)`` for missing names."""
    candidates = sorted(set(candidates))
    parts = []
    for name in names:
        close = close_matches(name, candidates)
        parts.append(
            repr(name) + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
        )
    return ", ".join(parts)


def publish_outputs(staging: Path, output: Path) -> None:
    """Move finished files into ``output`` one by one with atomic renames.

    Results are produced in a staging folder first, so a failed run leaves the previous
    results in ``output`` untouched.
    """
    output.mkdir(parents=True, exist_ok=True)
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            target = output / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def staging_dir(output: Path | None) -> Path:
    """A private folder next to ``output`` (same file system, so renames are atomic)."""
    parent = (output.parent if output else Path(tempfile.gettempdir())).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".hepclf-staging-", dir=parent))
