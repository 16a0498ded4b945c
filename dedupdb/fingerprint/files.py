"""The fingerprint stage's task function: what a worker does with one file of the tree.

``process_file`` reads a file once, recognises content the database already holds by its
hash, fingerprints the rest (``compute.fingerprint``) and turns every way a file can fail
into a ``NotIndexed`` with the reason: it never raises for a bad file. It runs wherever the
executor runs it (a local worker process today), so it keeps to plain data in and out. What
the C decoders print while a file is read is kept with its result, and a file that needs more
memory than this process may use (``limit_memory``) costs only itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace

from .. import hashes
from ..decode import tidy_notes
from ..walk import FileEntry
from . import compute
from .records import Fingerprint, Indexed, KnownContent, NotIndexed, Rejected, Result, Task


def _open(path: bytes) -> tuple[io.FileIO, os.stat_result]:
    """The file opened for reading (unbuffered) and its stat; refuses anything but a regular
    file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(0, "not a regular file")
        # Unbuffered: the streamed read buffers above the hashing layer.
        return os.fdopen(fd, "rb", buffering=0), st
    except BaseException:
        os.close(fd)
        raise


def process_file(task: Task) -> Result:
    """Read, hash and fingerprint one file. Never raises for a bad file.

    Most files are read once, hashed as the decoder reads them (``compute.fingerprint``). A
    file whose size matches stored content may be a move or an exact copy: it is read whole
    and hashed first, so that a known one is recognised without decoding.

    A file that needs more memory than the worker may use (``limit_memory``) is recorded as
    too large, wherever the allocation failed. What the C decoders print while the file is
    read (libtiff's errors, say) is kept with its result, not shown.
    """
    with _decoder_output() as printed:
        try:
            result = _process(task)
        except MemoryError:
            result = NotIndexed(task.entry, _too_large())
    return _with_output(result, printed)


def _process(task: Task) -> Result:
    entry = task.entry
    try:
        handle, st = _open(os.path.join(task.root, entry.relpath))
    except FileNotFoundError:
        return NotIndexed(entry, "vanished during the run")
    except PermissionError:
        return NotIndexed(entry, "permission denied")
    except OSError as err:
        return NotIndexed(entry, f"cannot read: {err.strerror or err}")
    entry = FileEntry(entry.relpath, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
    with handle:
        try:
            if st.st_size and not task.known:
                return _outcome(entry, compute.fingerprint(handle, task.settings))
            data = handle.read()
        except OSError as err:  # a read error outside the decoder (the decoder reports its own)
            return NotIndexed(entry, f"cannot read: {err.strerror or err}")
    digest = hashes.content_hash(data)
    if digest[:8] in task.known:
        return KnownContent(entry, digest)
    return _outcome(entry, compute.fingerprint(data, task.settings, content_hash=digest))


def _outcome(entry: FileEntry, found: Fingerprint | Rejected) -> Indexed | NotIndexed:
    if isinstance(found, Rejected):
        reason = _too_large() if found.out_of_memory else found.reason
        return NotIndexed(entry, reason, skipped=found.skipped)
    return Indexed(entry, found)


# A file this process's standard error (file descriptor 2) points to while it decodes: some C
# libraries report damaged data by printing it (libtiff: "ZIPDecode: Decoding error at
# scanline 0"), which would otherwise land on the terminal, in the middle of the progress bar.
_capture: tuple[int, int] | None = None  # (process id, file descriptor): not inherited


@contextlib.contextmanager
def _decoder_output() -> Iterator[list[str]]:
    """Standard error, at file-descriptor level, captured while the block runs: the lines
    printed are in the yielded list afterwards. Costs a few system calls per file."""
    global _capture
    printed: list[str] = []
    if _capture is None or _capture[0] != os.getpid():  # a forked worker makes its own
        try:
            _capture = (os.getpid(), _anonymous_file())
        except OSError:  # nowhere to put it: the messages go where they went
            yield printed
            return
    capture = _capture[1]
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(capture, 2)
    try:
        yield printed
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        size = os.lseek(capture, 0, os.SEEK_END)
        if size:
            os.lseek(capture, 0, os.SEEK_SET)
            text = os.read(capture, min(size, 1 << 16)).decode("utf-8", "replace")
            os.ftruncate(capture, 0)
            os.lseek(capture, 0, os.SEEK_SET)
            printed.extend(line for line in text.splitlines() if line.strip())


def _anonymous_file() -> int:
    """A file descriptor of a file without a name, gone with the process."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("dedupdb-stderr")
    handle, name = tempfile.mkstemp(prefix="dedupdb-stderr-")  # pragma: no cover - not Linux
    os.unlink(name)  # pragma: no cover
    return handle  # pragma: no cover


def _with_output(result: Result, printed: list[str]) -> Result:
    """The result with what the decoders printed: in an indexed file's note, or after a
    failure's reason."""
    if not printed:
        return result
    said = tidy_notes(printed)
    if isinstance(result, Indexed):
        note = result.fingerprint.note
        lines = tidy_notes([*(note.splitlines() if note else []), *said])
        return replace(result, fingerprint=result.fingerprint._replace(note="\n".join(lines)))
    if isinstance(result, NotIndexed):
        return replace(result, reason=f"{result.reason} (the decoder said: {'; '.join(said)})")
    return result


def _too_large() -> str:
    limit = memory_limit()
    if limit is None:
        return "too large: not enough memory to decode it"
    return f"too large: decoding it needs more than the {limit} MiB a worker may use (--max-memory)"


# ----------------------------------------------------------------------------- memory limit

# The limit this process set on itself (``limit_memory``), in MiB beyond its code; None: none.
_memory_limit: int | None = None


def limit_memory(megabytes: int) -> bool:
    """Cap this process's address space at its present size plus ``megabytes`` MiB.

    A decoder that needs more then fails its allocation (Pillow and numpy raise MemoryError),
    which costs only the file at hand: it is recorded as too large (``memory_limit`` names the
    limit), instead of one hostile file (a 13000x13000 PNG of 500 KB decodes to 500 MB) taking
    the machine's memory, or the kernel's out-of-memory killer taking a process. The address
    space, not the resident size, is what the kernel can cap (RLIMIT_AS); it is measured after
    the worker has loaded and warmed up its code, so the code's own mappings do not count
    against the budget. Linux only (elsewhere RLIMIT_AS is not enforced): False when not set.
    """
    global _memory_limit
    size = _address_space()
    if size is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = size + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft <= wanted:  # already lower: keep it
        return False
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    _memory_limit = megabytes
    return True


def memory_limit() -> int | None:
    """The memory (MiB beyond its code) this process limited itself to, or None."""
    return _memory_limit


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux's /proc), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None  # pragma: no cover - Linux only
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - no /proc
        return None
    return None  # pragma: no cover
