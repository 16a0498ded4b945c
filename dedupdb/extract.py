"""What a worker does with one file: read it once, hash its bytes, decode it, compute its
perceptual hashes and quality signals (``process_file``). Loads numpy and Pillow, never the
database code: the worker processes import this module, the indexing process only when it
decodes itself (``IndexOptions.in_process``) or warms up before forking workers.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from PIL import Image as PILImage

from . import decode as decoding
from . import hashes, signals
from .decode import DecodedImage, DecodeFailure, ImageInfo, decode, tidy_notes
from .hashparams import HashParams
from .walk import FileEntry
from .workers import (
    LOCAL_FEATURES_KEY,
    Indexed,
    KnownContent,
    NotIndexed,
    Result,
    Task,
    memory_limit,
)

# Whether ``warm_up`` ran in this process (or in the one it was forked from).
_warm = False


def _open(path: bytes) -> tuple[io.FileIO, os.stat_result]:
    """The file opened for reading and its stat; refuses anything but a regular file."""
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


# Block size of the streamed read: small enough that each block is hashed and decoded while it
# is still in the CPU's cache, large enough to keep the per-block Python overhead negligible.
READ_BLOCK = 1 << 18


def process_file(task: Task) -> Result:
    """Read, hash, decode and measure one file. Never raises for a bad file.

    Most files are read once: the decoder reads the file through a ``HashingReader``, which
    computes the content hash of each block as it passes (one pass over the bytes instead of
    three: read, hash, decode). A file whose size matches stored content may be a move or an
    exact copy; it is hashed first, so that a known one is recognised without decoding.

    A file that needs more memory than the worker may use (``workers.limit_memory``) is
    recorded as too large, wherever the allocation failed. What the C decoders print while
    the file is read (libtiff's errors, say) is kept with its result, not shown.
    """
    with _decoder_output() as printed:
        try:
            result = _process(task)
        except MemoryError:
            result = NotIndexed(task.entry, _too_large())
    return _with_output(result, printed)


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
        note = result.columns.get("note")
        lines = tidy_notes([*(note.splitlines() if note else []), *said])
        return replace(result, columns={**result.columns, "note": "\n".join(lines)})
    if isinstance(result, NotIndexed):
        return replace(result, reason=f"{result.reason} (the decoder said: {'; '.join(said)})")
    return result


def _too_large() -> str:
    limit = memory_limit()
    if limit is None:
        return "too large: not enough memory to decode it"
    return f"too large: decoding it needs more than the {limit} MiB a worker may use (--max-memory)"


def _failure(entry: FileEntry, failure: DecodeFailure) -> NotIndexed:
    return NotIndexed(entry, _too_large() if failure.out_of_memory else failure.reason)


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
                reader = hashes.HashingReader(handle)
                decoded = decode(io.BufferedReader(reader, READ_BLOCK))
                if isinstance(decoded, DecodeFailure):
                    return _failure(entry, decoded)
                return _finish(task, entry, decoded, reader.digest())
            data = handle.read()
        except OSError as err:  # a read error outside the decoder (the decoder reports its own)
            return NotIndexed(entry, f"cannot read: {err.strerror or err}")
    digest = hashes.content_hash(data)
    if digest[:8] in task.known:
        return KnownContent(entry, digest)
    return _finish(task, entry, decode(data), digest)


def _finish(
    task: Task, entry: FileEntry, decoded: DecodedImage | DecodeFailure, digest: bytes
) -> Result:
    if isinstance(decoded, DecodeFailure):
        return _failure(entry, decoded)
    info = decoded.info
    if min(info.width, info.height) < task.min_resolution:
        return NotIndexed(
            entry,
            f"smaller than --min-resolution {task.min_resolution} px ({info.width}x{info.height})",
            skipped=True,
        )
    columns = image_columns(decoded, digest, HashParams(task.hash_size))
    if task.features:
        from . import features  # OpenCV is loaded only by runs that ask for features

        columns[LOCAL_FEATURES_KEY] = features.pack(features.extract(decoded.content.luma))
    return Indexed(entry, columns)


def image_columns(decoded: DecodedImage, digest: bytes, params: HashParams) -> dict[str, Any]:
    """The stored columns derived from a file's content (not its path or stat)."""
    info = decoded.info
    full_size = decoded.picture.size
    decoded = decoded.content  # hashes and signals of the picture inside any added borders
    content_width, content_height = content_size(info, full_size, decoded.picture.size)
    luma = decoded.working_luma
    gray = hashes.gray_square(luma)
    variants = hashes.all_variants(gray, params)
    colours = signals.colour_source(decoded.picture)  # reduced once for both signatures
    measured = signals.measure(colours, gray, luma)
    return {
        "content_hash": digest,
        "width": info.width,
        "height": info.height,
        "content_width": content_width,
        "content_height": content_height,
        "format": info.format,
        "mode": info.mode,
        "bit_depth": info.bit_depth,
        "lossless": info.lossless,
        "frames": info.frames,
        "orientation": info.orientation,
        "taken_at": info.taken_at,
        "camera_make": info.camera_make,
        "camera_model": info.camera_model,
        "exif_tags": info.exif_tags,
        "note": "\n".join(info.notes) or None,
        "hash_size": params.hash_size,
        **{name: hashes.pack_variants(v, params) for name, v in variants.items()},
        "crop_phash": hashes.pack_variants(hashes.crop_phashes(gray, params.hash_size), params),
        "crop_colour": signals.crop_colours(colours, hashes.CROP_WINDOWS),
        "sharpness": measured.sharpness,
        "low_information": measured.low_information,
        "colour": measured.colour,
        "thumb": measured.thumb,
        "jpeg_quant": info.jpeg_quant,
        "dct_sample": info.dct_sample,
    }


def content_size(
    info: ImageInfo, decoded_size: tuple[int, int], content: tuple[int, int]
) -> tuple[int, int]:
    """The picture inside added borders in the file's pixels: ``content`` is measured on the
    reduced-scale decoded picture (``decoded_size``), upright like ``info``'s dimensions."""
    if content == decoded_size:
        return info.width, info.height
    return (
        max(1, round(content[0] * info.width / decoded_size[0])),
        max(1, round(content[1] * info.height / decoded_size[1])),
    )


def warm_up() -> None:
    """Load what the first file would otherwise load in the middle of its work: SciPy's FFT
    (pHash), Pillow's format plugins and the first-call set-up of the decode and hash code.

    Each worker does it as it starts, while the indexing process is still starting too (see
    ``workers``); workers forked later from a process that did it (a re-index, a replacement)
    inherit it, and it is done once, not once per worker.
    """
    global _warm
    if _warm:
        return
    PILImage.init()
    buffer = io.BytesIO()
    PILImage.new("RGB", (160, 120), (90, 120, 150)).save(buffer, "JPEG")
    decoded = decoding.decode(buffer.getvalue())  # not ``decode``: tests count files' decodes
    if isinstance(decoded, DecodedImage):
        image_columns(decoded, b"", HashParams())
    _warm = True
