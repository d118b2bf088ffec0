"""Atomic file writes: a file is either its old self or complete, whatever kills the process in between."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager

__all__ = ["atomic_path", "write_text_atomic", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path):
    """Yield a temporary path in the folder of ``path`` (of its target, for a symlink) to write to; on a
    normal exit it is flushed to disk and renamed over ``path`` with the permissions a new file gets (umask)
    or the old file had; on an exception it is removed. OSError naming ``path`` (as given) when it cannot be
    written or exists and is not a regular file (a device, a folder: never replaced). Temporary names are
    ``.<name>.<random>.tmp``."""
    given = os.fspath(path)
    target = os.path.realpath(given)
    if os.path.exists(target):
        if not os.path.isfile(target):
            raise OSError(errno.EEXIST, "exists and is not a regular file", given)
        mode = stat.S_IMODE(os.stat(target).st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=TMP_SUFFIX,
                                   dir=os.path.dirname(target))
    except OSError as err:
        raise OSError(err.errno, err.strerror, given) from None
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror, given) from None
        raise


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def remove_stale(folder, name: str) -> None:
    """Delete the temporary files that a killed ``atomic_path(folder / name)`` left behind."""
    from pathlib import Path

    for stale in Path(folder).glob(f".{name}.*{TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
