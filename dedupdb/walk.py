"""Walk a folder tree and yield the image files in it, without opening any of them.

Paths are bytes end to end, so names that are not valid UTF-8 survive losslessly; ``display``
turns them into text for people, and ``printable`` into text that is safe on a terminal.
Symbolic links are not followed unless asked, and then with loop protection. FIFOs, sockets
and devices are never opened: only regular files are yielded.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

from .errors import RootNotFoundError

# Extensions of the formats Pillow (and pillow-heif, when installed) decodes. Content decides:
# a file with one of these names that is not an image is recorded as a failure.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".dib", ".tif",
        ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".j2k",
        ".heic", ".heif", ".avif",
    }
)  # fmt: skip

# A folder holding this file is never walked: `dedupdb apply` marks its quarantine folder with
# it, so that a quarantine inside an indexed folder is not indexed again as new photos.
QUARANTINE_MARKER = b".dedupdb-quarantine"


@dataclass(frozen=True)
class FileEntry:
    """One regular file found by the walk; ``relpath`` is relative to the root, in bytes."""

    relpath: bytes
    size: int
    mtime_ns: int
    device: int
    inode: int


@dataclass(frozen=True)
class WalkProblem:
    """A folder or file the walk could not look into (permission denied, vanished...)."""

    relpath: bytes
    reason: str
    skipped: bool = False  # True: deliberately left alone (a FIFO, socket, device), not an error
    size: int = -1  # the stat's size and mtime when there is one, so an unchanged problem
    mtime_ns: int = -1  # is not recorded again on the next run


def display(path: bytes) -> str:
    """Readable text for a bytes path; undecodable bytes are shown as ``\\xNN`` escapes."""
    return path.decode("utf-8", "backslashreplace")


def absolute_root(root: str | os.PathLike[str] | bytes) -> bytes:
    """The folder to index as an absolute path; ``RootNotFoundError`` if it is not a folder."""
    path = os.path.abspath(os.fsencode(root))
    if not os.path.exists(path):
        raise RootNotFoundError(f"folder not found: {display(path)}", "check the path")
    if not os.path.isdir(path):
        raise RootNotFoundError(f"not a folder: {display(path)}", "give the folder that holds it")
    return path


# Characters a terminal obeys rather than shows: C0 and C1 controls (ESC starts the sequences
# that set the window title, clear the screen or rewrite the clipboard; CR and LF forge lines),
# DEL, and Unicode's line separators and bidirectional overrides (which reorder what follows).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str | bytes) -> str:
    """Text (or a bytes path) made safe to print on a terminal or in a log: its control
    characters shown as escapes, as ``ls`` and ``git`` show them (``\\x1b``, ``\\n``), so a
    file name can neither send commands to the terminal nor forge a line of output.

    For what people read only: JSON and CSV keep the exact name.
    """
    if isinstance(text, bytes):
        text = display(text)
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# The extensions as bytes without the dot, for ``is_image_name`` (called on every entry).
_IMAGE_SUFFIXES = frozenset(ext[1:].encode("ascii") for ext in IMAGE_EXTENSIONS)
_SEP = os.sep.encode()


def is_image_name(name: bytes) -> bool:
    """True when the file name has an image extension (case-insensitive).

    As ``os.path.splitext`` sees extensions (a name that is only dots and an extension, like
    ``.jpg``, has none), without its cost: this runs for every file of the library.
    """
    head, dot, ext = name.rpartition(b".")
    if not dot or not head.strip(b"."):
        return False
    return ext.lower() in _IMAGE_SUFFIXES


def is_excluded(relpath: bytes, patterns: Sequence[str]) -> bool:
    """True when a glob matches the relative path or its last component."""
    if not patterns:
        return False
    text = display(relpath)
    name = text.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(text, p) or fnmatch.fnmatch(name, p) for p in patterns)


def walk(
    root: bytes,
    *,
    excludes: Sequence[str] = (),
    follow_symlinks: bool = False,
    on_problem: Callable[[WalkProblem], None] | None = None,
    skip: Collection[bytes] = (),
) -> Iterator[FileEntry]:
    """Yield every image file under ``root`` in a stable (sorted) order.

    The same file reached twice (hard links, symlinks, overlapping paths) is yielded once: the
    first path in walk order wins. Unreadable folders are reported to ``on_problem`` and
    skipped; the caller must not treat files below them as deleted. Folders holding a
    ``QUARANTINE_MARKER`` file are not entered; relative paths in ``skip`` are not yielded
    (links that ``dedupdb apply`` made, so they never stand in for their keeper).
    """
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()
    root_stat = os.stat(root)
    seen_dirs.add((root_stat.st_dev, root_stat.st_ino))
    stack: list[bytes] = [b""]
    while stack:
        reldir = stack.pop()
        try:
            with os.scandir(os.path.join(root, reldir) if reldir else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            if on_problem:
                on_problem(WalkProblem(reldir, f"cannot read folder: {err.strerror or err}"))
            continue
        if any(entry.name == QUARANTINE_MARKER for entry in entries):
            continue
        subdirs: list[bytes] = []
        for entry in entries:
            relpath = reldir + _SEP + entry.name if reldir else entry.name
            if relpath in skip or is_excluded(relpath, excludes):
                continue
            try:
                st = _stat_entry(entry, follow_symlinks)
            except OSError as err:
                if on_problem and is_image_name(entry.name):
                    on_problem(WalkProblem(relpath, f"cannot stat: {err.strerror or err}"))
                continue
            if st is None:
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode):
                if key not in seen_dirs:  # loop protection for followed symlinks
                    seen_dirs.add(key)
                    subdirs.append(relpath)
            elif not is_image_name(entry.name):
                continue
            elif stat.S_ISREG(st.st_mode):
                if key in seen_files:
                    continue
                seen_files.add(key)
                yield FileEntry(relpath, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
            elif on_problem:  # a FIFO, socket or device with an image name: never opened
                kind = _SPECIAL_KINDS.get(stat.S_IFMT(st.st_mode), "special file")
                on_problem(
                    WalkProblem(
                        relpath,
                        f"not a regular file ({kind}); never opened",
                        skipped=True,
                        size=0,
                        mtime_ns=st.st_mtime_ns,
                    )
                )
        stack.extend(reversed(subdirs))


_SPECIAL_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


def _stat_entry(entry: os.DirEntry[bytes], follow_symlinks: bool) -> os.stat_result | None:
    """The entry's stat, or None for a symlink we must not follow (or a dangling one)."""
    if entry.is_symlink():
        if not follow_symlinks:
            return None
        try:
            return entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            return None
    return entry.stat(follow_symlinks=False)
