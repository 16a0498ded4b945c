"""The catalogue of hostile inputs: every kind of damaged, odd, oversized or lying file, odd
names and odd trees, indexed with the real command in one run, then each checked for what the
index recorded about it (indexed, with a note; failed or skipped, with the reason; never
walked). No run may print a traceback or a warning, and the report may match nothing but the
one deliberate pair of copies.

A few cases need a run of their own: overlapping roots, files that vanish or grow between the
walk and the read, a HEIC file without the `heif` extra, and a file too large for a worker's
memory limit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hostile
import numpy as np
import pytest
from hostile import encode, picture
from PIL import Image

from dedupdb.indexing import IndexOptions, Progress, index
from dedupdb.store import open_store

pytestmark = pytest.mark.slow

Builder = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One hostile input: how to make it below the catalogue's root, and what the index must
    record for ``path``: ``present`` (indexed; ``expect`` in its note, "" for no note),
    ``failed`` or ``skipped`` (``expect`` in the reason), or ``absent`` (never walked)."""

    name: str
    path: bytes
    status: str
    expect: str
    make: Builder


def writes(relpath: bytes, data: bytes | Callable[[], bytes]) -> Builder:
    def make(root: Path) -> None:
        target = os.path.join(os.fsencode(root), relpath)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data() if callable(data) else data)

    return make


def jpeg(seed: int, **kwargs: Any) -> Callable[[], bytes]:
    return lambda: encode(picture(seed), "JPEG", quality=90, **kwargs)


def png_of(image: Callable[[], Image.Image]) -> Callable[[], bytes]:
    return lambda: encode(image(), "PNG")


def truncated(data: Callable[[], bytes]) -> Callable[[], bytes]:
    return lambda: data()[: len(data()) // 2]


def sixteen_bit() -> Image.Image:
    gray = np.asarray(picture(9).convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(gray)


def animated_png() -> bytes:
    frames = [picture(12), picture(13)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(picture(30), "HEIF", quality=90)


def huge_exif() -> bytes:
    # An EXIF block of ~60 KB (the most a JPEG segment holds): a long ImageDescription.
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000
    return encode(picture(18), "JPEG", quality=90, exif=exif.tobytes())


def symlinks(root: Path) -> None:
    (root / "links").mkdir(parents=True, exist_ok=True)
    os.symlink("..", root / "links" / "loop")  # a folder that contains itself
    os.symlink("b.jpg", root / "links" / "a.jpg")  # a.jpg -> b.jpg -> a.jpg
    os.symlink("a.jpg", root / "links" / "b.jpg")
    os.symlink("nowhere.jpg", root / "links" / "dangling.jpg")
    os.symlink("/dev/null", root / "links" / "null.jpg")


def fifo(root: Path) -> None:
    os.mkfifo(root / "fifo.jpg")


def device(root: Path) -> None:
    if os.geteuid() == 0:  # a character device of its own, like /dev/null
        os.mknod(root / "device.png", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    else:  # only root may make one: a link to one instead
        os.symlink("/dev/zero", root / "device.png")


def hard_link(root: Path) -> None:
    # Walked after control/ (folders in name order): the first path of a file is the one kept.
    (root / "zz").mkdir()
    os.link(root / "control" / "a.jpg", root / "zz" / "hardlink.jpg")


DEEP = b"/".join([b"d"] * 120) + b"/deep.jpg"
CONTROL = [
    Case("control original", b"control/a.jpg", "present", "", writes(b"control/a.jpg", jpeg(1))),
    Case(
        "control copy",
        b"control/a-copy.png",
        "present",
        "",
        writes(b"control/a-copy.png", png_of(lambda: picture(1))),
    ),
]
CASES = [
    *CONTROL,
    Case("zero bytes", b"empty.jpg", "failed", "empty file", writes(b"empty.jpg", b"")),
    Case(
        "truncated JPEG",
        b"truncated.jpg",
        "failed",
        "corrupt or truncated",
        writes(b"truncated.jpg", truncated(jpeg(2))),
    ),
    Case(
        "truncated PNG",
        b"truncated.png",
        "failed",
        "corrupt or truncated",
        writes(b"truncated.png", truncated(png_of(lambda: picture(3)))),
    ),
    Case(
        "garbage after EOI",
        b"garbage-after.jpg",
        "present",
        "",
        writes(b"garbage-after.jpg", lambda: jpeg(4)() + b"trailing garbage " * 100),
    ),
    Case(
        "bad IDAT CRC",
        b"bad-crc.png",
        "present",
        "",
        writes(b"bad-crc.png", lambda: hostile.png_with_bad_idat_crc(picture(5))),
    ),
    Case(
        "text named .png",
        b"notes.png",
        "failed",
        "not an image",
        writes(b"notes.png", b"shopping list: milk, eggs\n" * 20),
    ),
    Case(
        "decompression bomb",
        b"bomb.png",
        "failed",
        "decompression bomb",
        writes(b"bomb.png", lambda: hostile.png_claiming(20000, 20000)),
    ),
    Case(
        "1x1",
        b"tiny.png",
        "skipped",
        "smaller than --min-resolution",
        writes(b"tiny.png", lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")),
    ),
    Case(
        "2x10000",
        b"sliver.png",
        "skipped",
        "(2x10000)",
        writes(b"sliver.png", png_of(lambda: picture(6).resize((2, 10000)))),
    ),
    Case(
        "CMYK",
        b"cmyk.jpg",
        "present",
        "",
        writes(b"cmyk.jpg", lambda: encode(picture(7).convert("CMYK"), "JPEG", quality=90)),
    ),
    Case("16-bit", b"sixteen.png", "present", "", writes(b"sixteen.png", png_of(sixteen_bit))),
    Case(
        "1-bit",
        b"one-bit.png",
        "present",
        "",
        writes(b"one-bit.png", png_of(lambda: picture(10).convert("1"))),
    ),
    Case(
        "LA", b"la.png", "present", "", writes(b"la.png", png_of(lambda: picture(11).convert("LA")))
    ),
    Case("animated", b"animated.png", "present", "", writes(b"animated.png", animated_png)),
    *[
        Case(
            f"EXIF orientation {value}",
            f"orientation-{value}.jpg".encode(),
            "present",
            f"EXIF orientation {value} is not 1-8",
            writes(
                f"orientation-{value}.jpg".encode(),
                lambda value=value, seed=seed: hostile.jpeg_with_exif(  # type: ignore[misc]
                    picture(seed), hostile.exif_with_orientation(value)
                ),
            ),
        )
        for value, seed in ((0, 14), (9, 15), (65535, 16))
    ],
    Case(
        "orientation with two values",
        b"orientation-twice.jpg",
        "present",
        "tag 274 had too many entries",
        writes(
            b"orientation-twice.jpg",
            lambda: hostile.jpeg_with_exif(picture(19), hostile.exif_with_orientation(6, 2)),
        ),
    ),
    Case(
        "corrupt EXIF",
        b"corrupt-exif.jpg",
        "present",
        "Skipping tag 271",
        writes(
            b"corrupt-exif.jpg", lambda: hostile.jpeg_with_exif(picture(17), hostile.corrupt_exif())
        ),
    ),
    Case(  # a real copy of the file above: their cluster's HTML thumbnails decode it again
        "copy of the corrupt EXIF file",
        b"twin/corrupt-exif.png",
        "present",
        "",
        writes(b"twin/corrupt-exif.png", png_of(lambda: picture(17))),
    ),
    Case(
        "huge PNG text",
        b"huge-text.png",
        "present",
        "PNG text chunk over 1024 KiB",
        writes(b"huge-text.png", lambda: hostile.png_with_big_text(picture(20))),
    ),
    Case("huge EXIF", b"huge-exif.jpg", "present", "", writes(b"huge-exif.jpg", huge_exif)),
    Case("HEIC", b"photo.heic", "present", "", writes(b"photo.heic", heic)),
    Case(
        "TIFF", b"scan.tif", "present", "", writes(b"scan.tif", lambda: encode(picture(31), "TIFF"))
    ),
    Case(
        "TIFF with damaged deflate data",
        b"damaged.tif",
        "failed",
        "(the decoder said: ZIPDecode: Decoding error",
        writes(b"damaged.tif", lambda: hostile.tiff_with_corrupt_deflate(picture(33))),
    ),
    Case(
        "WebP",
        b"web.webp",
        "present",
        "",
        writes(b"web.webp", lambda: encode(picture(32), "WEBP", quality=80)),
    ),
    Case("non-UTF-8 name", b"caf\xe9.jpg", "present", "", writes(b"caf\xe9.jpg", jpeg(21))),
    Case(
        "terminal escapes in the name",
        b"esc\x1b]0;pwned\x07\x1b[2J.jpg",
        "present",
        "",
        writes(b"esc\x1b]0;pwned\x07\x1b[2J.jpg", jpeg(22)),
    ),
    Case(
        "newline in the name",
        b"line\nError: your disk is failing.jpg",
        "present",
        "",
        writes(b"line\nError: your disk is failing.jpg", jpeg(23)),
    ),
    Case("deep tree", DEEP, "present", "", writes(DEEP, jpeg(24))),
    Case("folder symlink loop", b"links/loop/control/a.jpg", "absent", "", symlinks),
    *[
        Case(
            f"file symlink loop ({name})",
            f"links/{name}".encode(),
            "failed",
            "Too many levels of symbolic links",
            lambda root: None,
        )
        for name in ("a.jpg", "b.jpg")
    ],
    Case("dangling symlink", b"links/dangling.jpg", "absent", "", lambda root: None),
    Case(
        "symlink to /dev/null",
        b"links/null.jpg",
        "skipped",
        "not a regular file (character device)",
        lambda root: None,
    ),
    Case("FIFO", b"fifo.jpg", "skipped", "not a regular file (FIFO)", fifo),
    Case("device", b"device.png", "skipped", "not a regular file (character device)", device),
    Case("hard link", b"zz/hardlink.jpg", "absent", "", hard_link),
]


@dataclass(frozen=True)
class Catalogue:
    root: Path
    db: Path
    index: subprocess.CompletedProcess[str]
    images: dict[bytes, tuple[str, str | None]]  # relpath -> (status, note)
    failures: dict[bytes, tuple[str, str]]  # relpath -> (kind, reason)


def dedupdb(
    *args: str | os.PathLike[str], blocked: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command in a new process; ``blocked``: a module it cannot import (as when an
    optional extra is not installed)."""
    code = "import sys\n"
    if blocked:
        code += f"sys.modules[{blocked!r}] = None\n"
    code += "from dedupdb.cli import main\nsys.argv[0] = 'dedupdb'\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *map(os.fspath, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "default"},  # a warning would be shown, not hidden
    )


def read_rows(db: Path) -> tuple[dict[bytes, tuple[str, str | None]], dict[bytes, tuple[str, str]]]:
    with sqlite3.connect(db) as conn:
        images = {r: (s, n) for r, s, n in conn.execute("SELECT relpath, status, note FROM images")}
        failures = {
            r: (k, m) for r, k, m in conn.execute("SELECT relpath, kind, reason FROM failures")
        }
    return images, failures


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    base = tmp_path_factory.mktemp("hostile")
    root, db = base / "library", base / "index.sqlite"
    root.mkdir()
    for case in CASES:
        case.make(root)
    done = dedupdb("index", root, "--db", db, "--follow-symlinks", "--workers", "2", "--json")
    images, failures = read_rows(db)
    return Catalogue(root, db, done, images, failures)


def test_the_run_prints_no_traceback_and_no_warning(catalogue: Catalogue) -> None:
    assert catalogue.index.returncode == 0, catalogue.index.stderr  # recorded, not fatal
    assert catalogue.index.stderr == ""
    summary = json.loads(catalogue.index.stdout)
    assert summary["failed"] == sum(c.status == "failed" for c in CASES)
    assert summary["noted"] == sum(c.status == "present" and bool(c.expect) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_input_is_recorded_with_its_reason(case: Case, catalogue: Catalogue) -> None:
    image = catalogue.images.get(case.path)
    failure = catalogue.failures.get(case.path)
    if case.status == "present":
        assert failure is None, failure
        assert image is not None and image[0] == "present"
        note = image[1]
        assert (note is None) if not case.expect else (note is not None and case.expect in note)
    elif case.status == "absent":
        assert image is None and failure is None, (image, failure)
    else:
        assert image is None, image
        assert failure is not None and failure[0] == case.status
        assert case.expect in failure[1], failure[1]


def test_the_catalogue_is_complete(catalogue: Catalogue) -> None:
    # Every recorded path is a case of the catalogue (nothing walked that should not be).
    recorded = set(catalogue.images) | set(catalogue.failures)
    assert recorded <= {c.path for c in CASES}, recorded - {c.path for c in CASES}


def report(db: Path, out: Path) -> dict[str, Any]:
    """The JSON report; the HTML one is made too (its thumbnails decode the files again)."""
    done = dedupdb("report", "--db", db, "--json", out, "--html", out.with_suffix(".html"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no traceback, no decoder's warning
    return dict(json.loads(out.read_text()))


def clustered_paths(data: dict[str, Any], root: Path) -> list[set[str]]:
    return [
        {os.path.relpath(m["path"], root) for m in cluster["members"]}
        for cluster in data["clusters"]
    ]


def test_the_report_matches_only_the_real_copies(catalogue: Catalogue, tmp_path: Path) -> None:
    data = report(catalogue.db, tmp_path / "report.json")
    assert sorted(map(sorted, clustered_paths(data, catalogue.root))) == [
        ["control/a-copy.png", "control/a.jpg"],
        ["corrupt-exif.jpg", "twin/corrupt-exif.png"],
    ]


# ----------------------------------------------------------------------------- own runs


def test_overlapping_roots_never_pair_a_file_with_itself(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for case in CONTROL:
        case.make(root)
    writes(b"2024/beach.jpg", jpeg(40))(root)
    db = tmp_path / "index.sqlite"
    for folder in (root, root / "2024", root / "control"):
        done = dedupdb("index", folder, "--db", db)
        assert done.returncode == 0, done.stderr
    data = report(db, tmp_path / "report.json")
    # One file reached through two roots is one file; only the real copies pair up.
    assert [sorted(os.path.basename(p) for p in c) for c in clustered_paths(data, root)] == [
        ["a-copy.png", "a.jpg"]
    ]


def test_files_that_vanish_or_grow_after_the_walk(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    whole = jpeg(41)()
    writes(b"vanishing.jpg", jpeg(42))(root)
    writes(b"growing.jpg", whole[: len(whole) // 3])(root)  # still being copied when walked
    writes(b"steady.jpg", jpeg(43))(root)

    def meanwhile(event: Progress) -> None:
        if event.done == 0:  # planned: every file was seen, none read yet
            (root / "vanishing.jpg").unlink()
            with open(root / "growing.jpg", "ab") as handle:
                handle.write(whole[len(whole) // 3 :])

    store = open_store(tmp_path / "index.sqlite")
    try:
        summary = index(store, root, IndexOptions(workers=1), progress=meanwhile)
    finally:
        store.close()
    assert (summary.new, summary.failed) == (2, 1)
    assert summary.failures == [{"path": "vanishing.jpg", "reason": "vanished during the run"}]
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        size = conn.execute("SELECT size FROM images WHERE relpath = ?", (b"growing.jpg",))
        # The size of what was read, so the next run sees the file unchanged.
        assert size.fetchone() == (len(whole),)


def test_heic_without_the_heif_extra_names_the_extra(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    writes(b"photo.heic", heic)(root)
    writes(b"other.jpg", jpeg(44))(root)
    db = tmp_path / "index.sqlite"
    done = dedupdb("index", root, "--db", db, "--workers", "1", blocked="pillow_heif")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    _, failures = read_rows(db)
    assert failures == {
        b"photo.heic": ("failed", "HEIC/HEIF needs `pip install 'dedupdb[heif]'` "
                        "(pillow-heif is not installed)")
    }  # fmt: skip


def test_avif_without_pillows_avif_support_says_what_it_needs(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    writes(b"photo.avif", lambda: encode(picture(45), "AVIF", quality=60))(root)
    db = tmp_path / "index.sqlite"
    done = dedupdb("index", root, "--db", db, "--workers", "1", blocked="PIL._avif")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    _, failures = read_rows(db)
    assert failures == {
        b"photo.avif": ("failed", "AVIF needs a Pillow built with AVIF support "
                        "(Pillow >= 11.3 wheels are)")
    }  # fmt: skip


def test_a_file_too_large_for_the_memory_limit_costs_only_itself(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    # 13000 x 13000 pixels in 500 KB: 500 MB once decoded, more than the 256 MiB allowed.
    writes(b"huge.png", hostile.bomb_png)(root)
    for seed in range(3):
        writes(f"small-{seed}.jpg".encode(), jpeg(50 + seed))(root)
    db = tmp_path / "index.sqlite"
    done = dedupdb("index", root, "--db", db, "--workers", "1", "--max-memory", "256", "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    images, failures = read_rows(db)
    assert set(images) == {b"small-0.jpg", b"small-1.jpg", b"small-2.jpg"}
    assert failures == {
        b"huge.png": (
            "failed",
            "too large: decoding it needs more than the 256 MiB a worker may use (--max-memory)",
        )
    }
