"""Pure hash functions: the content hash of a file's bytes, and perceptual hashes of a picture.

Every perceptual hash starts from one normalised 64x64 grayscale square (``gray_square``) and
is computed for the 8 symmetries of the square (the dihedral group: rotations by 0/90/180/270
degrees, each optionally mirrored). Matching a picture against a rotated or mirrored copy is
then a plain Hamming-distance look-up of the copy's hash among the original's 8 variants.

The algorithms are those of imagehash (Johannes Buchner), after Neal Krawetz's "Looks like
it" and "Kind of like that" (hackerfactor.com): pHash is the sign of the low-frequency DCT
coefficients against their median, aHash the pixels against their mean, dHash the sign of
horizontal gradients, wHash the Haar low band against its median. pHash gives the same values
as imagehash's on the same square (tests pin that); dHash uses a square grid of
``(n+1) x (n+1)`` so that its rotations are defined, and so differs from imagehash's; wHash
computes imagehash's Haar low band exactly, in integers (see ``whash_variants``).

This runs once per image in the indexing hot path, so each function computes its 8 variants in
one vectorised step (one batched DCT for pHash, not sixteen) and nothing is converted twice.

Hashes are persisted: a change to any value here invalidates every user's index. Such a change
must bump ``HASH_VERSION`` (tests pin golden values to catch an accidental one).

Versions: 1 (BLAKE2b content hash, wHash through pywt); 2 (SHA-256 content hash, wHash in
exact integer arithmetic); 3 (BLAKE3-256 content hash: 2.5x faster than SHA-256 with SHA-NI,
5x faster than BLAKE2b, on the benchmark machine); 4 (the picture is hashed inside any added
uniform borders, frames, mats or letterbox bars: ``decode.content_box``).
"""

from __future__ import annotations

import functools
import io
import sys
from collections.abc import Callable
from typing import Any

import blake3
import numpy as np
from PIL import Image

# Re-exported: the parameters live in a module without numpy, for the indexing process.
from .hashparams import HASH_VERSION as HASH_VERSION
from .hashparams import HashParams as HashParams

ALGORITHMS = ("phash", "dhash", "ahash", "whash")
GRAY_SIZE = 64
VARIANTS = 8

# The 8 symmetries of a square, as array operations. Index 0 is the identity; the order is
# part of the stored format.
DIHEDRAL: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    lambda a: a[:, ::-1],
    lambda a: a[::-1, :],
    lambda a: a.T,
    lambda a: np.rot90(a, 2).T,
)
DIHEDRAL_NAMES = ("identity", "rot90", "rot180", "rot270", "mirror", "flip", "transpose",
                  "transverse")  # fmt: skip


def content_hash(data: bytes) -> bytes:
    """BLAKE3-256 of the file's bytes: equal for exact copies, different for any other.

    BLAKE3 rather than SHA-256 or BLAKE2b for speed: it is a cryptographic hash (so a crafted
    file cannot pass for another user's photo) that runs on the CPU's vector units at about
    3.5 GB/s on one core, against 1.4 GB/s for SHA-256 with SHA extensions and 0.35 GB/s for
    BLAKE2b. Hashing every byte is then ~2% of a JPEG's reduced-scale decode instead of 6-20%.
    (One thread: the indexer's parallelism is its worker processes.)
    """
    return blake3.blake3(data).digest()


def content_hash_file(path: bytes | str, chunk_size: int = 1 << 20) -> bytes:
    """``content_hash`` of a file's bytes, read in chunks (for files of any size)."""
    digest = blake3.blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.digest()


class HashingReader(io.RawIOBase):
    """A read-only view of a file that computes its ``content_hash`` while it is being read.

    The indexer decodes a file through this reader, so the bytes are hashed block by block as
    the decoder pulls them in, while they are in the CPU cache, instead of being read whole,
    hashed, and read again by the decoder. Readers may seek: every byte is hashed once, in file
    order; bytes a forward seek skips are read and hashed then, and ``digest`` hashes whatever
    the reader never reached (data after the end of a JPEG, say).
    """

    def __init__(self, raw: io.RawIOBase, block: int = 1 << 16) -> None:
        super().__init__()
        self._raw = raw
        self._block = block
        self._hash = blake3.blake3()
        self._hashed_to = 0  # every byte before this offset has been hashed, none after

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        start = self._raw.tell()
        if start > self._hashed_to:
            self._hash_until(start)
        count = self._raw.readinto(buffer) or 0
        end = start + count
        if end > self._hashed_to:
            self._hash.update(memoryview(buffer)[self._hashed_to - start : count])
            self._hashed_to = end
        return count

    def _hash_until(self, offset: int) -> None:
        """Hash the bytes from the hashed frontier up to ``offset`` (or the end of the file)."""
        if self._hashed_to >= offset:
            return
        position = self._raw.tell()
        self._raw.seek(self._hashed_to)
        while self._hashed_to < offset:
            chunk = self._raw.read(min(self._block, offset - self._hashed_to))
            if not chunk:
                break
            self._hash.update(chunk)
            self._hashed_to += len(chunk)
        self._raw.seek(position)

    def digest(self) -> bytes:
        """``content_hash`` of the whole file, reading whatever was not read yet."""
        self._hash_until(1 << 62)
        return self._hash.digest()


def gray_square(picture: np.ndarray) -> np.ndarray:
    """The 64x64 grayscale square (uint8) every perceptual hash starts from.

    ``picture`` is the luminance (h, w) at the working size (``DecodedImage.working_luma``),
    or an RGB array (h, w, 3), whose luminance is taken first.
    """
    image = Image.fromarray(picture)
    if image.mode != "L":
        image = image.convert("L")
    # reducing_gap: a picture more than twice the square's size is first box-averaged by a
    # whole factor (256 -> 128 px), then resampled with LANCZOS; 3x cheaper, and what Pillow
    # documents as indistinguishable from a direct LANCZOS resize.
    square = image.resize((GRAY_SIZE, GRAY_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(square)


def _bits_to_int(bits: np.ndarray) -> int:
    """Row-major bits, first bit most significant (imagehash's hex order)."""
    return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big")


def _stack_to_ints(bits: np.ndarray) -> list[int]:
    """``_bits_to_int`` of each grid of a stack (k, n, n), in one packing call."""
    packed = np.packbits(bits.reshape(len(bits), -1), axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in packed]


def _dihedral_stack(grid: np.ndarray) -> np.ndarray:
    """The 8 symmetries of a square grid, stacked in ``DIHEDRAL`` order: (8, n, n)."""
    return np.stack([transform(grid) for transform in DIHEDRAL])


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    if gray.shape == (height, width):
        return gray.astype(np.float64)
    image = Image.fromarray(gray).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float64)


Dct = Callable[[np.ndarray, int], np.ndarray]


@functools.cache
def scipy_dct() -> Dct:
    """``dct(x, axis)``: SciPy's unnormalised DCT-II along one axis of a float64 array, the
    very function ``scipy.fft.dct(x, axis=axis)`` runs, called the way it calls it.

    ``import scipy.fft`` costs 0.4 s of CPU (it loads scipy.special, numpy.testing, f2py...)
    for a transform that lives in one small compiled module, SciPy's own pocketfft binding:
    that module is loaded from SciPy's installation directly (25 ms), its answer checked on
    a known transform, and ``scipy.fft`` used instead if anything differs (another SciPy
    layout). The values, and so the stored hashes, are SciPy's either way; a test compares
    both paths bit for bit with ``scipy.fft.dct``.
    """
    try:
        binding = _pocketfft_binding()

        def dct(x: np.ndarray, axis: int) -> np.ndarray:
            # scipy.fft.dct(x, axis=axis) on float64 input: type 2, no normalisation (0),
            # a new output array, one thread, no orthogonalisation.
            return binding.dct(x, 2, (axis,), 0, None, 1, None)  # type: ignore[no-any-return]

        probe = np.array([[1.0, 2.0, 3.0, 4.0]])
        k, n = np.arange(4)[:, None], np.arange(4)[None, :]
        expected = (2 * np.cos(np.pi * k * (2 * n + 1) / 8) @ probe[0])[None, :]
        if np.allclose(dct(probe, 1), expected, rtol=0, atol=1e-12):
            return dct
    except (ImportError, OSError, AttributeError, TypeError, ValueError, StopIteration):
        pass
    return _scipy_fft_dct


def _scipy_fft_dct(x: np.ndarray, axis: int) -> np.ndarray:
    import scipy.fft

    return scipy.fft.dct(x, axis=axis)  # type: ignore[no-any-return]


def _pocketfft_binding() -> Any:
    """SciPy's compiled pocketfft module, loaded without running ``scipy.fft``'s imports."""
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    name = "scipy.fft._pocketfft.pypocketfft"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    found = importlib.util.find_spec("scipy")  # finds the package without importing it
    if found is None or not found.submodule_search_locations:
        raise ImportError("scipy is not installed")
    folder = Path(next(iter(found.submodule_search_locations))) / "fft" / "_pocketfft"
    path = next(
        folder / f"pypocketfft{suffix}"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (folder / f"pypocketfft{suffix}").is_file()
    )
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def phash_variants(gray: np.ndarray, hash_size: int = 8) -> list[int]:
    """pHash of the picture and of its 7 rotations and mirror images.

    The 8 transformed squares are stacked and go through one batched DCT per axis, in the
    order imagehash uses (columns, then rows), which gives bit for bit the values of 8
    separate imagehash-style DCTs at a quarter of the cost.
    """
    dct = scipy_dct()
    side = hash_size * 4
    pixels = _resize(gray, side, side)
    coefficients = dct(dct(_dihedral_stack(pixels), 1), 2)
    low = coefficients[:, :hash_size, :hash_size]
    medians = np.median(low.reshape(VARIANTS, -1), axis=1)
    return _stack_to_ints(low > medians[:, None, None])


def ahash_variants(gray: np.ndarray, hash_size: int = 8) -> list[int]:
    """Average hash of the picture and of its 7 rotations and mirror images."""
    pixels = _resize(gray, hash_size, hash_size)
    return _stack_to_ints(_dihedral_stack(pixels > pixels.mean()))


def dhash_variants(gray: np.ndarray, hash_size: int = 8) -> list[int]:
    """Difference hash (horizontal gradients on a square grid) for the 8 symmetries."""
    grids = _dihedral_stack(_resize(gray, hash_size + 1, hash_size + 1))[:, :hash_size, :]
    return _stack_to_ints(grids[:, :, 1:] > grids[:, :, :-1])


def whash_variants(gray: np.ndarray, hash_size: int = 8) -> list[int]:
    """Wavelet hash (imagehash's Haar ``whash``) for the 8 symmetries.

    imagehash's default whash removes the coarsest Haar band (the mean), takes the Haar low
    band at the hash's scale and compares it with its median. A Haar low band is a grid of
    block sums times a constant, and removing the mean shifts every block and the median
    alike, so the hash is "block sum > median of the block sums". Computed here in integers:
    the same bits as imagehash wherever its floating-point round trip through pywt does not
    turn an exact tie (common in flat or clipped areas) into noise, 20x faster, and exactly
    symmetric: a symmetry of the picture is the same symmetry of the bit grid, so only the
    identity is computed.
    """
    block = gray.shape[0] // hash_size
    sums = gray.reshape(hash_size, block, hash_size, block).sum(axis=(1, 3), dtype=np.int64)
    return _stack_to_ints(_dihedral_stack(sums > np.median(sums)))


def centred(keep: float) -> tuple[float, float, float, float]:
    """The window (left, top, right, bottom, as fractions of the picture's width and height)
    that keeps ``keep`` of both sides around the centre."""
    margin = (1 - keep) / 2
    return (margin, margin, 1 - margin, 1 - margin)


# Centre crops whose pHash was stored first (as ``crop_phash`` rows of four hashes): the first
# four ``CROP_WINDOWS``, so such a row still offers these.
CROP_LEVELS = (0.9, 0.8, 0.7, 0.6)
# The windows whose pHash (upright) is stored besides the full frame's, as (left, top, right,
# bottom) fractions: a copy cut to one of them looks like it, where the full-frame hashes no
# longer match. pHash of a window matches a crop whose borders lie within about 2.5 % of the
# window's (measured on the held-out originals: a crop between two centred windows 10 % apart
# was within 8 bits of one of them for 85-92 % of pictures, within 6 bits for fewer), so the
# centred windows are 5 % apart from 90 % to 40 % (crops of 5 to 30 % a side); copies cut to
# another aspect ratio (sides only, or top and bottom only) have windows of their own at 90, 80
# and 70 % of one side. Off-centre crops are not covered: their four borders vary
# independently, far more windows than a search can afford (README, "How matching works").
CROP_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    *(centred(keep) for keep in CROP_LEVELS),
    *(centred(keep) for keep in (0.85, 0.75, 0.65, 0.55, 0.5, 0.45, 0.4)),
    *(((1 - keep) / 2, 0.0, (1 + keep) / 2, 1.0) for keep in (0.9, 0.8, 0.7)),
    *((0.0, (1 - keep) / 2, 1.0, (1 + keep) / 2) for keep in (0.9, 0.8, 0.7)),
)


def crop_phashes(gray: np.ndarray, hash_size: int = 8) -> list[int]:
    """pHash (upright) of each of the picture's ``CROP_WINDOWS``.

    ``gray`` is the full picture's square (``gray_square``): the picture squeezed to 64x64, so
    a window of the picture is the same window of the square, squeezed alike. Each window is
    box-resampled to pHash's input side and its lowest DCT frequencies compared with their
    median, as pHash does; the resampling and the DCT rows kept are one precomputed linear map
    per axis and window (``_window_projections``), so the hashes cost a few small matrix
    products (0.1-0.2 ms, not the 2-3 ms each of another ``gray_square`` +
    ``phash_variants``). pHash keeps only frequencies far below what even the 40 % centre (26
    of the square's 64 pixels) holds; on the held-out corpus's crops this finds the same pairs
    as hashing each cropped picture separately.
    """
    rows, columns = _window_projections(hash_size)
    low = rows @ gray.astype(np.float64) @ columns.transpose(0, 2, 1)
    medians = np.median(low.reshape(len(CROP_WINDOWS), -1), axis=1)
    return _stack_to_ints(low > medians[:, None, None])


def area_weights(
    lo: float | np.ndarray, hi: float | np.ndarray, cells: int, source: int
) -> np.ndarray:
    """(cells, source) matrix averaging ``source`` samples (each one unit wide) over ``cells``
    equal parts of the interval [lo, hi]: a box (area-average) resampling of that window.
    With arrays of k intervals, k such matrices at once: (k, cells, source)."""
    lo_, hi_ = (
        np.asarray(lo, dtype=np.float64)[..., None],
        np.asarray(hi, dtype=np.float64)[..., None],
    )
    edges = lo_ + (hi_ - lo_) * np.arange(cells + 1) / cells
    left, right = edges[..., :-1, None], edges[..., 1:, None]
    sample = np.arange(source)
    overlap = np.clip(np.minimum(right, sample + 1) - np.maximum(left, sample), 0.0, None)
    weights: np.ndarray = overlap / overlap.sum(axis=-1, keepdims=True)
    return weights


@functools.cache
def _window_projections(hash_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows, hash_size, GRAY_SIZE) twice, for the rows and the columns of the square: for
    each window, the box resampling of its span to pHash's input side (``hash_size * 4``), then
    the lowest ``hash_size`` rows of the unnormalised DCT-II (scipy's ``dct`` type 2, as
    ``phash_variants`` uses)."""
    side = hash_size * 4
    k = np.arange(hash_size)[:, None]
    n = np.arange(side)[None, :]
    dct = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * side))

    def project(lo: float, hi: float) -> np.ndarray:
        projection: np.ndarray = dct @ area_weights(GRAY_SIZE * lo, GRAY_SIZE * hi, side, GRAY_SIZE)
        return projection

    rows = np.stack([project(top, bottom) for _, top, _, bottom in CROP_WINDOWS])
    columns = np.stack([project(left, right) for left, _, right, _ in CROP_WINDOWS])
    return rows, columns


HASH_FUNCTIONS: dict[str, Callable[[np.ndarray, int], list[int]]] = {
    "phash": phash_variants,
    "dhash": dhash_variants,
    "ahash": ahash_variants,
    "whash": whash_variants,
}


def all_variants(gray: np.ndarray, params: HashParams) -> dict[str, list[int]]:
    """Every algorithm's 8 variants for one picture."""
    return {name: fn(gray, params.hash_size) for name, fn in HASH_FUNCTIONS.items()}


def pack_variants(values: list[int], params: HashParams) -> bytes:
    """The stored form: the 8 variants as fixed-width big-endian integers, identity first."""
    return b"".join(v.to_bytes(params.nbytes, "big") for v in values)


def unpack_variants(blob: bytes, params: HashParams) -> list[int]:
    """Inverse of ``pack_variants``."""
    n = params.nbytes
    return [int.from_bytes(blob[i : i + n], "big") for i in range(0, len(blob), n)]


def hamming(a: int, b: int) -> int:
    """The number of differing bits between two hashes."""
    return (a ^ b).bit_count()
