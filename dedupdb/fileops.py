"""Safe filesystem steps for ``actions``: moves that never overwrite and never leave a file
half-moved, hashing, links, and the freedesktop trash.

Every function here either completes its step or leaves the source as it was (and removes
anything partial it created), raising ``OSError`` for the caller to record. Paths are bytes.

A move within one filesystem is ``link(src, dst)`` then ``unlink(src)``: ``link`` fails when
``dst`` exists, so nothing is ever overwritten, and a crash between the two leaves one file
under two names (never a half file). Across filesystems (``EXDEV``) it copies to a partial
name, fsyncs, verifies the copy's content hash, renames it into place (again without
overwriting), and only then removes the source. A copy stopped part-way (a crash, kill -9)
leaves ``dst.dedupdb-partial`` next to the destination, on whichever side the move was going
to: ``drop_partial_copies`` removes it once the file is known to be whole elsewhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
from urllib.parse import unquote_to_bytes

from . import hashes
from .walk import QUARANTINE_MARKER

CHUNK = 1 << 20
PARTIAL_SUFFIX = b".dedupdb-partial"

# errno values meaning "this filesystem cannot hard-link here": fall back to another way.
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class ContentChanged(OSError):
    """The bytes read are not the ones the index holds (or a copy does not verify)."""


def hash_file(path: bytes) -> bytes:
    """The file's content hash as the index stores it (``hashes.content_hash``), streamed."""
    return hashes.content_hash_file(path, CHUNK)


def lstat_or_none(path: bytes) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def same_file(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def fsync_dir(path: bytes) -> None:
    """Make a rename or unlink in ``path`` durable (best effort where directories cannot)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def free_name(path: bytes) -> bytes:
    """``path`` if nothing is there, else ``stem (1).ext``, ``stem (2).ext``, ..."""
    if lstat_or_none(path) is None and lstat_or_none(path + PARTIAL_SUFFIX) is None:
        return path
    stem, ext = os.path.splitext(path)
    n = 1
    while True:
        candidate = stem + b" (%d)" % n + ext
        if lstat_or_none(candidate) is None and lstat_or_none(candidate + PARTIAL_SUFFIX) is None:
            return candidate
        n += 1


def link_no_replace(src: bytes, dst: bytes) -> bool:
    """Give ``src`` the extra name ``dst``; False when this filesystem cannot (then nothing
    changed). Raises ``FileExistsError`` rather than overwrite."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno == errno.EXDEV or err.errno in _NO_LINK:
            return False
        raise
    return True


def rename_no_replace(src: bytes, dst: bytes) -> None:
    """Rename within one filesystem without overwriting: a link when possible, else a checked
    rename (for filesystems without hard links)."""
    if link_no_replace(src, dst):
        try:
            os.unlink(src)
        except OSError:
            os.unlink(dst)  # the same file: drop the new name, keep the old one
            raise
        return
    if lstat_or_none(dst) is not None:
        raise FileExistsError(errno.EEXIST, "destination exists", os.fsdecode(dst))
    os.rename(src, dst)


def move(src: bytes, dst: bytes, expected_hash: bytes) -> None:
    """Move a file to ``dst`` (which must not exist), keeping its bytes, mode and times.

    Same filesystem: link + unlink. Other filesystem: copy, fsync, verify, then remove.
    Raises ``FileExistsError`` when ``dst`` exists (nothing changed), ``ContentChanged`` when
    the source's bytes are not ``expected_hash`` (nothing changed), other ``OSError`` for
    permission denied, read-only filesystem, disk full (nothing changed, partial copy removed).
    """
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if link_no_replace(src, dst):
        try:
            fsync_dir(os.path.dirname(dst))
            os.unlink(src)
        except OSError:
            os.unlink(dst)  # the same file under a second name: drop that name, keep src
            raise
        fsync_dir(os.path.dirname(src))
        return
    copy_verified(src, dst, expected_hash)
    try:
        os.unlink(src)
    except OSError:
        os.unlink(dst)  # a verified copy of a source we cannot remove: keep the source only
        raise
    fsync_dir(os.path.dirname(src))


def copy_verified(src: bytes, dst: bytes, expected_hash: bytes) -> None:
    """Copy ``src`` to ``dst`` through a partial file: fsync, verify the content hash of what
    was written, copy mode and times, then rename into place without overwriting."""
    partial = dst + PARTIAL_SUFFIX
    # O_EXCL: a partial file already there is not ours to overwrite (FileExistsError).
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(src, "rb") as reader, os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        # What was written is what the index holds: the source did not change under us and the
        # copy is good (one check, since the copy is the only thing that remains).
        if hash_file(partial) != expected_hash:
            raise ContentChanged(
                errno.EIO,
                "its copy does not match the indexed content hash (changed, or a bad disk)",
            )
        shutil.copystat(src, partial, follow_symlinks=False)
        rename_no_replace(partial, dst)
        fsync_dir(os.path.dirname(dst))
    except BaseException:
        if lstat_or_none(partial) is not None:
            os.unlink(partial)
        raise


def drop_partial_copies(a: bytes, b: bytes) -> None:
    """Remove the partial copies a stopped move between ``a`` and ``b`` (either way) left.

    A partial copy is only ever made while its source is whole, and the source is removed
    only after the copy was renamed into place: so while ``a`` or ``b`` exists, a partial copy
    is never the only one. Without either, it is left alone (something else moved the file).
    """
    if lstat_or_none(a) is None and lstat_or_none(b) is None:
        return
    for partial in (a + PARTIAL_SUFFIX, b + PARTIAL_SUFFIX):
        st = lstat_or_none(partial)
        if st is not None and stat.S_ISREG(st.st_mode):
            os.unlink(partial)
            fsync_dir(os.path.dirname(partial))


def is_link_to(path: bytes, keeper: bytes, keeper_stat: os.stat_result | None) -> bool:
    """True when ``path`` is a symlink resolving to ``keeper`` or a hard link of it."""
    st = lstat_or_none(path)
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.path.realpath(path) == os.path.realpath(keeper)
    return same_file(st, keeper_stat)


def symlink_target(path: bytes, keeper: bytes) -> bytes:
    """A relative link target, so that moving the whole library keeps the links working."""
    return os.path.relpath(keeper, os.path.dirname(path))


def ensure_quarantine(folder: bytes) -> None:
    """Create the quarantine folder with the marker that makes ``index`` skip it."""
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, QUARANTINE_MARKER)
    if lstat_or_none(marker) is None:
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write(
                "dedupdb quarantine: files moved here by `dedupdb apply`; `dedupdb undo` puts\n"
                "them back. `dedupdb index` skips this folder. Delete it to free the space.\n"
            )


# ----------------------------------------------------------------------------- trash


def trash(path: bytes) -> bytes | None:
    """Send a file to the desktop trash (send2trash); where it went when that can be found
    (the freedesktop trash on Linux and BSD), else None."""
    from send2trash import send2trash

    send2trash(path)
    return find_in_trash(path)


def _trash_dirs(path: bytes) -> list[tuple[bytes, bytes]]:
    """(trash folder, the folder its relative ``Path=`` entries start from) candidates."""
    if sys.platform in ("darwin", "win32"):
        return []
    try:
        from send2trash import plat_other
    except ImportError:  # pragma: no cover - platforms without the freedesktop trash
        return []
    home: bytes = plat_other.HOMETRASH_B
    top: bytes = plat_other.find_mount_point(os.path.dirname(path))
    uid = str(os.getuid()).encode()
    dirs = [
        (home, os.path.dirname(home)),
        (os.path.join(top, b".Trash", uid), top),
        (os.path.join(top, b".Trash-" + uid), top),
    ]
    return [(d, t) for d, t in dirs if os.path.isdir(os.path.join(d, b"info"))]


def find_in_trash(path: bytes) -> bytes | None:
    """The trashed copy of ``path``: the newest ``.trashinfo`` whose Path names it."""
    best: tuple[int, bytes] | None = None
    for info, files in _trash_entries(path):
        mtime = os.lstat(info).st_mtime_ns
        if (best is None or mtime >= best[0]) and lstat_or_none(files) is not None:
            best = (mtime, files)
    return best[1] if best else None


def drop_orphan_trash_info(path: bytes) -> None:
    """Remove the ``.trashinfo`` files naming ``path`` whose trashed file is not there: what
    a trashing stopped between writing the info and moving the file leaves behind."""
    for info, files in _trash_entries(path):
        if lstat_or_none(files) is None:
            os.unlink(info)


def _trash_entries(path: bytes) -> list[tuple[bytes, bytes]]:
    """(``.trashinfo`` file, the trashed file it describes) for each one whose Path is
    ``path``."""
    found = []
    for trash_dir, topdir in _trash_dirs(path):
        with os.scandir(os.path.join(trash_dir, b"info")) as entries:
            for entry in entries:
                if not entry.name.endswith(b".trashinfo"):
                    continue
                original = _trashinfo_path(entry.path)
                if original is None:
                    continue
                original = os.path.join(topdir, original)  # absolute paths stay absolute
                if os.path.normpath(original) != os.path.normpath(path):
                    continue
                files = os.path.join(trash_dir, b"files", entry.name[: -len(b".trashinfo")])
                found.append((entry.path, files))
    return found


def _trashinfo_path(info: bytes) -> bytes | None:
    try:
        with open(info, "rb") as handle:
            for line in handle.read().splitlines():
                if line.startswith(b"Path="):
                    return unquote_to_bytes(line[5:])
    except OSError:
        return None
    return None


def untrash(trashed: bytes, path: bytes, expected_hash: bytes) -> None:
    """Move a trashed file back to ``path`` (never overwriting) and drop its ``.trashinfo``."""
    move(trashed, path, expected_hash)
    drop_trash_info(trashed)


def drop_trash_info(trashed: bytes) -> None:
    """Remove the ``.trashinfo`` of a file taken out of the trash (if it is still there)."""
    trash_dir = os.path.dirname(os.path.dirname(trashed))
    info = os.path.join(trash_dir, b"info", os.path.basename(trashed) + b".trashinfo")
    if lstat_or_none(info) is not None:
        os.unlink(info)
