"""A file's content digest, computed in one place: ``sha256:`` and the SHA-256 of its bytes, read in blocks.

Two records use it and must agree with what they recorded before: a task's data fingerprint (``content_hash``,
taken of the very bytes the parser reads, through :class:`HashingReader`) and the file a trial-code re-tune was
tuned on (``lineage.data_digest``, :func:`file_digest`). Both were ``"sha256:" + hexdigest`` of the file's bytes
before they shared this module, so every digest recorded earlier still matches the same file.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import os
from collections.abc import Callable
from typing import Any, BinaryIO

PREFIX = "sha256:"
_BLOCK = 1 << 20


def _said(sha: Any) -> str:
    return f"{PREFIX}{sha.hexdigest()}"


class HashingReader(io.RawIOBase):
    """A binary file read through, its SHA-256 taken of every byte read (streamed: the file is never held whole),
    so that the bytes hashed are the bytes parsed (two opens could hash one file and parse its replacement)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        if n:
            self._sha.update(memoryview(b)[:n])
        return int(n or 0)

    def digest(self) -> str:
        """The digest of the whole file: what the reader left unread (nothing, once it reached the end) read too."""
        for chunk in iter(lambda: self._f.read(_BLOCK), b""):
            self._sha.update(chunk)
        return _said(self._sha)


def file_digest(path: str | os.PathLike[str]) -> str:
    """The digest of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return HashingReader(f).digest()


def source_digest(fn: Callable[..., Any]) -> str | None:
    """The digest of a function's source as Python finds it (``inspect.getsource``; a ``functools.partial``'s
    function's): what tells a notebook's function edited since an experiment ran it, which the record names only
    (``<interactive>:objective``). None where no source can be read (a builtin, code compiled from a string)."""
    try:
        source = inspect.getsource(fn.func if isinstance(fn, functools.partial) else fn)
    except (OSError, TypeError):
        return None
    return _said(hashlib.sha256(source.encode("utf-8", "surrogatepass")))


def bytes_digest(raw: bytes) -> str:
    """The digest of bytes already held (a Parquet file, read whole to be parsed): equal to the file's."""
    return _said(hashlib.sha256(raw))
