"""apply / undo / resume / history on real files in tmp dirs and a real SQLite database.

The report JSON is built here from the index's rows (exact copies grouped by content hash),
in the agreed schema (INTERFACES.md), the way a user's edited report would arrive.
"""

from __future__ import annotations

import base64
import errno
import functools
import io
import json
import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import photo, save_photo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from dedupdb import fileops, index
from dedupdb.actions import (
    DELETE,
    HARDLINK,
    MOVE,
    SYMLINK,
    TRASH,
    ActionError,
    apply,
    history,
    plan_actions,
    resume,
    undo,
)
from dedupdb.cli import cli
from dedupdb.indexing import IndexOptions
from dedupdb.store import Store, open_store
from dedupdb.store.schema import PRESENT, QUARANTINED, Image, Root

ONE = IndexOptions(workers=1)


# ----------------------------------------------------------------------------- helpers


@functools.cache
def photo_bytes(seed: int) -> bytes:
    """A generated JPEG (generated once per seed and session)."""
    buffer = io.BytesIO()
    photo(seed).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def library(base: Path, families: int = 3, copies: int = 2) -> Path:
    """``families`` different photos, each with ``copies`` exact copies in other folders."""
    root = base / "photos"
    for f in range(families):
        original = root / "originals" / f"p{f}.jpg"
        original.parent.mkdir(parents=True, exist_ok=True)
        original.write_bytes(photo_bytes(100 + f))
        for c in range(copies):
            copy = root / f"copies{c}" / f"p{f}.jpg"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)
    return root


def build_report(store: Store) -> dict[str, Any]:
    """A report in the agreed JSON schema: one cluster per content hash with 2+ present rows;
    the keeper is the copy under ``originals/`` if there is one, else the lowest id."""
    with store.session() as session:
        rows = session.execute(
            # In path order, not id order: the index commits files in its own order (largest
            # first), and these tests name the first cluster and the first file moved.
            select(Image, Root.path)
            .join(Root, Root.id == Image.root_id)
            .order_by(Root.path, Image.relpath)
        ).all()
    groups: dict[bytes, list[tuple[Image, bytes]]] = {}
    for image, root in rows:
        if image.status == PRESENT:
            groups.setdefault(image.content_hash, []).append((image, root))
    clusters = []
    for members in groups.values():
        if len(members) < 2:
            continue
        originals = [m for m, _ in members if m.relpath.startswith(b"originals/")]
        chosen = (originals or [members[0][0]])[0].id
        clusters.append(
            {
                "id": len(clusters) + 1,
                "exact": True,
                "max_distance": 0,
                "reclaimable_bytes": sum(m.size for m, _ in members[1:]),
                "keeper": chosen,
                "reasons": ["lowest id"],
                "members": [member_json(m, root, m.id == chosen) for m, root in members],
            }
        )
    return {
        "schema": "dedupdb-report",
        "version": 1,
        "generated_at": "2026-11-25T10:00:00Z",
        "database": store.url,
        "settings": {"hash": "phash", "threshold": 10, "rotations": True, "ssim": None},
        "summary": {"clusters": len(clusters)},
        "clusters": clusters,
    }


def member_json(image: Image, root: bytes, keeper: bool) -> dict[str, Any]:
    path = os.path.join(root, image.relpath)
    try:
        text, raw = path.decode("utf-8"), None
    except UnicodeDecodeError:
        text, raw = path.decode("utf-8", "backslashreplace"), base64.b64encode(path).decode()
    return {
        "image_id": image.id,
        "path": text,
        "path_bytes_b64": raw,
        "size": image.size,
        "mtime_ns": image.mtime_ns,
        "content_hash": image.content_hash.hex(),
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "distance": 0,
        "transform": "identity",
        "keeper": keeper,
    }


def snapshot(top: Path, skip: str | None = None) -> dict[str, Any]:
    """Every folder and file below ``top``: kind, bytes, mtime_ns, link count (for files)."""
    tree: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip:
            dirnames[:] = [d for d in dirnames if d != skip]
        for name in dirnames:
            tree[os.path.relpath(os.path.join(dirpath, name), top)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                tree[os.path.relpath(path, top)] = ("link", os.readlink(path))
            else:
                data = Path(path).read_bytes()
                tree[os.path.relpath(path, top)] = ("file", data, st.st_mtime_ns, st.st_nlink)
    return tree


def files_under(top: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), top)
        for d, _, names in os.walk(top)
        for f in names
        if f != ".dedupdb-quarantine"
    )


def statuses(store: Store) -> dict[str, str]:
    with store.session() as session:
        return {
            os.fsdecode(r.relpath): r.status
            for r in session.execute(select(Image.relpath, Image.status))
        }


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The library of ``library()`` indexed once per session (indexing decodes every file)."""
    base = tmp_path_factory.mktemp("actions-template")
    root = library(base)
    template = open_store(base / "template.sqlite")
    index(template, root, ONE)
    template.close()  # the last connection closes: the WAL is checkpointed into the file
    return root, base / "template.sqlite"


@pytest.fixture
def indexed(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    db_path: Path,
    indexed_template: tuple[Path, Path],
) -> Iterator[tuple[Path, Store]]:
    """A fresh copy of the indexed library and its database (files with their mtimes; the
    database's root moved to the copy), or with ``--backend postgresql`` a fresh index."""
    if request.config.getoption("--backend") == "postgresql":
        store = request.getfixturevalue("store")
        root = library(tmp_path)
        index(store, root, ONE)
        yield root, store
        return
    template_root, template_db = indexed_template
    root = tmp_path / "photos"
    shutil.copytree(template_root, root)  # copy2: bytes, mode and mtime_ns
    shutil.copyfile(template_db, db_path)
    store = open_store(db_path)
    with store.transaction() as session:
        session.execute(update(Root).values(path=os.fsencode(root), display_path=str(root)))
    yield root, store
    store.close()


@pytest.fixture
def fake_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """send2trash's freedesktop trash, pointed at tmp_path (it reads XDG_DATA_HOME at import)."""
    from send2trash import plat_other

    data = tmp_path / "xdg-data"
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    monkeypatch.setattr(plat_other, "get_dev", lambda path: 1)  # "on the home's device"
    return data / "Trash"


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("action", [MOVE, HARDLINK, SYMLINK, TRASH])
def test_apply_then_undo_restores_identical_tree(
    indexed: tuple[Path, Store], tmp_path: Path, action: str, fake_trash: Path
) -> None:
    root, store = indexed
    before = snapshot(root)
    quarantine = tmp_path / "q"
    plan = plan_actions(store, build_report(store), action, quarantine=quarantine)
    assert len(plan.actions) == 6 and not plan.refused
    result = apply(store, plan)
    assert len(result.done) == 6 and not result.skipped
    after = snapshot(root)
    assert after != before
    # The keepers are untouched and every duplicate is handled as asked.
    for f in range(3):
        assert after[f"originals/p{f}.jpg"][1] == before[f"originals/p{f}.jpg"][1]
        for c in range(2):
            dup = root / f"copies{c}" / f"p{f}.jpg"
            if action == MOVE:
                assert not dup.exists()
                assert (quarantine / "photos" / f"copies{c}" / f"p{f}.jpg").read_bytes() == (
                    before[f"copies{c}/p{f}.jpg"][1]
                )
            elif action == TRASH:
                assert not dup.exists()
            elif action == SYMLINK:
                assert dup.is_symlink() and dup.resolve() == root / "originals" / f"p{f}.jpg"
            else:
                assert os.path.samefile(dup, root / "originals" / f"p{f}.jpg")
    expected_status = {MOVE: "quarantined", TRASH: "trashed"}.get(action, "linked")
    assert sorted(set(statuses(store).values())) == sorted({PRESENT, expected_status})

    restored = undo(store, result.run_id)
    assert len(restored.restored) == 6 and not restored.skipped
    assert snapshot(root) == before
    assert set(statuses(store).values()) == {PRESENT}
    if action != TRASH:
        assert files_under(quarantine) == []  # the quarantine is tidied, nothing left behind
    else:
        assert os.listdir(fake_trash / "files") == []
        assert os.listdir(fake_trash / "info") == []
    assert history(store)[0].status == "undone"


def test_undo_leaves_in_the_trash_what_another_file_replaced(
    indexed: tuple[Path, Store], fake_trash: Path
) -> None:
    root, store = indexed
    result = apply(store, plan_actions(store, build_report(store), TRASH))
    newcomer = root / "copies0" / "p0.jpg"
    newcomer.write_bytes(b"a new file under the old name")
    back = undo(store, result.run_id)
    assert len(back.restored) == 5
    assert [s.reason for s in back.skipped] == [
        f"something else is at {newcomer} now; it stays in the trash"
    ]
    assert newcomer.read_bytes() == b"a new file under the old name"
    assert len(os.listdir(fake_trash / "files")) == len(os.listdir(fake_trash / "info")) == 1


def test_moves_across_filesystems_copy_verify_and_keep_times(
    indexed: tuple[Path, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXDEV from link (another filesystem): copy, fsync, verify, then remove the source."""
    root, store = indexed
    before = snapshot(root)
    real_link = os.link

    def cross_device(src: Any, dst: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    quarantine = tmp_path / "q"
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    assert len(result.done) == 6
    moved = quarantine / "photos" / "copies0" / "p0.jpg"
    assert moved.read_bytes() == before["copies0/p0.jpg"][1]
    assert moved.stat().st_mtime_ns == before["copies0/p0.jpg"][2]
    assert not list(quarantine.rglob("*.dedupdb-partial"))
    monkeypatch.setattr(os, "link", real_link)
    monkeypatch.setattr(os, "link", cross_device)  # undo copies back the same way
    undo(store, result.run_id)
    assert snapshot(root) == before


def test_delete_is_done_and_cannot_be_undone(indexed: tuple[Path, Store]) -> None:
    root, store = indexed
    result = apply(store, plan_actions(store, build_report(store), DELETE))
    assert len(result.done) == 6
    assert files_under(root) == [f"originals/p{f}.jpg" for f in range(3)]
    back = undo(store, result.run_id)
    assert back.restored == [] and len(back.skipped) == 6
    assert all("cannot be undone" in s.reason for s in back.skipped)


# ----------------------------------------------------------------------------- safety rules


def test_file_changed_between_index_and_apply_is_left_alone(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    report = build_report(store)
    grown = root / "copies0" / "p0.jpg"
    grown.write_bytes(grown.read_bytes() + b"more")
    # Same size and mtime, other bytes: only the content hash tells.
    sneaky = root / "copies1" / "p1.jpg"
    st = sneaky.stat()
    data = bytearray(sneaky.read_bytes())
    data[-3] ^= 0xFF
    sneaky.write_bytes(bytes(data))
    os.utime(sneaky, ns=(st.st_atime_ns, st.st_mtime_ns))
    # A keeper that changed: its duplicates are left alone too.
    keeper = root / "originals" / "p2.jpg"
    keeper.write_bytes(keeper.read_bytes() + b"edited")
    changed = {p: p.read_bytes() for p in (grown, sneaky, keeper)}

    result = apply(store, plan_actions(store, report, quarantine=tmp_path / "q"))
    reasons = {s.path: s.reason for s in result.skipped}
    assert "changed since it was indexed" in reasons[str(grown)]
    assert "content changed" in reasons[str(sneaky)]
    assert "keeper" in reasons[str(root / "copies0" / "p2.jpg")]
    assert "keeper" in reasons[str(root / "copies1" / "p2.jpg")]
    assert len(result.done) == 2  # copies1/p0 and copies0/p1
    for path, data in changed.items():
        assert path.read_bytes() == data
    assert (root / "copies0" / "p2.jpg").exists() and (root / "copies1" / "p2.jpg").exists()


def test_cluster_of_hard_links_of_one_file_is_refused(tmp_path: Path, store: Store) -> None:
    """One file under two roots (hard links): it is its own keeper, never its duplicate."""
    lib = tmp_path / "lib"
    a = save_photo(lib / "a" / "x.jpg", 7, quality=90)
    (lib / "b").mkdir()
    os.link(a, lib / "b" / "x.jpg")
    (lib / "c").mkdir()
    os.link(a, lib / "c" / "y.jpg")
    for folder in "abc":
        index(store, lib / folder, ONE)
    report = build_report(store)
    assert len(report["clusters"]) == 1 and len(report["clusters"][0]["members"]) == 3
    plan = plan_actions(store, report, quarantine=tmp_path / "q")
    assert plan.actions == []
    assert "through another path" in plan.refused[0].reason
    before = snapshot(lib)
    result = apply(store, plan)
    assert result.done == [] and result.skipped
    assert snapshot(lib) == before


def test_same_file_through_a_symlinked_root_is_refused(tmp_path: Path, store: Store) -> None:
    save_photo(tmp_path / "real" / "x.jpg", 8, quality=90)
    os.symlink(tmp_path / "real", tmp_path / "alias")
    index(store, tmp_path / "real", ONE)
    index(store, tmp_path / "alias", ONE)
    plan = plan_actions(store, build_report(store), quarantine=tmp_path / "q")
    assert plan.actions == [] and "through another path" in plan.refused[0].reason


def test_hard_link_made_after_indexing_is_caught_before_acting(
    tmp_path: Path, store: Store
) -> None:
    root = library(tmp_path, families=1, copies=1)
    index(store, root, ONE)
    report = build_report(store)
    dup, keeper = root / "copies0" / "p0.jpg", root / "originals" / "p0.jpg"
    dup.unlink()
    os.link(keeper, dup)  # same bytes, size and mtime as indexed, but now the keeper itself
    result = apply(store, plan_actions(store, report, quarantine=tmp_path / "q"))
    assert result.done == [] and "keeper through another path" in result.skipped[0].reason
    assert keeper.read_bytes() and dup.exists()


def test_user_edited_report(indexed: tuple[Path, Store], tmp_path: Path) -> None:
    root, store = indexed
    report = build_report(store)
    first, second, third = report["clusters"]
    # A changed keeper: the user prefers copies1's file of the first picture.
    new_keeper = next(m for m in first["members"] if "copies1" in m["path"])
    first["keeper"] = new_keeper["image_id"]
    # A removed cluster: its files are not touched.
    report["clusters"].remove(second)
    # A keeper that is not a member: the whole cluster is refused.
    third["keeper"] = 99999
    plan = plan_actions(store, report, quarantine=tmp_path / "q")
    assert {a.file.path for a in plan.actions} == {
        os.fsencode(root / "originals" / "p0.jpg"),
        os.fsencode(root / "copies0" / "p0.jpg"),
    }
    assert [r.reason for r in plan.refused] == ["its keeper 99999 is not one of its members"]
    result = apply(store, plan)
    assert len(result.done) == 2
    assert (root / "copies1" / "p0.jpg").exists()
    assert not (root / "originals" / "p0.jpg").exists()
    assert files_under(root / "copies0") == ["p1.jpg", "p2.jpg"]
    assert files_under(root / "copies1") == ["p0.jpg", "p1.jpg", "p2.jpg"]


def test_edited_report_can_never_remove_every_member(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    _, store = indexed
    report = build_report(store)
    first, second, _ = report["clusters"]
    # The same picture listed twice, and a keeper that another cluster lists as a duplicate.
    first["members"].append(dict(first["members"][1]))
    stray = dict(second["members"][1])
    report["clusters"].append(
        {"id": 9, "keeper": second["keeper"], "members": [second["members"][0], stray]}
    )
    other = {"id": 10, "keeper": stray["image_id"], "members": [stray, second["members"][2]]}
    report["clusters"].append(other)
    plan = plan_actions(store, report, quarantine=tmp_path / "q")
    reasons = [r.reason for r in plan.refused]
    assert "it lists the same image twice" in reasons
    assert "it is the keeper of another cluster" in reasons
    acted = {a.file.image_id for a in plan.actions}
    keepers = {a.keeper.image_id for a in plan.actions}
    assert not acted & keepers
    apply(store, plan)
    for cluster in report["clusters"]:  # every cluster still has a file left
        assert any(Path(m["path"]).exists() for m in cluster["members"])


def test_report_older_than_the_index_is_not_trusted(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    report = build_report(store)
    first, second, _ = report["clusters"]
    first["members"][0]["path"] = str(root / "elsewhere.jpg")
    keeper = next(m for m in second["members"] if m["keeper"])
    keeper["content_hash"] = "00" * 32
    plan = plan_actions(store, report, quarantine=tmp_path / "q")
    assert len(plan.actions) == 3
    reasons = [r.reason for r in plan.refused]
    assert "older than the index" in reasons[0]
    assert reasons[1].startswith("its keeper: its content changed since the report")


def test_collisions_in_the_quarantine_never_overwrite(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    quarantine = tmp_path / "q"
    occupied = quarantine / "photos" / "copies0" / "p0.jpg"
    occupied.parent.mkdir(parents=True)
    occupied.write_bytes(b"the user's own file")
    (quarantine / "photos" / "copies0" / "p1.jpg.dedupdb-partial").write_bytes(b"x")
    before = snapshot(root)
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    assert len(result.done) == 6
    assert occupied.read_bytes() == b"the user's own file"
    assert (quarantine / "photos" / "copies0" / "p0 (1).jpg").read_bytes() == (
        before["copies0/p0.jpg"][1]
    )
    assert (quarantine / "photos" / "copies0" / "p1 (1).jpg").exists()
    undo(store, result.run_id)
    assert snapshot(root) == before
    assert occupied.read_bytes() == b"the user's own file"


def test_a_second_run_into_the_same_quarantine_gets_new_names(tmp_path: Path, store: Store) -> None:
    root = library(tmp_path, families=1, copies=1)
    index(store, root, ONE)
    quarantine = tmp_path / "q"
    apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    shutil.copy2(root / "originals" / "p0.jpg", root / "copies0" / "p0.jpg")
    index(store, root, ONE)
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    assert len(result.done) == 1
    assert files_under(quarantine) == ["photos/copies0/p0 (1).jpg", "photos/copies0/p0.jpg"]


def test_two_roots_with_one_name_get_separate_quarantine_folders(
    tmp_path: Path, store: Store
) -> None:
    a = save_photo(tmp_path / "one" / "photos" / "x.jpg", 9, quality=90)
    b = tmp_path / "two" / "photos" / "x.jpg"
    b.parent.mkdir(parents=True)
    shutil.copy2(a, b)
    index(store, a.parent, ONE)
    index(store, b.parent, ONE)
    plan = plan_actions(store, build_report(store), quarantine=tmp_path / "q")
    (item,) = plan.actions
    assert item.destination is not None
    assert os.path.basename(os.path.dirname(item.destination)).startswith(b"photos-")


@pytest.mark.parametrize(
    "err", [errno.EACCES, errno.EROFS, errno.ENOSPC], ids=["denied", "read-only", "full"]
)
def test_filesystem_errors_skip_one_file_and_the_run_goes_on(
    indexed: tuple[Path, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """Tests run as root (permissions do not bite), so the failing call is simulated."""
    root, store = indexed
    victim = os.fsencode(root / "copies0" / "p1.jpg")
    before = snapshot(root)
    real_unlink, real_fsync, real_link = os.unlink, os.fsync, os.link
    if err == errno.ENOSPC:  # the copy path runs out of space while writing this file

        def no_link(src: Any, dst: Any, **kwargs: Any) -> None:
            raise OSError(errno.EXDEV, "cross-device")

        calls = {"n": 0}

        def full(fd: int) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)

        monkeypatch.setattr(os, "link", no_link)
        monkeypatch.setattr(os, "fsync", full)
        victim = os.fsencode(root / "copies0" / "p0.jpg")  # the first file moved
    else:  # the source folder refuses the removal after the new name was made

        def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
            if os.fsencode(path) == victim:
                raise OSError(err, os.strerror(err))
            real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(os, "unlink", refuse)
    quarantine = tmp_path / "q"
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    monkeypatch.setattr(os, "unlink", real_unlink)
    monkeypatch.setattr(os, "link", real_link)
    assert len(result.done) == 5
    (skip,) = result.skipped
    assert skip.path == os.fsdecode(victim)
    assert {errno.EACCES: "permission denied", errno.EROFS: "read-only", errno.ENOSPC: "full"}[
        err
    ] in skip.reason
    assert (
        Path(os.fsdecode(victim)).read_bytes()
        == before[os.path.relpath(os.fsdecode(victim), root)][1]
    )
    # Nothing of it was left in the quarantine: no second name, no partial copy.
    assert len(files_under(quarantine)) == 5
    assert statuses(store)[os.path.relpath(os.fsdecode(victim), root)] == PRESENT


def test_a_new_run_waits_for_an_interrupted_one(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    _, store = indexed
    plan = plan_actions(store, build_report(store), quarantine=tmp_path / "q")
    first = apply(store, plan)
    with store.transaction() as session:  # as if run 1 had been killed with work left
        from dedupdb.store.schema import Action, ApplyRun

        session.get(ApplyRun, first.run_id).status = "interrupted"  # type: ignore[union-attr]
        row = session.execute(select(Action).where(Action.run_id == first.run_id)).scalars()
        next(iter(row)).state = "planned"
    with pytest.raises(ActionError, match="interrupted"):
        apply(store, plan_actions(store, build_report(store), quarantine=tmp_path / "q"))
    again = resume(store)
    assert len(again.done) == 6
    assert history(store)[0].status == "done"


# ----------------------------------------------------------------------------- the index knows


def test_index_after_apply_neither_re_adds_nor_reports_them(tmp_path: Path, store: Store) -> None:
    root = library(tmp_path, families=2, copies=1)
    index(store, root, ONE)
    quarantine = root / "dedupdb-quarantine"  # inside the indexed folder
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    assert len(result.done) == 2
    summary = index(store, root, ONE)
    assert (summary.new, summary.missing, summary.moved) == (0, 0, 0)
    states = statuses(store)
    assert states["copies0/p0.jpg"] == QUARANTINED
    assert len(states) == 4
    assert build_report(store)["clusters"] == []
    undo(store, result.run_id)
    assert set(statuses(store).values()) == {PRESENT}
    assert len(build_report(store)["clusters"]) == 2


@pytest.mark.parametrize("action", [HARDLINK, SYMLINK])
def test_index_after_linking_keeps_keepers_present(
    tmp_path: Path, store: Store, action: str
) -> None:
    root = library(tmp_path, families=2, copies=2)
    index(store, root, ONE)
    apply(store, plan_actions(store, build_report(store), action, quarantine=tmp_path / "q"))
    summary = index(store, root, ONE)
    assert (summary.new, summary.missing, summary.changed) == (0, 0, 0)
    states = statuses(store)
    assert all(states[f"originals/p{f}.jpg"] == PRESENT for f in range(2))
    assert sum(s == "linked" for s in states.values()) == 4
    assert build_report(store)["clusters"] == []


def test_non_utf8_names_round_trip(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "photos"
    original = save_photo(root / "originals" / "keep.jpg", 11, quality=90)
    odd = os.path.join(os.fsencode(root), b"caf\xe9.jpg")
    shutil.copy2(original, os.fsdecode(odd))
    index(store, root, ONE)
    report = build_report(store)
    assert any(m["path_bytes_b64"] for m in report["clusters"][0]["members"])
    before = snapshot(root)
    result = apply(store, plan_actions(store, report, quarantine=tmp_path / "q"))
    assert len(result.done) == 1 and not os.path.exists(odd)
    undo(store, result.run_id)
    assert snapshot(root) == before


# ----------------------------------------------------------------------------- CLI


def write_report(store: Store, path: Path) -> Path:
    path.write_text(json.dumps(build_report(store)), encoding="utf-8")
    return path


def test_cli_dry_run_then_yes_then_undo(indexed: tuple[Path, Store], tmp_path: Path) -> None:
    root, store = indexed
    if store.sqlite_path is None:
        pytest.skip("the default quarantine folder lies next to a SQLite database")
    report = write_report(store, tmp_path / "report.json")
    runner = CliRunner()
    db = ["--db", store.url]
    before = snapshot(root)
    dry = runner.invoke(cli, ["apply", str(report), *db])
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was changed" in dry.output
    assert "move " + str(root / "copies0" / "p0.jpg") in dry.output
    assert snapshot(root) == before
    plan = runner.invoke(cli, ["apply", str(report), "--json", *db])
    data = json.loads(plan.output)
    assert data["dry_run"] is True and data["files"] == 6 and data["bytes"] > 0
    assert snapshot(root) == before
    default_quarantine = tmp_path / "quarantine"  # next to the database
    done = runner.invoke(cli, ["apply", str(report), "--yes", *db])
    assert done.exit_code == 0, done.output
    assert "Undo with: dedupdb undo 1" in done.output
    assert len(files_under(default_quarantine)) == 6
    listed = runner.invoke(cli, ["history", *db])
    assert "move" in listed.output and "6 done" in listed.output
    back = runner.invoke(cli, ["undo", *db])
    assert back.exit_code == 0 and "restored 6 files" in back.output
    assert snapshot(root) == before


def test_cli_delete_needs_yes_and_warns(indexed: tuple[Path, Store], tmp_path: Path) -> None:
    root, store = indexed
    report = write_report(store, tmp_path / "report.json")
    db = ["--db", store.url]
    result = CliRunner().invoke(cli, ["apply", str(report), "--delete", *db])
    assert result.exit_code == 0
    assert "Delete cannot be undone" in result.output
    assert len(files_under(root)) == 9


def test_cli_exit_code_1_when_something_is_skipped(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    report = write_report(store, tmp_path / "report.json")
    (root / "copies0" / "p0.jpg").write_bytes(b"changed")
    db = ["--db", store.url]
    # An explicit quarantine: a server database has no default one (next to the SQLite file).
    quarantine = ["--move-to", str(tmp_path / "quarantine")]
    result = CliRunner().invoke(cli, ["apply", str(report), "--yes", *quarantine, *db])
    assert result.exit_code == 1
    assert "changed since it was indexed" in result.output


def test_cli_bad_report_is_one_clear_line(tmp_path: Path, store: Store) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    db = ["--db", store.url]
    result = CliRunner().invoke(cli, ["apply", str(bad), *db])
    assert result.exit_code == 1 and "is not valid JSON" in result.output
    bad.write_text('{"schema": "other"}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["apply", str(bad), *db])
    assert result.exit_code == 1 and "not a dedupdb report" in result.output
    result = CliRunner().invoke(cli, ["undo", *db])
    assert result.exit_code == 1 and "no apply run to undo" in result.output


def test_fileops_move_refuses_to_overwrite(tmp_path: Path) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"a")
    dst.write_bytes(b"b")
    with pytest.raises(FileExistsError):
        fileops.move(os.fsencode(src), os.fsencode(dst), fileops.hash_file(os.fsencode(src)))
    assert src.read_bytes() == b"a" and dst.read_bytes() == b"b"


def test_hard_links_across_filesystems_are_refused_in_the_plan(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    _, store = indexed
    with store.transaction() as session:  # as if copies1/ were another disk
        for image in session.execute(select(Image)).scalars():
            if image.relpath.startswith(b"copies1/"):
                image.device += 1
    plan = plan_actions(store, build_report(store), HARDLINK, quarantine=tmp_path / "q")
    assert len(plan.actions) == 3
    assert len(plan.refused) == 3
    assert all("hard links cannot cross filesystems" in r.reason for r in plan.refused)


def test_hash_file_is_the_index_content_hash(tmp_path: Path) -> None:
    from dedupdb.hashes import content_hash

    path = tmp_path / "f"
    data = os.urandom(3 * fileops.CHUNK + 17)
    path.write_bytes(data)
    assert fileops.hash_file(os.fsencode(path)) == content_hash(data)


def test_cli_history_and_undo_json(indexed: tuple[Path, Store], tmp_path: Path) -> None:
    _, store = indexed
    report = write_report(store, tmp_path / "report.json")
    db = ["--db", store.url]
    runner = CliRunner()
    quarantine = ["--move-to", str(tmp_path / "quarantine")]  # a server database has no default
    done = runner.invoke(cli, ["apply", str(report), "--yes", "--json", *quarantine, *db])
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.output)["done"]) == 6
    runs = json.loads(runner.invoke(cli, ["history", "--json", *db]).output)
    assert runs[0]["action"] == "move" and runs[0]["done"] == 6 and runs[0]["bytes"] > 0
    back = json.loads(runner.invoke(cli, ["undo", "1", "--json", *db]).output)
    assert len(back["restored"]) == 6 and back["skipped"] == []
    again = runner.invoke(cli, ["undo", "1", *db])
    assert again.exit_code == 1 and "already undone" in again.output


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_apply_then_undo_is_the_identity(
    indexed: tuple[Path, Store], tmp_path: Path, data: st.DataObject
) -> None:
    """Any keepers, any clusters left out, any action, a file edited behind the index's
    back: apply then undo gives back exactly the tree that was there before apply."""
    root, store = indexed
    report = build_report(store)
    for cluster in report["clusters"]:
        cluster["keeper"] = data.draw(st.sampled_from([m["image_id"] for m in cluster["members"]]))
    kept = data.draw(st.lists(st.sampled_from(report["clusters"]), unique_by=lambda c: c["id"]))
    report["clusters"] = kept
    action = data.draw(st.sampled_from([MOVE, HARDLINK, SYMLINK]))
    edited = data.draw(st.sampled_from([None, *sorted(files_under(root))]))
    saved = None
    if edited is not None:
        path = root / edited
        saved = (path.read_bytes(), path.stat())
        path.write_bytes(saved[0] + b"edit")
    before = snapshot(root)
    result = apply(store, plan_actions(store, report, action, quarantine=tmp_path / "q"))
    expected = 0
    for cluster in kept:
        paths = {m["image_id"]: os.path.relpath(m["path"], root) for m in cluster["members"]}
        if paths[cluster["keeper"]] != edited:  # an edited keeper protects its cluster
            expected += sum(p != edited for i, p in paths.items() if i != cluster["keeper"])
    assert len(result.done) == expected
    assert len(result.skipped) == 2 * len(kept) - expected
    undo(store, result.run_id)
    assert snapshot(root) == before
    assert files_under(tmp_path / "q") == []
    if saved is not None:  # put the edited file back as indexed, for the next example
        path = root / edited  # type: ignore[operator]
        path.write_bytes(saved[0])
        os.utime(path, ns=(saved[1].st_atime_ns, saved[1].st_mtime_ns))
    assert set(statuses(store).values()) == {PRESENT}


def test_end_to_end_with_the_real_report(tmp_path: Path) -> None:
    """`dedupdb report --json` -> `apply` -> the next report is empty -> `undo` -> back."""
    root = library(tmp_path, families=2, copies=1)
    db = ["--db", str(tmp_path / "e2e.sqlite")]
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(root), "--workers", "1", "-q", *db]).exit_code == 0
    before = snapshot(root)
    out = tmp_path / "report.json"
    assert runner.invoke(cli, ["report", "--json", str(out), "-q", *db]).exit_code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert len(report["clusters"]) == 2
    done = runner.invoke(cli, ["apply", str(out), "--yes", "--move-to", str(tmp_path / "q"), *db])
    assert done.exit_code == 0, done.output
    assert len(files_under(root)) == 2
    again = tmp_path / "again.json"
    assert runner.invoke(cli, ["report", "--json", str(again), "-q", *db]).exit_code == 0
    assert json.loads(again.read_text(encoding="utf-8"))["clusters"] == []
    assert runner.invoke(cli, ["undo", *db]).exit_code == 0
    assert snapshot(root) == before
    # Without a report file: the last report made (after the undo, a new one).
    assert runner.invoke(cli, ["report", "-q", *db]).exit_code == 0
    live = runner.invoke(cli, ["apply", "--json", "--move-to", str(tmp_path / "q"), *db])
    plan = json.loads(live.output)
    assert plan["source"] == "last report" and plan["files"] == 2
    assert snapshot(root) == before


def test_round_trip_on_postgresql(postgresql_url: str, tmp_path: Path) -> None:
    """The journal and the status changes work the same on a server database."""
    store = open_store(postgresql_url)
    try:
        root = library(tmp_path, families=2, copies=1)
        index(store, root, ONE)
        before = snapshot(root)
        with pytest.raises(ActionError, match="--move-to"):
            plan_actions(store, build_report(store))
        result = apply(store, plan_actions(store, build_report(store), quarantine=tmp_path / "q"))
        assert len(result.done) == 2 and len(files_under(root)) == 2
        assert sorted(statuses(store).values()).count(QUARANTINED) == 2
        assert history(store)[0].done == 2
        undo(store)
        assert snapshot(root) == before
        assert set(statuses(store).values()) == {PRESENT}
    finally:
        store.close()


def test_undo_after_the_quarantine_was_emptied_says_so(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    quarantine = tmp_path / "q"
    result = apply(store, plan_actions(store, build_report(store), quarantine=quarantine))
    shutil.rmtree(quarantine / "photos" / "copies1")
    back = undo(store, result.run_id)
    assert len(back.restored) == 3 and len(back.skipped) == 3
    assert all("quarantine was emptied" in s.reason for s in back.skipped)
    assert files_under(root / "copies0") == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert history(store)[0].status == "partly-undone"


def test_cli_resume_takes_no_new_plan(tmp_path: Path, store: Store) -> None:
    result = CliRunner().invoke(cli, ["apply", "x.json", "--resume", "--db", store.url])
    assert result.exit_code == 2 and "--resume finishes the interrupted run" in result.output
    result = CliRunner().invoke(cli, ["apply", "--resume", "--db", store.url])
    assert result.exit_code == 1 and "no interrupted apply run" in result.output


def test_one_apply_at_a_time(indexed: tuple[Path, Store], tmp_path: Path) -> None:
    root, store = indexed
    from datetime import datetime

    from dedupdb.store.schema import ApplyRun

    with store.transaction() as session:  # a live run: this very process holds it
        session.add(
            ApplyRun(action="move", status="running", source="x", host=socket.gethostname(),
                     pid=os.getpid(), started_at=datetime.now())
        )  # fmt: skip
    before = snapshot(root)
    with pytest.raises(ActionError, match="another dedupdb apply"):
        apply(store, plan_actions(store, build_report(store), quarantine=tmp_path / "q"))
    with pytest.raises(ActionError, match="another dedupdb apply"):
        undo(store)
    assert snapshot(root) == before
    assert [r.status for r in history(store)] == ["running"]


def test_quarantine_that_cannot_be_created_is_one_clear_error(
    indexed: tuple[Path, Store], tmp_path: Path
) -> None:
    root, store = indexed
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(ActionError, match="cannot create the quarantine folder"):
        apply(store, plan_actions(store, build_report(store), quarantine=blocker / "q"))
    assert history(store) == []
    assert len(files_under(root)) == 9


def test_ctrl_c_leaves_a_resumable_run(
    indexed: tuple[Path, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, store = indexed
    before = snapshot(root)
    real_move, calls = fileops.move, {"n": 0}

    def interrupted(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_move(*args)

    monkeypatch.setattr(fileops, "move", interrupted)
    with pytest.raises(KeyboardInterrupt):
        apply(store, plan_actions(store, build_report(store), quarantine=tmp_path / "q"))
    monkeypatch.setattr(fileops, "move", real_move)
    assert history(store)[0].status == "interrupted"
    assert history(store)[0].done == 2
    assert len(resume(store).done) == 6
    undo(store)
    assert snapshot(root) == before
