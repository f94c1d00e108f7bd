"""The index folder's file-system protocol: one writer, readers pinned to generations, durable swaps.

    LOCK                    held (flock) by the one writer; holds its PID for the message others get
    CURRENT                 the live generation's number, replaced atomically (write, fsync, rename, fsync)
    generations/<n>.json    a generation: which segments, which documents (see manifest.py)
    segments/<id>/          immutable segment folders; `.<id>.tmp` while being written
    leases/<n>.<pid>.<tok>  a reader's hold on generation n (flock'ed while held)

A reader leases a generation before it opens it and re-reads CURRENT afterwards; the writer
deletes a generation's files only when it is not CURRENT and no lease on it is held. A lease
whose process died is released by the kernel with its flock, so it is provably dead. Only the
writer (holding LOCK) deletes anything, so nothing another live writer owns is ever touched.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from ..writer_lock import LOCK, WriterLock  # noqa: F401 - the folder's lock, shared with Milvus Lite

POINTER = "CURRENT"
GENERATIONS = "generations"
SEGMENTS = "segments"
LEASES = "leases"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Every file below `path`, then every folder: data before the names that point at it."""
    for folder, _, files in os.walk(path):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for folder, _, _ in os.walk(path, topdown=False):
        fsync_dir(Path(folder))


def write_durably(path: Path, data: bytes) -> None:
    """Write via a temp file, fsync, rename, fsync the folder: a power cut leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_pointer(folder: Path) -> int | None:
    try:
        text = (folder / POINTER).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def pointer_stamp(folder: Path) -> tuple[int, int] | None:
    """Changes whenever CURRENT is swapped (a new inode); cheap enough to check on every request."""
    try:
        st = os.stat(folder / POINTER)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def write_pointer(folder: Path, number: int) -> None:
    write_durably(folder / POINTER, f"{number:08d}\n".encode("ascii"))


class Lease:
    """A reader's hold on one generation.

    The lease file is locked under a temporary name and only then renamed into place, so the
    writer never sees an unlocked lease of a live reader.
    """

    path: Path
    _fd: int | None

    def __init__(self, folder: Path, number: int):
        leases = Path(folder) / LEASES
        leases.mkdir(parents=True, exist_ok=True)
        self.number = number
        while True:
            name = f"{number:08d}.{os.getpid()}.{secrets.token_hex(4)}"
            tmp = leases / f".{name}.tmp"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.rename(tmp, leases / name)
            except FileNotFoundError:  # the writer found it unlocked and removed it: try again
                os.close(fd)
                continue
            self.path, self._fd = leases / name, fd
            return

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = None

    def __del__(self):  # a forgotten lease must not pin a generation forever
        try:
            self.release()
        except Exception:
            pass


def held_generations(folder: Path) -> set[int]:
    """Generations some live reader holds; dead readers' lease files are removed on the way."""
    held: set[int] = set()
    leases = Path(folder) / LEASES
    if not leases.is_dir():
        return held
    for path in leases.iterdir():
        number = "" if path.name.startswith(".") else path.name.split(".", 1)[0]
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if number.isdigit():
                held.add(int(number))
            continue
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)  # we got its lock, so its reader is gone
    return held
