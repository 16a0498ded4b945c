"""The walk: which files it yields, in which order, and what it never does (open a file,
follow a link unasked, loop forever, yield one file twice)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dedupdb.walk import FileEntry, WalkProblem, display, is_excluded, is_image_name, walk


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def relpaths(root: Path, **kwargs: object) -> list[bytes]:
    return [e.relpath for e in walk(os.fsencode(root), **kwargs)]  # type: ignore[arg-type]


def test_yields_image_files_sorted_with_stat(tmp_path: Path) -> None:
    touch(tmp_path / "b.JPG", b"12345")
    touch(tmp_path / "a" / "z.png")
    touch(tmp_path / "a" / "notes.txt")
    touch(tmp_path / "c.heic")
    touch(tmp_path / "noext")
    entries = list(walk(os.fsencode(tmp_path)))
    # Each folder's files by name, then its subfolders: stable from run to run.
    assert [e.relpath for e in entries] == [b"b.JPG", b"c.heic", b"a/z.png"]
    st = os.stat(tmp_path / "b.JPG")
    assert entries[0] == FileEntry(b"b.JPG", 5, st.st_mtime_ns, st.st_dev, st.st_ino)


def test_excludes_match_names_and_relative_paths(tmp_path: Path) -> None:
    touch(tmp_path / "@eaDir" / "thumb.jpg")
    touch(tmp_path / "keep" / "a.jpg")
    touch(tmp_path / "keep" / "a.tmp.jpg")
    touch(tmp_path / "other" / "b.jpg")
    found = relpaths(tmp_path, excludes=("@eaDir", "*.tmp.jpg", "other/b.jpg"))
    assert found == [b"keep/a.jpg"]


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    outside = touch(tmp_path / "outside" / "x.jpg")
    root = tmp_path / "root"
    touch(root / "real.jpg")
    (root / "link.jpg").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    assert relpaths(root) == [b"real.jpg"]
    # linkdir/x.jpg is the file link.jpg already reached: one entry.
    assert relpaths(root, follow_symlinks=True) == [b"link.jpg", b"real.jpg"]


def test_follow_symlinks_survives_a_loop_and_yields_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "sub" / "a.jpg")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "sub" / "self").symlink_to(root / "sub", target_is_directory=True)
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    result: list[list[bytes]] = []
    thread = threading.Thread(target=lambda: result.append(relpaths(root, follow_symlinks=True)))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the walk looped forever"
    assert result == [[b"sub/a.jpg"]]


def test_hard_links_and_symlinks_to_one_file_are_one_entry(tmp_path: Path) -> None:
    original = touch(tmp_path / "a.jpg")
    os.link(original, tmp_path / "b.jpg")
    (tmp_path / "c.jpg").symlink_to(original)
    assert relpaths(tmp_path) == [b"a.jpg"]
    assert relpaths(tmp_path, follow_symlinks=True) == [b"a.jpg"]


def test_fifo_with_an_image_name_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    touch(tmp_path / "real.jpg")
    problems: list[WalkProblem] = []
    result: list[list[bytes]] = []
    # Opening a FIFO for reading blocks until a writer appears: a hang here means it was opened.
    thread = threading.Thread(
        target=lambda: result.append(relpaths(tmp_path, on_problem=problems.append))
    )
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the walk opened the FIFO"
    assert result == [[b"real.jpg"]]
    assert [p.relpath for p in problems] == [b"pipe.jpg"]
    assert "not a regular file" in problems[0].reason
    assert problems[0].skipped


def test_non_utf8_names_are_yielded_losslessly(tmp_path: Path) -> None:
    name = b"caf\xe9.jpg"
    with open(os.path.join(os.fsencode(tmp_path), name), "wb") as handle:
        handle.write(b"x")
    assert relpaths(tmp_path) == [name]
    assert display(name) == "caf\\xe9.jpg"
    assert display("café.jpg".encode()) == "café.jpg"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_unreadable_folder_is_reported_not_raised(tmp_path: Path) -> None:
    touch(tmp_path / "locked" / "a.jpg")
    touch(tmp_path / "open.jpg")
    (tmp_path / "locked").chmod(0)
    try:
        problems: list[WalkProblem] = []
        assert relpaths(tmp_path, on_problem=problems.append) == [b"open.jpg"]
        assert [p.relpath for p in problems] == [b"locked"]
        assert "permission" in problems[0].reason.lower()
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_image_names_and_exclusion_helpers() -> None:
    assert is_image_name(b"x.JPEG")
    assert is_image_name(b"IMG_1.HEIC")
    assert not is_image_name(b"x.jpg.txt")
    assert not is_image_name(b"jpg")
    assert is_excluded(b"a/.thumbnails/x.jpg", [".thumbnails/*", "*/.thumbnails/*"])
    assert not is_excluded(b"a/b.jpg", [])
