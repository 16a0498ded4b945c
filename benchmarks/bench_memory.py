"""Peak memory of one index worker per kind of file, with and without its memory limit.

Usage (from the repository, with dedupdb installed)::

    python benchmarks/bench_memory.py [--max-memory 1024] [--keep DIR]

Each file is read, hashed and decoded by a real index worker (``workers.worker_pool``: the
pool ``dedupdb index`` uses, forked from a process that has loaded only the command line, as
``dedupdb index`` forks its workers), one new pool per file. The worker's resident-set
high-water mark (``VmHWM`` in ``/proc/PID/status``) is read after it has indexed a small JPEG
(its start: code loaded and warmed up) and again after the file: the difference is what the
file cost. Linux only.

The files: a 12-megapixel camera JPEG (decoded at 1/8 scale by libjpeg), a 12-megapixel WebP
and HEIC (the `heif` extra), a 24-megapixel RGB
PNG and an RGBA one (decoded whole: Pillow cannot reduce PNG), a 48-megapixel 16-bit
grayscale PNG, and the outside review's 13000 x 13000 PNG of 500 KB (one colour; just under
Pillow's decompression-bomb limit), the last with the default limit, no limit, and 256 MiB.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from dedupdb.defaults import DEFAULT_MAX_MEMORY_MB
from dedupdb.fingerprint import FingerprintSettings, Indexed, NotIndexed, Task
from dedupdb.walk import FileEntry
from dedupdb.workers import worker_pool


def high_water_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def task(path: Path) -> Task:
    st = path.stat()
    entry = FileEntry(os.fsencode(path.name), st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
    return Task(os.fsencode(path.parent), entry, FingerprintSettings(8, 100))


def measure(path: Path, warm: Path, max_memory: int | None) -> tuple[float, float, str]:
    """(worker RSS after start, its peak while indexing ``path``, what was recorded)."""
    with worker_pool(1, None, max_memory) as pool:
        pool.submit(task(warm))
        list(pool.results())
        (pid,) = pool.pids
        start = high_water_mb(pid)
        pool.submit(task(path))
        ((_, result),) = list(pool.results())
        peak = high_water_mb(pid)
    if isinstance(result, Indexed):
        outcome = "indexed"
    elif isinstance(result, NotIndexed):
        outcome = result.reason
    else:
        outcome = repr(result)
    return start, peak, outcome


def photo(size: tuple[int, int], seed: int) -> Any:
    """Photo-like pixels (smooth blobs plus sensor noise), drawn small and upscaled."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (size[1] // 50, size[0] // 50, 3)).astype(np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    noise = rng.normal(0, 4, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def one_colour_png(side: int) -> bytes:
    """A decodable RGB PNG of side x side pixels of one colour, written row by row."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" + bytes((40, 90, 200)) * side
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


NAMES = ("warm.jpg", "camera-12mp.jpg", "photo-12mp.webp", "phone-12mp.heic", "photo-24mp.png",
         "photo-24mp-rgba.png", "gray16-48mp.png", "one-colour-13000.png")  # fmt: skip


def build(folder: Path) -> None:
    """The files (in a process of its own: the measuring one stays as small as the command
    that forks the workers, whose memory they share)."""
    import numpy as np
    from PIL import Image

    def save(name: str, image: Image.Image, fmt: str, **kwargs: object) -> None:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        (folder / name).write_bytes(buffer.getvalue())

    save("warm.jpg", photo((640, 480), 0), "JPEG", quality=85)
    save("camera-12mp.jpg", photo((4000, 3000), 1), "JPEG", quality=92)
    save("photo-12mp.webp", photo((4000, 3000), 5), "WEBP", quality=85)
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        save("phone-12mp.heic", photo((4000, 3000), 6), "HEIF", quality=85)
    except ImportError:
        print("pillow-heif is not installed: no HEIC file", file=sys.stderr)
    save("photo-24mp.png", photo((6000, 4000), 2), "PNG", compress_level=1)
    save("photo-24mp-rgba.png", photo((6000, 4000), 3).convert("RGBA"), "PNG", compress_level=1)
    gray16 = np.asarray(photo((8000, 6000), 4).convert("L"), dtype=np.uint16) * 257
    save("gray16-48mp.png", Image.fromarray(gray16), "PNG", compress_level=1)
    (folder / "one-colour-13000.png").write_bytes(one_colour_png(13000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--max-memory", type=int, default=DEFAULT_MAX_MEMORY_MB, help="MiB; 0: no limit"
    )
    parser.add_argument("--keep", type=Path, help="build the files here and keep them")
    parser.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_into:
        build(args.build_into)
        return
    if not sys.platform.startswith("linux"):
        sys.exit("Linux only (reads /proc)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, "--build-into", str(folder)], check=True)
        files = {name: folder / name for name in NAMES if (folder / name).exists()}
        runs = [(name, args.max_memory or None) for name in files if name != "warm.jpg"]
        runs += [("one-colour-13000.png", None), ("one-colour-13000.png", 256)]
        print("| file | size | --max-memory | worker at start | peak | file cost | recorded |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, limit in runs:
            start, peak, outcome = measure(files[name], files["warm.jpg"], limit)
            size = files[name].stat().st_size / 1e6
            shown = "none" if limit is None else f"{limit} MiB"
            print(
                f"| {name} | {size:.1f} MB | {shown} | {start:.0f} MB | {peak:.0f} MB "
                f"| {peak - start:.0f} MB | {outcome} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
