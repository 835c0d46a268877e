"""Data contracts and datasets of glocal.

Submodules: :mod:`~glocal_cli.data.keypoints` (the ``Pose`` type, keypoint file formats, heatmaps),
:mod:`~glocal_cli.data.parsing` (the 8 semantic classes and label maps),
:mod:`~glocal_cli.data.images` (robust loading, fitting to the model frame),
:mod:`~glocal_cli.data.naming` (benchmark image names) and :mod:`~glocal_cli.data.layout`
(the prepared dataset folder).

This package module only holds :func:`atomic_output`, the one helper the submodules share for
writing files so that a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "atomic_write_text"]


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    The temporary file keeps ``path``'s suffix (so writers that choose a format by suffix work).
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files; give the result the permissions of a normal new file.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (temporary file + rename)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
