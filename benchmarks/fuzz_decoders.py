"""Fuzz the indexer with mutated images: no damaged file may crash ``dedupdb index``.

Usage (from the repository, with dedupdb installed, the `heif` extra for HEIC)::

    python benchmarks/fuzz_decoders.py [--cases 1000] [--seed 12] [--batch 250] [--workers 2]

Valid JPEG, PNG, TIFF, WebP and HEIC files (small photo-like pictures, a few encodings each)
are mutated with a fixed seed: random bit flips, random byte overwrites, truncations, a
repeated or deleted block, and swaps of two structural units (two PNG chunks, two JPEG
segments, two blocks of any other file). The mutants are written in batches of ``--batch``
files, and each batch is indexed by the real command (``python -m dedupdb index``, real
worker processes, a new database per batch).

Reported: crashes of the indexer (a run that ended with a traceback, a status other than 0 or
1, or that did not account for every file) must be 0, and so must the lines the runs printed
on standard error (a decoder's complaint belongs to its file); then what the files became: indexed,
failed with a decoder's reason, decoders that crashed or hung (each costs only its file:
the worker is replaced), and failures that say "dedupdb failed on it" (a bug in dedupdb's
own code, which should have returned a reason: must be 0 too).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "HEIF")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "HEIF": "heic"}


def picture(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    small = rng.uniform(0, 255, (max(2, height // 16), max(2, width // 16), 3)).astype(np.uint8)
    image = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))
    noisy = image + rng.normal(0, 5, image.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def originals(seed: int) -> list[tuple[str, bytes]]:
    """A few valid files per format: varied sizes, modes and encoder options."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover - without the extra: no HEIC seeds
        print("pillow-heif is not installed: no HEIC files", file=sys.stderr)
    rng = np.random.default_rng(seed)
    options: dict[str, list[dict[str, object]]] = {
        "JPEG": [{"quality": 90}, {"quality": 70, "progressive": True}, {"quality": 85,
                 "exif": _exif()}],
        "PNG": [{}, {"optimize": True}],
        "TIFF": [{}, {"compression": "tiff_deflate"}, {"compression": "tiff_lzw"}],
        "WEBP": [{"quality": 80}, {"lossless": True}],
        "HEIF": [{"quality": 80}],
    }  # fmt: skip
    found = []
    for fmt in FORMATS:
        for index, kwargs in enumerate(options[fmt]):
            image = picture(rng, (160 + 32 * index, 120 + 16 * index))
            if fmt == "PNG" and index == 1:
                image = image.convert("RGBA")
            buffer = io.BytesIO()
            try:
                image.save(buffer, fmt, **kwargs)
            except (KeyError, OSError):  # no encoder for it here
                continue
            found.append((fmt, buffer.getvalue()))
    return found


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Fuzz"
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"
    return exif.tobytes()


# ----------------------------------------------------------------------------- mutations


def flip_bits(data: bytearray, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return "bit flips"


def overwrite_bytes(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    for i in range(start, min(len(data), start + rng.randint(1, 16))):
        data[i] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return "overwritten bytes"


def truncate(data: bytearray, rng: random.Random) -> str:
    del data[rng.randrange(1, len(data)) :]
    return "truncation"


def repeat_or_delete(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 512))
    if rng.random() < 0.5:
        data[start:start] = data[start:end]
        return "repeated block"
    del data[start:end]
    return "deleted block"


def swap_units(data: bytearray, rng: random.Random) -> str:
    """Swap two structural units: PNG chunks, JPEG segments, else two equal-sized blocks."""
    units = _png_chunks(data) or _jpeg_segments(data)
    if len(units) >= 2:
        (a0, a1), (b0, b1) = sorted(rng.sample(units, 2))
        data[a0:b1] = data[b0:b1] + data[a1:b0] + data[a0:a1]
        return "swapped chunks"
    size = rng.randint(1, max(1, len(data) // 8))
    a, b = sorted(rng.sample(range(0, max(2, len(data) - size)), 2))
    if a + size <= b:
        data[a : a + size], data[b : b + size] = data[b : b + size], data[a : a + size]
    return "swapped blocks"


def _png_chunks(data: bytearray) -> list[tuple[int, int]]:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return []
    spans, offset = [], 8
    while offset + 12 <= len(data):
        end = offset + 12 + int.from_bytes(data[offset : offset + 4], "big")
        if end > len(data):
            break
        spans.append((offset, end))
        offset = end
    return spans


def _jpeg_segments(data: bytearray) -> list[tuple[int, int]]:
    """The marker segments before the entropy-coded data (APPn, DQT, SOF, DHT, SOS...)."""
    if not data.startswith(b"\xff\xd8"):
        return []
    spans, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        end = offset + 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        if end > len(data):
            break
        spans.append((offset, end))
        if data[offset + 1] == 0xDA:  # SOS: the scan follows
            break
        offset = end
    return spans


MUTATIONS: tuple[Callable[[bytearray, random.Random], str], ...] = (
    flip_bits, overwrite_bytes, truncate, repeat_or_delete, swap_units,
)  # fmt: skip


def mutants(count: int, seed: int) -> list[tuple[str, str, bytes]]:
    """``count`` mutated files: (format, what was done, bytes), the same for the same seed."""
    rng = random.Random(seed)
    seeds = originals(seed)
    made = []
    for _ in range(count):
        fmt, original = rng.choice(seeds)
        data = bytearray(original)
        done = [rng.choice(MUTATIONS)(data, rng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        made.append((fmt, "+".join(done), bytes(data)))
    return made


# ----------------------------------------------------------------------------- runs


def index_batch(folder: Path, db: Path, workers: int) -> tuple[int, str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "dedupdb", "index", str(folder), "--db", str(db), "--json",
         "--workers", str(workers), "--timeout", "30"],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        summary = {}
    return done.returncode, done.stderr, summary


def classify(reason: str) -> str:
    if "please report this" in reason:
        return "dedupdb failed on it (a bug)"
    if reason.startswith("the decoder crashed"):
        return "decoder crashed (worker replaced)"
    if reason.startswith("timed out"):
        return "decoder hung (timed out)"
    return "failed: " + reason.split(":")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    files = mutants(args.cases, args.seed)
    crashes: list[str] = []
    noise = 0  # lines the runs printed on standard error (decoders' messages belong to files)
    outcomes: collections.Counter[str] = collections.Counter()
    by_format: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory() as tmp:
        for first in range(0, len(files), args.batch):
            batch = files[first : first + args.batch]
            folder, db = Path(tmp) / f"batch-{first}", Path(tmp) / f"batch-{first}.sqlite"
            folder.mkdir()
            formats = {}
            for number, (fmt, _, data) in enumerate(batch, start=first):
                name = f"{number:05d}.{EXTENSIONS[fmt]}"
                (folder / name).write_bytes(data)
                formats[name] = fmt
            code, stderr, summary = index_batch(folder, db, args.workers)
            recorded = _recorded(db)
            noise += sum(1 for line in stderr.splitlines() if line.strip())
            if code not in (0, 1) or "Traceback" in stderr or len(recorded) != len(batch):
                crashes.append(f"batch from {first}: exit {code}, {len(recorded)} of "
                               f"{len(batch)} files recorded\n{stderr[-2000:]}")  # fmt: skip
            for name, outcome in recorded.items():
                outcomes[outcome] += 1
                by_format[formats[name]]["indexed" if outcome == "indexed" else "not"] += 1
            print(f"  batch {first // args.batch + 1}: exit {code}, {summary.get('new', 0)} "
                  f"indexed, {summary.get('failed', 0)} failed", file=sys.stderr)  # fmt: skip
    print(f"cases: {len(files)} (seed {args.seed}), indexer crashes: {len(crashes)}, "
          f"lines on standard error: {noise}")  # fmt: skip
    for outcome, count in outcomes.most_common():
        print(f"  {count:6d}  {outcome}")
    print("by format (indexed / not):")
    for fmt in FORMATS:
        if fmt in by_format:
            print(f"  {fmt:5s} {by_format[fmt]['indexed']:5d} / {by_format[fmt]['not']:5d}")
    for crash in crashes:
        print(crash)
    bugs = outcomes["dedupdb failed on it (a bug)"]
    sys.exit(1 if crashes or bugs else 0)


def _recorded(db: Path) -> dict[str, str]:
    """What the index recorded for each file name: "indexed", or the failure's class."""
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        found = {os.fsdecode(p): "indexed" for (p,) in conn.execute("SELECT relpath FROM images")}
        for path, kind, reason in conn.execute("SELECT relpath, kind, reason FROM failures"):
            found[os.fsdecode(path)] = "skipped: " + reason.split("(")[0].strip() if (
                kind == "skipped") else classify(reason)  # fmt: skip
    return found


if __name__ == "__main__":
    main()
