"""The index pipeline on real files and a real SQLite database: first runs, re-runs, changes,
moves, deletions, bad input of every kind, several roots, and a run killed for real."""

from __future__ import annotations

import importlib
import io
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import count_image_rows, photo, photo_files, save_photo
from PIL import Image as PILImage
from sqlalchemy import select

from dedupdb.errors import (
    DatabaseBusyError,
    EmptyRootError,
    ParameterMismatchError,
    RootNotFoundError,
)

# The fingerprint stage's modules: tests patch them, forked workers see it.
from dedupdb.fingerprint import compute, files
from dedupdb.hashes import HASH_VERSION, HashParams, unpack_variants
from dedupdb.indexing import IndexOptions, Progress, index
from dedupdb.library import prune
from dedupdb.store import Store, open_store
from dedupdb.store.schema import FAILED, MISSING, PRESENT, SKIPPED, Failure, Image, Run

SEQUENTIAL = IndexOptions(workers=1)


def images(store: Store) -> dict[bytes, Image]:
    with store.session() as session:
        return {row.relpath: row for row in session.execute(select(Image)).scalars()}


def statuses(store: Store) -> dict[str, str]:
    return {row.display_path: row.status for row in images(store).values()}


def failures(store: Store) -> dict[str, tuple[str, str]]:
    with store.session() as session:
        rows = session.execute(select(Failure)).scalars()
        return {row.display_path: (row.kind, row.reason) for row in rows}


class DecodeLog:
    """Counts ``decode`` calls in this process and in forked workers (through a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, data: Any) -> None:
        with open(self.path, "a") as handle:  # one short append per call: atomic
            handle.write(f"{len(data) if isinstance(data, bytes) else -1}\n")  # -1: streamed

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    @property
    def calls(self) -> list[int]:
        return [int(x) for x in self.path.read_text().split()] if self.path.exists() else []


@pytest.fixture
def count_decodes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DecodeLog:
    log = DecodeLog(tmp_path / "decodes.log")
    real = compute.decode

    def counting(data: Any) -> Any:
        log.record(data)
        return real(data)

    monkeypatch.setattr(compute, "decode", counting)  # workers are forked: they see it
    return log


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# ----------------------------------------------------------------------------- basics


def test_first_run_indexes_every_image(store: Store, photo_tree: Path) -> None:
    summary = index(store, photo_tree, SEQUENTIAL)
    assert (summary.new, summary.failed, summary.skipped, summary.interrupted) == (6, 0, 0, False)
    assert statuses(store) == {
        "2024/beach.jpg": PRESENT, "2024/forest.jpg": PRESENT, "2024/trip/city.png": PRESENT,
        "2025/snow.jpg": PRESENT, "2025/desert.webp": PRESENT, "cat.jpg": PRESENT,
    }  # fmt: skip
    row = images(store)[b"2025/snow.jpg"]
    assert (row.width, row.height, row.format, row.lossless) == (400, 300, "JPEG", False)
    assert row.size == (photo_tree / "2025" / "snow.jpg").stat().st_size
    assert len(row.content_hash) == 32
    assert len(unpack_variants(row.phash, HashParams())) == 8
    assert images(store)[b"2024/trip/city.png"].lossless
    with store.session() as session:
        runs = session.execute(select(Run)).scalars().all()
    assert [r.status for r in runs] == ["done"]


def test_parallel_run_gives_the_same_rows(tmp_path: Path, photo_tree: Path) -> None:
    one, two = open_store(tmp_path / "one.sqlite"), open_store(tmp_path / "two.sqlite")
    try:
        index(one, photo_tree, SEQUENTIAL)
        summary = index(two, photo_tree, IndexOptions(workers=2))
        assert summary.new == 6
        columns = ("content_hash", "phash", "dhash", "ahash", "whash", "width", "thumb")
        first, second = images(one), images(two)
        assert first.keys() == second.keys()
        for path in first:
            for name in columns:
                assert getattr(first[path], name) == getattr(second[path], name), (path, name)
    finally:
        one.close()
        two.close()


def test_new_rows_written_through_the_driver_equal_those_written_through_core(
    tmp_path: Path, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's fast path for new files (``ImageWriter._insert_new_sqlite``) stores exactly what
    the Core upsert stores, every column, dates read back as dates."""
    fast, core = open_store(tmp_path / "fast.sqlite"), open_store(tmp_path / "core.sqlite")
    writer = importlib.import_module("dedupdb.store.images").ImageWriter
    try:
        if fast.engine.dialect.name != "sqlite":
            pytest.skip("the fast path is SQLite's")
        calls: list[bool] = []
        fast_path = writer._insert_new_sqlite
        monkeypatch.setattr(
            writer, "_insert_new_sqlite", lambda *a: calls.append(fast_path(*a)) or calls[-1]
        )
        index(fast, photo_tree, SEQUENTIAL)
        assert calls == [True] * 6
        monkeypatch.setattr(writer, "_insert_new_sqlite", lambda *a: False)
        index(core, photo_tree, SEQUENTIAL)
        first, second = images(fast), images(core)
        assert first.keys() == second.keys()
        names = [c.key for c in Image.__table__.columns if c.key != "indexed_at"]
        for path in first:
            for name in names:
                assert getattr(first[path], name) == getattr(second[path], name), (path, name)
            assert isinstance(first[path].indexed_at, datetime)
            assert abs(first[path].indexed_at - second[path].indexed_at) < timedelta(minutes=5)
    finally:
        fast.close()
        core.close()


def test_rerun_touches_nothing(
    store: Store, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = index(store, photo_tree, SEQUENTIAL)
    before = {path: row.indexed_at for path, row in images(store).items()}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a file was read or decoded: {args!r}")

    monkeypatch.setattr(files, "_open", refuse)
    monkeypatch.setattr(compute, "decode", refuse)
    again = index(store, photo_tree, SEQUENTIAL)
    assert first.new == again.unchanged == 6
    assert again.processed == again.missing == again.known_bad == 0
    assert {path: row.indexed_at for path, row in images(store).items()} == before


# ----------------------------------------------------------------------------- changes


def test_changed_file_is_rehashed(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    target = photo_tree / "cat.jpg"
    old = images(store)[b"cat.jpg"]
    save_photo(target, 99, (240, 320), quality=95)
    bump_mtime(target)
    summary = index(store, photo_tree, SEQUENTIAL)
    assert (summary.changed, summary.new, summary.unchanged) == (1, 0, 5)
    new = images(store)[b"cat.jpg"]
    assert new.id == old.id
    assert new.content_hash != old.content_hash
    assert new.phash != old.phash
    assert new.mtime_ns == target.stat().st_mtime_ns


def test_moved_and_renamed_files_are_recognised_without_decoding(
    store: Store, photo_tree: Path, count_decodes: DecodeLog
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    assert len(count_decodes.calls) == 6  # the log sees the worker's decodes
    before = images(store)
    count_decodes.clear()
    (photo_tree / "sorted").mkdir()
    (photo_tree / "2024" / "beach.jpg").rename(photo_tree / "sorted" / "beach-2024.jpg")
    (photo_tree / "cat.jpg").rename(photo_tree / "kitty.jpg")
    summary = index(store, photo_tree, SEQUENTIAL)
    assert count_decodes.calls == []
    assert (summary.moved, summary.new, summary.changed) == (2, 0, 0)
    assert summary.missing == 0  # moved, not missing
    after = images(store)
    assert b"cat.jpg" not in after and b"2024/beach.jpg" not in after
    assert after[b"kitty.jpg"].id == before[b"cat.jpg"].id  # the same row, updated in place
    assert after[b"kitty.jpg"].status == PRESENT
    assert after[b"sorted/beach-2024.jpg"].phash == before[b"2024/beach.jpg"].phash
    assert len(after) == 6


def test_exact_copy_is_a_new_row_without_decoding(
    store: Store, photo_tree: Path, count_decodes: DecodeLog
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    count_decodes.clear()
    shutil.copy2(photo_tree / "cat.jpg", photo_tree / "cat copy.jpg")
    summary = index(store, photo_tree, SEQUENTIAL)
    assert count_decodes.calls == []
    assert (summary.new, summary.moved) == (1, 0)
    rows = images(store)
    assert rows[b"cat copy.jpg"].content_hash == rows[b"cat.jpg"].content_hash
    assert rows[b"cat copy.jpg"].phash == rows[b"cat.jpg"].phash
    assert rows[b"cat.jpg"].status == PRESENT


def test_the_fine_hash_is_stored_replaced_with_a_changed_file_and_shared_by_an_exact_copy(
    store: Store, photo_tree: Path
) -> None:
    """``images.fine_hash`` (finehash.compute of the whole frame) through every write path:
    a new row, a changed file's row replaced in place, an exact copy's row copied."""
    from dedupdb import finehash

    index(store, photo_tree, SEQUENTIAL)
    first = images(store)
    assert all(finehash.unpack(row.fine_hash) is not None for row in first.values())
    target = photo_tree / "cat.jpg"
    save_photo(target, 77, (240, 320), quality=95)
    bump_mtime(target)
    shutil.copy2(photo_tree / "2025" / "snow.jpg", photo_tree / "snow copy.jpg")
    index(store, photo_tree, SEQUENTIAL)
    after = images(store)
    decoded = compute.decoding.decode(target.read_bytes())
    assert isinstance(decoded, compute.DecodedImage)
    assert after[b"cat.jpg"].fine_hash == finehash.compute(decoded.working_luma)
    assert after[b"cat.jpg"].fine_hash != first[b"cat.jpg"].fine_hash
    assert after[b"snow copy.jpg"].fine_hash == after[b"2025/snow.jpg"].fine_hash is not None


def test_deleted_file_is_marked_missing_then_pruned(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    (photo_tree / "2025" / "snow.jpg").unlink()
    summary = index(store, photo_tree, SEQUENTIAL)
    assert (summary.missing, summary.unchanged) == (1, 5)
    assert statuses(store)["2025/snow.jpg"] == MISSING
    again = index(store, photo_tree, SEQUENTIAL)
    assert again.missing == 0  # already missing: not counted again
    assert prune(store, photo_tree) == 1
    assert "2025/snow.jpg" not in statuses(store)
    assert len(statuses(store)) == 5


def test_file_that_comes_back_is_present_again(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    target = photo_tree / "cat.jpg"
    kept = target.read_bytes()
    st = target.stat()
    target.unlink()
    index(store, photo_tree, SEQUENTIAL)
    assert statuses(store)["cat.jpg"] == MISSING
    target.write_bytes(kept)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    summary = index(store, photo_tree, SEQUENTIAL)
    assert summary.unchanged == 6
    assert statuses(store)["cat.jpg"] == PRESENT


def test_unplugged_root_is_an_error_and_marks_nothing_missing(
    store: Store, photo_tree: Path, tmp_path: Path
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    photo_tree.rename(tmp_path / "elsewhere")
    with pytest.raises(RootNotFoundError, match="folder not found"):
        index(store, photo_tree, SEQUENTIAL)
    assert set(statuses(store).values()) == {PRESENT}
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(RootNotFoundError, match="not a folder"):
        index(store, tmp_path / "file", SEQUENTIAL)


def test_empty_mount_point_is_refused_and_marks_nothing_missing(
    store: Store, photo_tree: Path, tmp_path: Path
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    # An unmounted drive: the folder is still there, empty.
    photo_tree.rename(tmp_path / "on-the-drive")
    photo_tree.mkdir()
    with pytest.raises(EmptyRootError, match="is empty, but 6 images were indexed there"):
        index(store, photo_tree, SEQUENTIAL)
    assert set(statuses(store).values()) == {PRESENT}
    with store.session() as session:
        assert session.scalars(select(Run)).all()[-1].finished_at is not None  # no run left open
    # Really gone: --allow-empty records them missing (kept, as always, until pruned).
    allowed = index(store, photo_tree, IndexOptions(in_process=True, allow_empty=True))
    assert allowed.missing == 6
    assert set(statuses(store).values()) == {MISSING}
    # The drive is back: every image present again, none decoded anew.
    photo_tree.rmdir()
    (tmp_path / "on-the-drive").rename(photo_tree)
    back = index(store, photo_tree, SEQUENTIAL)
    assert (back.unchanged, back.new, back.changed) == (6, 0, 0)
    assert set(statuses(store).values()) == {PRESENT}


def test_new_empty_root_is_indexed_without_complaint(store: Store, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    summary = index(store, tmp_path / "empty", SEQUENTIAL)
    assert (summary.new, summary.missing) == (0, 0)


def test_several_roots_never_touch_each_other(store: Store, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    save_photo(first / "x.jpg", 1)
    save_photo(first / "y.jpg", 2)
    save_photo(second / "x.jpg", 3)
    shutil.copy2(first / "y.jpg", second / "same-as-a-y.jpg")
    index(store, first, SEQUENTIAL)
    summary = index(store, second, SEQUENTIAL)
    assert summary.new == 2 and summary.moved == 0
    (first / "x.jpg").unlink()
    (second / "same-as-a-y.jpg").unlink()
    index(store, second, SEQUENTIAL)  # sees b's deletion only

    def by_root() -> dict[tuple[int, str], str]:
        with store.session() as session:
            rows = session.execute(select(Image.root_id, Image.display_path, Image.status))
            return {(root_id, path): status for root_id, path, status in rows}

    rows = by_root()
    assert sorted(rows.values()).count(MISSING) == 1
    assert next(k for k, v in rows.items() if v == MISSING)[1] == "same-as-a-y.jpg"
    index(store, first, SEQUENTIAL)
    assert sorted(by_root().values()).count(MISSING) == 2
    prune(store, second)
    assert sorted(by_root().values()).count(MISSING) == 1


def test_overlapping_roots_record_one_file_identity(store: Store, photo_tree: Path) -> None:
    """A folder indexed itself and as part of its parent: the rows share device and inode, which
    is how the report knows they are one file and never its own duplicate."""
    index(store, photo_tree, SEQUENTIAL)
    index(store, photo_tree / "2024", SEQUENTIAL)
    with store.session() as session:
        rows = session.execute(
            select(Image.root_id, Image.relpath, Image.device, Image.inode, Image.content_hash)
        ).all()
    beach = [r for r in rows if r.relpath.endswith(b"beach.jpg")]
    assert len(beach) == 2 and beach[0].root_id != beach[1].root_id
    assert (beach[0].device, beach[0].inode) == (beach[1].device, beach[1].inode)
    st = (photo_tree / "2024" / "beach.jpg").stat()
    assert beach[0].inode == st.st_ino


def test_hard_link_and_symlink_are_one_image(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "root"
    original = save_photo(root / "a.jpg", 1)
    os.link(original, root / "hardlink.jpg")
    (root / "symlink.jpg").symlink_to(original)
    assert index(store, root, SEQUENTIAL).new == 1
    assert list(statuses(store)) == ["a.jpg"]
    summary = index(store, root, IndexOptions(workers=1, follow_symlinks=True))
    assert (summary.new, summary.unchanged) == (0, 1)
    assert list(statuses(store)) == ["a.jpg"]


def test_follow_symlinks_with_a_loop(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "root"
    save_photo(root / "a" / "one.jpg", 1)
    save_photo(root / "b" / "two.jpg", 2)
    (root / "a" / "back").symlink_to(root, target_is_directory=True)
    (root / "b" / "again").symlink_to(root / "a", target_is_directory=True)
    summary = index(store, root, IndexOptions(workers=1, follow_symlinks=True))
    assert summary.new == 2
    assert sorted(statuses(store)) == ["a/one.jpg", "b/two.jpg"]


# ----------------------------------------------------------------------------- bad input


def png_claiming(width: int, height: int) -> bytes:
    from test_decode import png_claiming as make

    return make(width, height)


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """One good image and one file of each kind of bad input."""
    root = tmp_path / "bad"
    save_photo(root / "good.jpg", 1, quality=90)
    good = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    corrupt = bytearray(good)
    corrupt[2:60] = b"\x00" * 58
    (root / "corrupt.jpg").write_bytes(bytes(corrupt))
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("a text file with an image name\n")
    buffer = io.BytesIO()
    photo(2).save(buffer, "PNG")
    (root / "really-a-png.jpg").write_bytes(buffer.getvalue())
    assert PILImage.MAX_IMAGE_PIXELS is not None
    side = int((2 * PILImage.MAX_IMAGE_PIXELS) ** 0.5) + 100
    (root / "bomb.png").write_bytes(png_claiming(side, side))
    save_photo(root / "tiny.jpg", 3, (20, 16))  # under the 32 px floor
    os.mkfifo(root / "pipe.jpg")
    return root


BAD_REASONS = {
    "truncated.jpg": (FAILED, "truncated"),
    "corrupt.jpg": (FAILED, ""),
    "empty.jpg": (FAILED, "empty"),
    "notes.jpg": (FAILED, "not an image"),
    "bomb.png": (FAILED, "decompression bomb"),
    "tiny.jpg": (SKIPPED, "--min-resolution 32 px (20x16)"),
    "pipe.jpg": (SKIPPED, "not a regular file (FIFO)"),
}


def test_each_bad_input_is_recorded_counted_and_not_retried(
    store: Store, bad_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = index(store, bad_tree, SEQUENTIAL)
    assert (summary.new, summary.failed, summary.skipped) == (2, 5, 2)
    assert sorted(statuses(store)) == ["good.jpg", "really-a-png.jpg"]
    assert images(store)[b"really-a-png.jpg"].format == "PNG"
    recorded = failures(store)
    assert recorded.keys() == BAD_REASONS.keys()
    for name, (kind, words) in BAD_REASONS.items():
        assert recorded[name][0] == kind, name
        assert words in recorded[name][1], recorded[name]
    assert {f["path"] for f in summary.failures} == {
        n for n, (k, _) in BAD_REASONS.items() if k == FAILED
    }

    # Not retried: nothing is opened again.
    real_read = files._open

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a file was read: {args!r}")

    monkeypatch.setattr(files, "_open", refuse)
    again = index(store, bad_tree, SEQUENTIAL)
    assert (again.processed, again.known_bad, again.unchanged) == (0, 7, 2)
    monkeypatch.setattr(files, "_open", real_read)

    # --retry-errors tries them all again.
    retried = index(store, bad_tree, IndexOptions(workers=1, retry_errors=True))
    assert (retried.failed, retried.skipped, retried.known_bad) == (5, 2, 0)

    # A bad file that changes is retried on its own.
    save_photo(bad_tree / "truncated.jpg", 4, quality=90)
    bump_mtime(bad_tree / "truncated.jpg")
    fixed = index(store, bad_tree, SEQUENTIAL)
    assert (fixed.new, fixed.known_bad) == (1, 6)
    assert "truncated.jpg" not in failures(store)
    # A bad file that is deleted leaves the failures table.
    (bad_tree / "notes.jpg").unlink()
    index(store, bad_tree, SEQUENTIAL)
    assert "notes.jpg" not in failures(store)


def test_min_resolution_zero_indexes_tiny_images(store: Store, tmp_path: Path) -> None:
    save_photo(tmp_path / "r" / "tiny.jpg", 3, (20, 16))
    summary = index(store, tmp_path / "r", IndexOptions(workers=1, min_resolution=0))
    assert summary.new == 1
    assert images(store)[b"tiny.jpg"].width == 20


def test_thumbnails_and_icons_are_indexed_spacers_are_not(store: Store, tmp_path: Path) -> None:
    """The default floor is 32 px: a 160x90 thumbnail and a 64x64 icon are indexed (the
    report pairs them only with larger pictures), a 20x20 picture is skipped."""
    save_photo(tmp_path / "r" / "thumb.jpg", 3, (160, 90))
    save_photo(tmp_path / "r" / "icon.png", 4, (64, 64))
    save_photo(tmp_path / "r" / "spacer.png", 5, (20, 20))
    summary = index(store, tmp_path / "r", SEQUENTIAL)
    assert (summary.new, summary.skipped) == (2, 1)
    assert sorted(images(store)) == [b"icon.png", b"thumb.jpg"]
    assert failures(store)["spacer.png"] == (
        SKIPPED,
        "smaller than --min-resolution 32 px (20x20)",
    )


def test_a_bad_file_that_was_an_image_loses_its_row(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    (photo_tree / "cat.jpg").write_bytes(b"garbage")
    summary = index(store, photo_tree, SEQUENTIAL)
    assert summary.failed == 1
    assert "cat.jpg" not in statuses(store)
    assert failures(store)["cat.jpg"][0] == FAILED


def test_permission_denied_is_recorded(
    store: Store, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code path for an unreadable file, simulated so that it also runs as root."""
    real_read = files._open

    def read(path: bytes) -> Any:
        if path.endswith(b"cat.jpg"):
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(files, "_open", read)
    summary = index(store, photo_tree, SEQUENTIAL)
    assert (summary.new, summary.failed) == (5, 1)
    assert failures(store)["cat.jpg"] == (FAILED, "permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_and_folder_for_real(store: Store, photo_tree: Path) -> None:
    (photo_tree / "cat.jpg").chmod(0)
    (photo_tree / "2024").chmod(0)
    try:
        summary = index(store, photo_tree, SEQUENTIAL)
        recorded = failures(store)
        assert recorded["cat.jpg"] == (FAILED, "permission denied")
        assert "permission" in recorded["2024"][1].lower()
        assert summary.failed == 2
    finally:
        (photo_tree / "cat.jpg").chmod(0o644)
        (photo_tree / "2024").chmod(0o755)
    # Once readable again, nothing below the folder was ever marked missing.
    index(store, photo_tree, SEQUENTIAL)
    assert set(statuses(store).values()) == {PRESENT}


def test_unreadable_folder_does_not_mark_its_images_missing(
    store: Store, photo_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index(store, photo_tree, SEQUENTIAL)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if os.fsencode(path).endswith(b"/2024"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr("dedupdb.walk.os.scandir", scandir)
    summary = index(store, photo_tree, SEQUENTIAL)
    assert summary.missing == 0
    assert set(statuses(store).values()) == {PRESENT}
    assert "permission" in failures(store)["2024"][1].lower()


def test_file_vanishing_mid_run(store: Store, photo_tree: Path) -> None:
    def vanish(event: Progress) -> None:
        if event.done == 0:  # the plan is made, no file read yet
            (photo_tree / "cat.jpg").unlink()

    summary = index(store, photo_tree, SEQUENTIAL, progress=vanish)
    assert (summary.new, summary.failed) == (5, 1)
    assert failures(store)["cat.jpg"] == (FAILED, "vanished during the run")
    index(store, photo_tree, SEQUENTIAL)
    assert failures(store) == {}


# ----------------------------------------------------------------------------- names, params


def test_non_utf8_names_round_trip(store: Store, tmp_path: Path) -> None:
    root = os.path.join(os.fsencode(tmp_path), b"r\xff")
    folder = os.path.join(root, b"\xe9t\xe9")
    os.makedirs(folder)
    buffer = io.BytesIO()
    photo(1).save(buffer, "JPEG", quality=90)
    with open(os.path.join(folder, b"caf\xe9.jpg"), "wb") as handle:
        handle.write(buffer.getvalue())
    summary = index(store, root, SEQUENTIAL)
    assert summary.new == 1
    assert summary.root.endswith("r\\xff")
    row = images(store)[b"\xe9t\xe9/caf\xe9.jpg"]
    assert row.display_path == "\\xe9t\\xe9/caf\\xe9.jpg"
    assert os.path.exists(os.path.join(root, row.relpath))
    assert index(store, root, SEQUENTIAL).unchanged == 1


def test_hash_parameter_mismatch_needs_rehash(store: Store, photo_tree: Path) -> None:
    index(store, photo_tree, SEQUENTIAL)
    with pytest.raises(ParameterMismatchError) as caught:
        index(store, photo_tree, IndexOptions(workers=1, hash_size=16))
    assert "hash size 8" in caught.value.message and "16" in caught.value.message
    assert caught.value.hint and "--rehash" in caught.value.hint
    assert {row.hash_size for row in images(store).values()} == {8}
    summary = index(store, photo_tree, IndexOptions(workers=1, hash_size=16, rehash=True))
    assert summary.changed == 6
    rows = images(store).values()
    assert {row.hash_size for row in rows} == {16}
    assert {len(row.phash) for row in rows} == {8 * 32}
    # Later runs keep the database's size without being told.
    assert index(store, photo_tree, SEQUENTIAL).unchanged == 6
    assert store.get_setting("hash_params") == {"hash_size": 16, "version": HASH_VERSION}


def _stale_run(store: Store, host: str, pid: int) -> None:
    from datetime import datetime

    with store.transaction() as session:
        session.add(Run(host=host, pid=pid, status="running", started_at=datetime(2026, 1, 1)))


def test_dead_run_on_this_host_is_marked_interrupted(store: Store, photo_tree: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    _stale_run(store, socket.gethostname(), dead.pid)
    assert index(store, photo_tree, SEQUENTIAL).new == 6
    with store.session() as session:
        assert session.execute(select(Run.status).order_by(Run.id)).scalars().all() == [
            "interrupted",
            "done",
        ]


def test_run_left_by_another_machine_needs_break_lock(store: Store, photo_tree: Path) -> None:
    """A run on another host (or in a container since removed) cannot be checked for life: the
    refusal names it and the way out; --break-lock takes the lock over."""
    _stale_run(store, "old-container-3f2a", 4242)
    with pytest.raises(DatabaseBusyError) as caught:
        index(store, photo_tree, SEQUENTIAL)
    assert "pid 4242 on old-container-3f2a" in caught.value.message
    assert caught.value.hint and "--break-lock" in caught.value.hint
    summary = index(store, photo_tree, IndexOptions(workers=1, break_lock=True))
    assert summary.new == 6
    with store.session() as session:
        assert session.execute(select(Run.status).order_by(Run.id)).scalars().all() == [
            "interrupted",
            "done",
        ]


# ----------------------------------------------------------------------------- killed for real


def _children(pid: int) -> set[int]:
    """Every live descendant of pid (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        except OSError:
            continue
    return alive


def _assert_no_orphans(workers: set[int], what: str) -> None:
    """Wait up to 10 s for the workers to exit; kill and fail on any that outlive it."""
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = _alive(workers)
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"{what}: {sorted(orphans)}"


@pytest.fixture
def killable() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find worker processes")
def test_killed_run_resumes_every_file_once(
    tmp_path: Path, killable: list[subprocess.Popen[bytes]]
) -> None:
    from click.testing import CliRunner

    from dedupdb.cli import cli

    root, db = tmp_path / "photos", tmp_path / "index.sqlite"
    files = photo_files(root, 120)
    command = [sys.executable, "-m", "dedupdb", "index", str(root), "--db", str(db), "--workers"]
    proc = subprocess.Popen(
        [*command, "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    killable.append(proc)
    deadline = time.monotonic() + 60
    while count_image_rows(db) < 5:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no row committed within a minute"
        time.sleep(0.02)

    # A second index on the same database while this one runs: a clear refusal.
    with pytest.raises(DatabaseBusyError, match="busy"):
        busy_store = open_store(db)
        try:
            index(busy_store, root, SEQUENTIAL)
        finally:
            busy_store.close()
    result = CliRunner().invoke(cli, ["index", str(root), "--db", str(db)])
    assert result.exit_code == 1
    assert "busy" in result.output and "Traceback" not in result.output

    workers = _children(proc.pid)
    assert len(workers) >= 2, workers  # (forkserver and) 2 pool workers
    assert proc.poll() is None, "the run finished before it could be killed: use more files"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = count_image_rows(db)
    assert 0 < committed < len(files)

    # No worker outlives the process it worked for.
    _assert_no_orphans(workers, "worker processes outlived the killed run")

    store = open_store(db)
    try:
        summary = index(store, root, IndexOptions(workers=2))
        assert summary.unchanged == committed
        assert summary.new == len(files) - committed
        assert summary.failed == summary.missing == 0
        with store.session() as session:
            relpaths = session.execute(select(Image.relpath)).scalars().all()
            runs = session.execute(select(Run.status).order_by(Run.id)).scalars().all()
        assert sorted(relpaths) == sorted(p.name.encode() for p in files)  # each exactly once
        assert runs == ["interrupted", "done"]  # the killed run's row is not left "running"
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM failures").fetchone()[0] == 0


# ----------------------------------------------------------------------------- crashing decoders


def _crash_on(monkeypatch: pytest.MonkeyPatch, name: bytes, how: str) -> None:
    """Make the worker that processes ``name`` die (forked workers see the patch)."""
    real = files.process_file

    def crashing(task: Any) -> Any:
        if task.entry.relpath == name:
            if how == "segfault":
                import ctypes
                import faulthandler

                faulthandler.disable()  # pytest's handler would print a traceback first
                ctypes.string_at(0)  # a real invalid read, as a broken C decoder makes
            elif how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
            elif how == "hang":
                time.sleep(600)
        return real(task)

    monkeypatch.setattr(files, "process_file", crashing)


@pytest.mark.skipif(sys.platform != "linux", reason="the patched worker must be forked")
@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("segfault", "the decoder crashed: signal 11 (SIGSEGV)"),
        ("sigkill", "the decoder crashed: signal 9 (SIGKILL)"),
    ],
)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_crashing_decoder_costs_only_its_file(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    reason: str,
    workers: int,
) -> None:
    root = tmp_path / "photos"
    files = photo_files(root, 12, (160, 120))
    _crash_on(monkeypatch, b"004.jpg", how)
    before = set(multiprocessing.active_children())
    summary = index(store, root, IndexOptions(workers=workers))
    assert (summary.new, summary.failed) == (11, 1)
    assert summary.failures == [{"path": "004.jpg", "reason": reason}]
    assert failures(store) == {"004.jpg": (FAILED, reason)}
    assert sorted(images(store)) == sorted(p.name.encode() for p in files if p.name != "004.jpg")
    assert set(multiprocessing.active_children()) == before
    assert not _children(os.getpid()) - {p.pid for p in before}, "a worker outlived the run"

    again = index(store, root, IndexOptions(workers=workers))  # known bad: not tried again
    assert (again.known_bad, again.failed, again.new, again.unchanged) == (1, 0, 0, 11)
    monkeypatch.undo()  # the decoder is fixed: --retry-errors indexes the file
    retried = index(store, root, IndexOptions(workers=workers, retry_errors=True))
    assert (retried.new, retried.failed) == (1, 0)
    assert failures(store) == {}


@pytest.mark.skipif(sys.platform != "linux", reason="the patched worker must be forked")
def test_a_file_that_hangs_the_decoder_times_out(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    photo_files(root, 6, (160, 120))
    _crash_on(monkeypatch, b"002.jpg", "hang")
    started = time.monotonic()
    # 3 s: far more than a 160x120 photo needs even on a loaded machine.
    summary = index(store, root, IndexOptions(workers=2, timeout=3.0))
    assert time.monotonic() - started < 60
    reason = "timed out: decoding took longer than 3 s (see --timeout)"
    assert failures(store) == {"002.jpg": (FAILED, reason)}
    assert (summary.new, summary.failed) == (5, 1)


@pytest.mark.skipif(sys.platform != "linux", reason="the patched worker must be forked")
def test_cli_reports_a_crashed_decoder_and_timeout_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from dedupdb.cli import cli

    root = tmp_path / "photos"
    photo_files(root, 4, (160, 120))
    _crash_on(monkeypatch, b"001.jpg", "segfault")
    db = str(tmp_path / "cli.sqlite")
    result = CliRunner().invoke(
        cli, ["index", str(root), "--db", db, "--timeout", "30", "--strict"]
    )
    assert result.exit_code == 3, result.output  # --strict: some files could not be read
    assert "001.jpg" in result.output and "signal 11 (SIGSEGV)" in result.output
    assert "Traceback" not in result.output
