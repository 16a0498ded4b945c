"""The hot path's shortcuts give the values of the slow, obvious computations they replace.

Each optimisation in the per-image work (benchmarks/bench_index.py) is checked here against a
straightforward reference: a shortcut that changed a stored value would silently invalidate
every user's index.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import blake3
import imagehash
import numpy as np
import pytest
import scipy.fft
from conftest import photo, save_photo
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from sqlalchemy import select, update

from dedupdb import hashes
from dedupdb.fingerprint import FingerprintSettings, Indexed, KnownContent, Task, compute, files
from dedupdb.indexing import IndexOptions, index
from dedupdb.store import Store
from dedupdb.store.schema import Image as ImageRow
from dedupdb.walk import walk

# The module, not the function dedupdb exports under the same name.


def _squares() -> list[np.ndarray]:
    """Gray squares of photo-like pictures, as the indexer makes them."""
    return [hashes.gray_square(np.asarray(photo(seed, (200, 150)))) for seed in range(6)]


def _reference_phash(square: np.ndarray, hash_size: int) -> list[int]:
    """pHash of each transformed square, one imagehash-style DCT at a time."""
    side = hash_size * 4
    pixels = np.asarray(
        Image.fromarray(square).resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64
    )
    out = []
    for transform in hashes.DIHEDRAL:
        coefficients = scipy.fft.dct(scipy.fft.dct(transform(pixels), axis=0), axis=1)
        low = coefficients[:hash_size, :hash_size]
        out.append(hashes._bits_to_int(low > np.median(low)))
    return out


@pytest.mark.parametrize("hash_size", [8, 16])
def test_batched_phash_equals_one_dct_per_variant(hash_size: int) -> None:
    for square in _squares():
        assert hashes.phash_variants(square, hash_size) == _reference_phash(square, hash_size)


@pytest.mark.parametrize("hash_size", [8, 16])
def test_phash_identity_is_imagehash_phash(hash_size: int) -> None:
    for square in _squares():
        expected = imagehash.phash(Image.fromarray(square), hash_size=hash_size)
        ours = hashes.phash_variants(square, hash_size)[0]
        assert ours == int(str(expected), 16)


def _distinct_block_sums(square: np.ndarray, hash_size: int) -> bool:
    block = square.shape[0] // hash_size
    sums = square.reshape(hash_size, block, hash_size, block).sum(axis=(1, 3))
    ordered = np.sort(sums.ravel())
    return bool(np.all(np.diff(ordered) > 0))


@settings(max_examples=40, deadline=None)
@given(
    square=arrays(np.uint8, (hashes.GRAY_SIZE, hashes.GRAY_SIZE)),
    hash_size=st.sampled_from([8, 16]),
)
def test_integer_whash_equals_imagehash_whash_without_ties(
    square: np.ndarray, hash_size: int
) -> None:
    # imagehash computes the same comparison through a floating-point wavelet round trip,
    # which can break exact ties either way; without ties the two must agree bit for bit.
    if not _distinct_block_sums(square, hash_size):
        return
    expected = imagehash.whash(Image.fromarray(square), hash_size=hash_size)
    assert hashes.whash_variants(square, hash_size)[0] == int(str(expected), 16)


def test_whash_on_photos_equals_imagehash() -> None:
    agreed = 0
    for square in _squares():
        if _distinct_block_sums(square, 8):
            expected = imagehash.whash(Image.fromarray(square))
            assert hashes.whash_variants(square)[0] == int(str(expected), 16)
            agreed += 1
    assert agreed >= 3  # the check above must not be vacuous


def test_whash_ties_are_deterministic_and_symmetric() -> None:
    # A picture with large flat areas: many block sums tie with the median.
    square = np.zeros((64, 64), dtype=np.uint8)
    square[:, 32:] = 200
    square[40:, :10] = 90
    values = hashes.whash_variants(square)
    for k, transform in enumerate(hashes.DIHEDRAL):
        transformed = np.ascontiguousarray(transform(square))
        assert hashes.whash_variants(transformed)[0] == values[k]


def test_content_hash_is_blake3() -> None:
    data = b"\xff\xd8 not really a jpeg" * 1000
    assert hashes.content_hash(data) == blake3.blake3(data).digest()
    assert hashes.HASH_VERSION == 4  # 1 hashed file bytes with BLAKE2b, 2 with SHA-256


def test_rehash_recomputes_unchanged_files(store: Store, tmp_path: Path) -> None:
    # A new HASH_VERSION (this module's content hash and wHash changes) is only picked up by
    # `index --rehash`, so --rehash must reprocess files whose size and mtime did not change.
    root = tmp_path / "photos"
    for seed in range(3):
        save_photo(root / f"p{seed}.jpg", seed)
    index(store, root, IndexOptions(workers=1))
    with store.transaction() as session:  # what an older hash version left: stale values
        session.execute(update(ImageRow).values(phash=bytes(64), crop_phash=None))
    again = index(store, root, IndexOptions(workers=1, rehash=True))
    assert again.unchanged == 0
    assert again.changed == 3
    with store.session() as session:  # recomputed, not copied from the rows of the same bytes
        rows = session.execute(select(ImageRow.phash, ImageRow.crop_phash)).all()
    assert len(rows) == 3
    assert all(phash != bytes(64) and crop is not None for phash, crop in rows)


# ----------------------------------------------------------------------------- streamed read


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=5000),
    moves=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 3000)), min_size=0, max_size=12),
    block=st.sampled_from([1, 7, 64, 4096]),
)
def test_hashing_reader_digest_is_the_content_hash_whatever_the_reads(
    data: bytes, moves: list[tuple[int, int]], block: int
) -> None:
    # Pillow seeks back and forth while parsing headers; the digest must not care.
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        with open(handle.fileno(), "rb", buffering=0, closefd=False) as raw:
            reader = hashes.HashingReader(raw, block=block)
            buffered = io.BufferedReader(reader, 16)
            for offset, count in moves:
                buffered.seek(offset)
                assert buffered.read(count) == data[offset : offset + count]
            assert reader.digest() == hashes.content_hash(data)


def test_streamed_and_whole_file_paths_store_the_same_columns(tmp_path: Path) -> None:
    """The streamed path (decode through a HashingReader) and the hash-first path (taken when
    a file's size matches stored content) give identical rows."""
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 1, (640, 480), quality=90)
    save_photo(root / "b.png", 2, (300, 200))
    save_photo(root / "c.webp", 3, (500, 400))
    entries = {e.relpath: e for e in walk(os.fsencode(root))}
    settings = FingerprintSettings(8, 0)
    task = {p: Task(os.fsencode(root), e, settings) for p, e in entries.items()}

    streamed = {p: files.process_file(t) for p, t in task.items()}  # nothing stored
    stored = frozenset({b"\0" * 8})  # a stored file of the same size: hashed first
    whole = {p: files.process_file(replace(t, known=stored)) for p, t in task.items()}
    for path in entries:
        a, b = streamed[path], whole[path]
        assert isinstance(a, Indexed) and isinstance(b, Indexed)
        assert a.fingerprint == b.fingerprint, path
        data = (root / os.fsdecode(path)).read_bytes()
        assert a.fingerprint.content_hash == hashes.content_hash(data)


def test_a_file_of_a_known_size_is_hashed_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "photos"
    save_photo(root / "a.jpg", 1)
    entry = next(walk(os.fsencode(root)))
    digest = hashes.content_hash((root / "a.jpg").read_bytes())

    def refuse(data: object) -> object:
        raise AssertionError("known bytes were decoded")

    monkeypatch.setattr(compute, "decode", refuse)
    known = frozenset({digest[:8]})
    result = files.process_file(Task(os.fsencode(root), entry, FingerprintSettings(8, 0), known))
    assert result == KnownContent(result.entry, digest)
