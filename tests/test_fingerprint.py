"""The fingerprint stage as a pure function: the same bytes give the same fingerprint however
they arrive (bytes, a file, a path, a worker's task), bad bytes give a reason instead of an
exception, the records cross a pipe intact, and nothing of the database is loaded."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import photo, save_photo

from dedupdb import hashes
from dedupdb.fingerprint import (
    IMAGE_FIELDS,
    Fingerprint,
    FingerprintSettings,
    Indexed,
    Rejected,
    Task,
    fingerprint,
    fingerprint_path,
    process_file,
)
from dedupdb.walk import walk


def jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    buffer = io.BytesIO()
    photo(seed, size).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_bytes_a_file_and_a_path_give_one_fingerprint(tmp_path: Path) -> None:
    data = jpeg(1)
    (tmp_path / "a.jpg").write_bytes(data)
    from_bytes = fingerprint(data)
    assert isinstance(from_bytes, Fingerprint)
    with open(tmp_path / "a.jpg", "rb", buffering=0) as handle:
        assert fingerprint(handle) == from_bytes
    assert fingerprint(io.BytesIO(data)) == from_bytes
    assert fingerprint_path(tmp_path / "a.jpg") == from_bytes
    assert fingerprint_path(os.fsencode(tmp_path / "a.jpg")) == from_bytes
    assert from_bytes.content_hash == hashes.content_hash(data)
    assert (from_bytes.width, from_bytes.height, from_bytes.format) == (320, 240, "JPEG")
    assert from_bytes.local_features is None


def test_a_workers_task_stores_the_pure_fingerprint(tmp_path: Path) -> None:
    save_photo(tmp_path / "r" / "a.png", 2, (300, 200))
    entry = next(walk(os.fsencode(tmp_path / "r")))
    settings = FingerprintSettings(hash_size=16, min_resolution=50)
    result = process_file(Task(os.fsencode(tmp_path / "r"), entry, settings))
    assert isinstance(result, Indexed)
    assert result.fingerprint == fingerprint((tmp_path / "r" / "a.png").read_bytes(), settings)
    assert result.fingerprint.hash_size == 16
    assert len(result.fingerprint.phash) == 8 * 32  # 8 variants of 256 bits


def test_the_hash_size_and_given_content_hash_are_what_the_settings_say() -> None:
    data = jpeg(3)
    small, large = fingerprint(data), fingerprint(data, FingerprintSettings(hash_size=16))
    assert isinstance(small, Fingerprint) and isinstance(large, Fingerprint)
    assert (len(small.phash), len(large.phash)) == (8 * 8, 8 * 32)
    assert small.content_hash == large.content_hash
    given = fingerprint(data, content_hash=b"x" * 32)
    assert isinstance(given, Fingerprint) and given.content_hash == b"x" * 32
    assert given._replace(content_hash=small.content_hash) == small


def test_bad_and_small_pictures_are_rejected_with_a_reason() -> None:
    assert fingerprint(b"") == Rejected(fingerprint(b"").reason)  # type: ignore[union-attr]
    not_an_image = fingerprint(b"just some text, not a picture")
    assert isinstance(not_an_image, Rejected) and not not_an_image.skipped
    assert "not an image" in not_an_image.reason
    truncated = fingerprint(jpeg(4)[:300])
    assert isinstance(truncated, Rejected) and not truncated.skipped
    tiny = fingerprint(jpeg(5, (60, 40)), FingerprintSettings(min_resolution=100))
    assert tiny == Rejected("smaller than --min-resolution 100 px (60x40)", skipped=True)
    assert isinstance(
        fingerprint(jpeg(5, (60, 40)), FingerprintSettings(min_resolution=0)), Fingerprint
    )
    # The default floor: a thumbnail of 60x40 is fingerprinted, a 20x20 spacer is not.
    assert isinstance(fingerprint(jpeg(5, (60, 40))), Fingerprint)
    spacer = fingerprint(jpeg(5, (20, 20)))
    assert spacer == Rejected("smaller than --min-resolution 32 px (20x20)", skipped=True)


def test_records_cross_a_pipe_intact() -> None:
    found = fingerprint(jpeg(6))
    assert isinstance(found, Fingerprint)
    assert pickle.loads(pickle.dumps(found)) == found
    settings = FingerprintSettings(16, 0, features=True)
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert Fingerprint._fields[:-1] == IMAGE_FIELDS and "local_features" not in IMAGE_FIELDS


def test_local_features_come_with_the_fingerprint_when_asked() -> None:
    pytest.importorskip("cv2")
    from dedupdb import features
    from dedupdb.decode import DecodedImage, decode

    data = jpeg(7, (640, 480))
    found = fingerprint(data, FingerprintSettings(features=True))
    decoded = decode(data)
    assert isinstance(found, Fingerprint) and isinstance(decoded, DecodedImage)
    assert found.local_features == features.pack(features.extract(decoded.content.luma))
    assert found.local_features.params == features.PARAMS
    assert found._replace(local_features=None) == fingerprint(data)


PROBE = """
import sys
import dedupdb.fingerprint
light = not {"numpy", "PIL", "sqlalchemy"} & set(sys.modules)
from dedupdb.fingerprint import fingerprint, process_file
print(light, "sqlalchemy" in sys.modules, "numpy" in sys.modules)
"""


def test_the_stage_loads_no_database_code_and_its_records_nothing_heavy() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "True"]
