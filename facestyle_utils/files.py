"""Safe file writing (a crash, a full disk or an interrupted kernel never leaves half a file), file hashes,
and distinct output names within one run.

Everything the course writes (images, checkpoints, model files) goes through
:func:`atomic_write`: the data goes to a temporary file beside the target, is flushed to disk,
and only then renamed over the target (``os.replace`` is atomic on one file system).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary temporary file next to ``path``; on success it replaces ``path``, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes files private (0600); use normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class OutputNames:
    """Hands out distinct output paths within one run, so no result overwrites another or an input.

    ``photo.png`` and ``photo.jpg`` both want ``photo_stylized.png``; two folders called ``faces``
    both want ``out/faces``. The first to :meth:`claim` a path gets it; later ones get ``-2``,
    ``-3``, ... before the suffix. Paths are compared resolved and case-folded, because macOS and
    Windows file systems treat ``X.png`` and ``x.png`` as one file. ``reserved`` paths (the run's
    inputs) are never handed out.
    """

    def __init__(self, reserved: Iterable[str | os.PathLike] = ()) -> None:
        self._taken = {self._key(Path(path)) for path in reserved}

    @staticmethod
    def _key(path: Path) -> str:
        return str(path.resolve()).casefold()

    def claim(self, path: str | os.PathLike, also: Iterable[str] = ()) -> Path:
        """``path`` itself if nobody in this run has it yet, else the first free ``<stem>-N<suffix>``.

        ``also`` lists other suffixes the writer may switch to (a video written as ``.avi``
        instead of ``.mp4``): the name is chosen free under each of them, and all are claimed.
        """
        path = Path(path)
        candidate, number = path, 1
        while any(self._key(variant) in self._taken for variant in self._variants(candidate, also)):
            number += 1
            candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        self._taken.update(self._key(variant) for variant in self._variants(candidate, also))
        return candidate

    @staticmethod
    def _variants(path: Path, suffixes: Iterable[str]) -> list[Path]:
        return [path, *(path.with_suffix(suffix) for suffix in suffixes)]
