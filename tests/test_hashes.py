"""Hashes are persisted: their values are pinned here (imagehash's ``test_hash_is_constant``), and
their invariants (dihedral variants, packing) are checked with hypothesis."""

from __future__ import annotations

import subprocess
import sys

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dedupdb import hashes
from dedupdb.hashes import DIHEDRAL, HASH_VERSION, HashParams


def golden_rgb() -> np.ndarray:
    """A fixed 160x120 picture built from closed-form functions (no randomness, no files)."""
    y, x = np.mgrid[0:120, 0:160].astype(np.float64)
    red = 128 + 100 * np.sin(x / 13.0) * np.cos(y / 17.0)
    green = 255 * x / 159
    blue = 255.0 * ((x - 80) ** 2 + (y - 60) ** 2 < 40**2)
    return np.clip(np.stack([red, green, blue], -1) + 0.5, 0, 255).astype(np.uint8)


# Changing any of these invalidates every user's stored hashes: bump HASH_VERSION (and say so in
# a migration) instead of editing the numbers.
GOLDEN = {
    8: {
        "phash": 0x8A2F70D227D28FD8,
        "dhash": 0x9DFFFBE7E7FFF9B9,
        "ahash": 0x0F0F1F3F3F1F0F0F,
        "whash": 0x070F1F171F0F0F07,
    },
    16: {
        "phash": 0x8A0A2DFD70A0D28A27D6D2288F79D8A78D65708F8D867259259A727D6759D966,
        "dhash": 0xC7E3C7E3E7F3FF9FFFCF7E6F7E3E7E3E7E3E7E3FFFE7FFEFEFCFC7C3C3E3C7E3,
        "ahash": 0xFF00FF00FF03FF07FF07FF07FF07FF07FF07FF07FF01FF01FF00FF00FF00FF,
        "whash": 0x7F007F003F00FF01FF03BF079F079F03BF03FF00FF00FF00FF007F007F007F,
    },
}


@pytest.mark.parametrize("hash_size", [8, 16])
def test_hash_is_constant(hash_size: int) -> None:
    assert HASH_VERSION == 4
    gray = hashes.gray_square(golden_rgb())
    values = hashes.all_variants(gray, HashParams(hash_size))
    assert {name: v[0] for name, v in values.items()} == GOLDEN[hash_size]
    assert all(v < 1 << (hash_size * hash_size) for vs in values.values() for v in vs)


def test_content_hash_is_blake3() -> None:  # since HASH_VERSION 3 (2: SHA-256, 1: BLAKE2b)
    assert hashes.content_hash(b"dedupdb").hex() == (
        "de733b41ffa581fb0f4567f6c253228618540206206d4b100887cf707828a677"
    )
    assert hashes.content_hash(b"a") != hashes.content_hash(b"b")


@pytest.mark.parametrize("hash_size", [8, 16])
def test_phash_and_whash_identity_equal_imagehash(hash_size: int) -> None:
    gray = hashes.gray_square(golden_rgb())
    square = Image.fromarray(gray)
    ours = hashes.all_variants(gray, HashParams(hash_size))
    assert ours["phash"][0] == int(str(imagehash.phash(square, hash_size=hash_size)), 16)
    assert ours["whash"][0] == int(str(imagehash.whash(square, hash_size=hash_size)), 16)
    assert ours["ahash"][0] == int(str(imagehash.average_hash(square, hash_size=hash_size)), 16)


def textured_square(seed: int, grid: int) -> np.ndarray:
    """A 64x64 gray square with structure at a chosen scale, plus a little noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (grid, grid), dtype=np.uint8))
    arr = np.asarray(small.resize((64, 64), Image.Resampling.BICUBIC), dtype=np.float64)
    arr += rng.normal(0, 4, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


# How far the hash of a transformed picture may be from the matching variant of the original.
# Measured over 900 pictures x 8 symmetries (see the report of the test suite's author): the
# variants are computed on the already-reduced grid, and Pillow's resize rounds to 8 bits
# between its horizontal and vertical passes, so a rotated picture's reduction differs by
# rounding and a few near-median bits flip. pHash at size 16 needs no reduction: exact.
ROTATION_BOUND = {
    8: {"phash": 6, "dhash": 2, "ahash": 2, "whash": 2},
    16: {"phash": 0, "dhash": 11, "ahash": 3, "whash": 2},
}


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    grid=st.sampled_from([4, 8, 16]),
    hash_size=st.sampled_from([8, 16]),
)
def test_transformed_picture_hashes_to_the_matching_variant(
    seed: int, grid: int, hash_size: int
) -> None:
    gray = textured_square(seed, grid)
    params = HashParams(hash_size)
    original = hashes.all_variants(gray, params)
    for k, transform in enumerate(DIHEDRAL):
        copy = hashes.all_variants(np.ascontiguousarray(transform(gray)), params)
        for name, bound in ROTATION_BOUND[hash_size].items():
            distance = hashes.hamming(copy[name][0], original[name][k])
            assert distance <= bound, (name, hashes.DIHEDRAL_NAMES[k], distance)


def test_rotated_photo_matches_its_variant_not_the_others() -> None:
    """Through the whole path (Pillow transpose of the picture, then the gray square), and a
    wrong variant is far: a swapped rotation would be caught."""
    transposes = [
        None,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
    ]
    picture = Image.fromarray(golden_rgb())
    params = HashParams(16)
    original = hashes.all_variants(hashes.gray_square(golden_rgb()), params)["phash"]
    for k, op in enumerate(transposes):
        copy = picture if op is None else picture.transpose(op)
        value = hashes.all_variants(hashes.gray_square(np.asarray(copy)), params)["phash"][0]
        distances = [hashes.hamming(value, v) for v in original]
        # Measured: at most 6 of 256 bits (the 160x120 -> 64x64 reduction rounds differently
        # once rotated); every other variant is over 100 bits away.
        assert distances[k] <= 8, (hashes.DIHEDRAL_NAMES[k], distances)
        assert min(d for i, d in enumerate(distances) if i != k) > 64, distances


@given(
    hash_size=st.sampled_from([8, 16]),
    data=st.data(),
)
def test_pack_unpack_round_trip(hash_size: int, data: st.DataObject) -> None:
    params = HashParams(hash_size)
    values = data.draw(st.lists(st.integers(0, (1 << params.bits) - 1), min_size=8, max_size=8))
    blob = hashes.pack_variants(values, params)
    assert len(blob) == 8 * params.nbytes
    assert hashes.unpack_variants(blob, params) == values


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_hamming_is_a_metric(a: int, b: int) -> None:
    assert hashes.hamming(a, a) == 0
    assert hashes.hamming(a, b) == hashes.hamming(b, a) == bin(a ^ b).count("1")


def test_uniform_picture_has_degenerate_hashes() -> None:
    gray = np.full((64, 64), 128, dtype=np.uint8)
    values = hashes.all_variants(gray, HashParams(8))
    assert values["ahash"][0] == 0
    assert values["dhash"][0] == 0


def test_hash_params_validate() -> None:
    assert HashParams().bits == 64
    assert HashParams(16).nbytes == 32
    with pytest.raises(ValueError, match="8"):
        HashParams(12)


def dct_inputs() -> list[np.ndarray]:
    """What pHash transforms (8 dihedral squares of 32 or 64 px) and its first pass's output,
    from random noise, a real-looking picture and degenerate ones (flat, a single edge)."""
    rng = np.random.default_rng(7)
    picture = hashes.gray_square(golden_rgb()).astype(np.float64)
    stacks = [
        rng.random((8, 32, 32)) * 255,
        rng.random((8, 64, 64)) * 255,
        np.stack([t(picture[:32, :32]) for t in DIHEDRAL]).astype(np.float64),
        np.full((8, 32, 32), 117.0),
        np.tile(np.repeat([0.0, 255.0], 16), (8, 32, 1)),
    ]
    import scipy.fft

    return stacks + [scipy.fft.dct(s, axis=1) for s in stacks]


@pytest.mark.parametrize("axis", [1, 2])
def test_the_dct_is_scipys_bit_for_bit(axis: int) -> None:
    """``scipy_dct`` runs SciPy's own pocketfft binding without importing scipy.fft (0.4 s);
    both it and its fallback must give exactly what ``scipy.fft.dct`` gives."""
    import scipy.fft

    try:
        hashes._pocketfft_binding()
    except (ImportError, OSError, StopIteration) as err:
        pytest.skip(f"this SciPy's layout has no pocketfft binding to load directly: {err}")
    used = hashes.scipy_dct()
    assert used is not hashes._scipy_fft_dct  # the quick path is the one in use here
    for x in dct_inputs():
        expected = scipy.fft.dct(x, axis=axis)
        assert used(x, axis).tobytes() == expected.tobytes()
        assert hashes._scipy_fft_dct(x, axis).tobytes() == expected.tobytes()


def test_without_the_binding_scipy_fft_gives_the_same_hashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gray = hashes.gray_square(golden_rgb())
    quick = {size: hashes.phash_variants(gray, size) for size in (8, 16)}

    def missing() -> None:
        raise ImportError("no binding")

    hashes.scipy_dct.cache_clear()
    monkeypatch.setattr(hashes, "_pocketfft_binding", missing)
    try:
        assert hashes.scipy_dct() is hashes._scipy_fft_dct
        assert {size: hashes.phash_variants(gray, size) for size in (8, 16)} == quick
    finally:
        hashes.scipy_dct.cache_clear()
    assert quick[8][0] == GOLDEN[8]["phash"]


def test_hashing_does_not_import_scipy_fft() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from dedupdb import hashes\n"
        "gray = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)\n"
        "hashes.all_variants(gray, hashes.HashParams())\n"
        "print('scipy.fft' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
