"""Confine job paths to the configured data roots: no ``..`` and no symlink escapes."""

from __future__ import annotations

import os
from pathlib import Path

from hepclf.runtime.errors import HepclfError
from hepclf.runtime.files import matching_files


class ForbiddenPath(HepclfError):
    """A path outside every data root (answered with 403)."""


class DataRoots:
    """The folders a job may read from and write to, symlinks resolved."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        missing = [str(r) for r in roots if not Path(r).is_dir()]
        if missing:
            raise HepclfError(f"--data-root: not a folder: {', '.join(missing)}")
        self.roots = tuple(Path(r).resolve() for r in roots)

    def _inside(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def check(self, text: str) -> Path:
        """The resolved path of ``text`` (which need not exist) if it lies under a root."""
        try:
            return self._check(text)
        except (OSError, ValueError) as err:  # a name too long, a NUL byte: the request's fault
            raise HepclfError(f"{text[:300]!r}: not a usable path ({err})") from None

    def _check(self, text: str) -> Path:
        if "\x00" in text:
            raise ValueError("it contains a NUL byte")
        if not self.roots:
            raise ForbiddenPath("this service has no data roots; start it with --data-root DIR")
        path = Path(text)
        if not path.is_absolute():
            raise ForbiddenPath(f"{text!r}: give an absolute path under a data root")
        lexical = Path(os.path.normpath(path))
        resolved = path.resolve()
        if not (self._inside(lexical) and self._inside(resolved)):
            roots = ", ".join(str(r) for r in self.roots)
            raise ForbiddenPath(f"{text!r} is outside the data roots ({roots})")
        return resolved

    def expand(self, pattern: str) -> list[Path]:
        """Files matching ``pattern`` (a path or glob), each checked to lie under a root."""
        self.check(pattern)
        try:
            files = matching_files(pattern)
        except (OSError, ValueError) as err:
            raise HepclfError(f"{pattern[:300]!r}: not a usable path ({err})") from None
        return [self.check(m) for m in files]
