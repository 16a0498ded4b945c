"""Decode one image file into what hashing and ranking need: an upright, reduced-scale picture.

JPEGs are decoded at reduced scale with Pillow's ``draft`` (libjpeg's DCT scaling): the hashes
need a small image only, and skipping most of the entropy-decoded detail is where the speed
comes from. Colour JPEGs are decoded to YCbCr, not RGB: hashing wants the luma (the Y plane)
and the colour signature only 16 mean colours, so libjpeg's colour conversion of every pixel
(5% of a draft decode) is skipped. EXIF orientation is applied, animated images give their
first frame, and CMYK, 16-bit, palette and alpha images are normalised to 8-bit RGB. Failures
are values (``DecodeFailure``), never exceptions: one bad file must not stop a run.

The pixels decide whether a file is an image; its metadata never does. Warnings a decoder gives
(corrupt EXIF, an out-of-range orientation, an oversized text chunk) become the file's notes
(``ImageInfo.notes``, stored with its row) instead of noise on the terminal, and metadata that
cannot be read is left out rather than failing the file.
"""

from __future__ import annotations

import contextlib
import io
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError, features

from . import signals

try:  # HEIC/HEIF/AVIF through the optional `heif` extra.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORT = True
except ImportError:  # pragma: no cover - depends on the extra being installed
    HEIF_SUPPORT = False

# The longest side of the working picture: enough for hashes (which use 64 px), the sharpness
# measure and the colour signature.
WORKING_SIZE = 256
# The decoded picture is kept at up to twice the working size, the size libjpeg's DCT scaling
# gives most photos (1/8 of a 12-16 MP photo is ~500 px), so JPEGs need no resampling here.
REDUCED_MAX = 2 * WORKING_SIZE

LOSSLESS_FORMATS = frozenset({"PNG", "BMP", "GIF", "TIFF", "PPM", "TGA", "DIB", "ICO", "QOI"})

_EXIF_IFD = 0x8769
_TAG_MAKE, _TAG_MODEL, _TAG_ORIENTATION, _TAG_DATETIME = 271, 272, 274, 306
_TAG_DATETIME_ORIGINAL, _TAG_SUBSEC_ORIGINAL = 36867, 37521

# EXIF Orientation -> the transpose that displays the stored pixels upright (as ImageOps does).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_BIT_DEPTH = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "LA": 8,
              "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}  # fmt: skip


@dataclass(frozen=True)
class ImageInfo:
    """What the file says about itself: dimensions (upright), format and camera metadata."""

    width: int
    height: int
    format: str
    mode: str
    bit_depth: int
    lossless: bool
    frames: int
    orientation: int
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    exif_tags: int
    # What the decoder warned about or dedupdb left out (unreadable EXIF, a cut text chunk):
    # the pixels were read, but the file is not quite what its format says.
    notes: tuple[str, ...] = ()
    # What tells a lossless file made from a JPEG (signals.conversion_fit): a JPEG's luma
    # quantization table, a lossless picture's DCT sample; None for the others.
    jpeg_quant: bytes | None = None
    dct_sample: bytes | None = None


@dataclass(frozen=True)
class DecodedImage:
    """The upright picture at reduced scale and what the file says about itself.

    ``picture`` is 8-bit "L", "RGB" or "YCbCr" (colour JPEGs), longest side <= REDUCED_MAX.
    """

    info: ImageInfo
    picture: Image.Image

    @cached_property
    def luma(self) -> np.ndarray:
        """The picture's luminance (ITU-R 601, as JPEG's Y and Pillow's "L"), uint8 (h, w)."""
        if self.picture.mode == "YCbCr":
            return np.asarray(self.picture.getchannel(0))
        if self.picture.mode == "L":
            return np.asarray(self.picture)
        return np.asarray(self.picture.convert("L"))

    @cached_property
    def working_luma(self) -> np.ndarray:
        """``luma`` at the working size (longest side <= WORKING_SIZE), uint8 (h, w): what the
        perceptual hashes and the sharpness measure start from."""
        luma = Image.fromarray(self.luma)
        width, height = luma.size
        scale = WORKING_SIZE / max(width, height)
        if scale < 1:
            # BOX (area averaging): alias-free for these < 2x reductions, and cheaper than
            # BILINEAR, whose kernel is twice as wide.
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            luma = luma.resize(size, Image.Resampling.BOX)
        return np.asarray(luma)

    @cached_property
    def content(self) -> DecodedImage:
        """This picture without the uniform borders, frames, mats or letterbox bars that were
        added around it (``content_box``), or itself when it has none: what is hashed, so a
        framed or padded copy matches its original."""
        left, top, right, bottom = content_box(self.luma)
        if (left, top, right, bottom) == (0, 0, *self.picture.size):
            return self
        return DecodedImage(info=self.info, picture=self.picture.crop((left, top, right, bottom)))

    @cached_property
    def rgb(self) -> np.ndarray:
        """The picture in RGB at the working size (longest side <= WORKING_SIZE), uint8 (h, w, 3).

        Not used by indexing (which works from ``luma`` and a colour grid); for callers that
        want the colour pixels.
        """
        picture = self.picture.convert("RGB")
        picture.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR)
        return np.asarray(picture, dtype=np.uint8)


# Added borders: a line (row or column) belongs to a border when at least BORDER_SHARE of its
# pixels are within BORDER_TOLERANCE luma levels of the outermost line's median: flat, allowing
# for JPEG and dithering noise. A border is trimmed only when it ends at an edge: one of the
# next two lines has at least EDGE_SHARE of its pixels beyond 2 x BORDER_TOLERANCE from the
# border's level. Smooth gradients (skies, vignettes) have no such edge and are left alone, so
# a tone-edited copy (whose gradient crosses the tolerance elsewhere) is trimmed like its
# original: not at all.
BORDER_TOLERANCE = 10
BORDER_SHARE = 0.97
EDGE_SHARE = 0.3
# Trimming may not leave less than this share of a side: a near-uniform picture with a small
# subject keeps its frame (its hash is the low-information kind anyway).
MIN_CONTENT_SHARE = 0.3


def content_box(luma: np.ndarray) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of ``luma`` (uint8 (h, w)) inside its added borders.

    Top and bottom are trimmed first over whole rows, then left and right over the rows that
    remain, then top and bottom again over the columns that remain (so a letterboxed and
    pillarboxed picture loses both pairs of bars). The whole picture when nothing is trimmed.
    """
    height, width = luma.shape
    box = [0, 0, width, height]  # left, top, right, bottom
    for axis in (0, 1, 0):
        left, top, right, bottom = box
        region = luma[top:bottom, left:right]
        lines = region if axis == 0 else region.T  # lines along the trimmed axis
        start = _border_lines(lines)
        end = len(lines) - _border_lines(lines[::-1])
        if end - start < MIN_CONTENT_SHARE * len(lines):
            continue
        if axis == 0:
            box = [left, top + start, right, top + end]
        else:
            box = [left + start, top, left + end, bottom]
    return box[0], box[1], box[2], box[3]


def median_u8(values: np.ndarray) -> float:
    """``np.median`` of a 1-D uint8 array, from its histogram (several times faster on a
    line of a few hundred pixels; the same value: the mean of the two middle ones)."""
    below_or_at = np.bincount(values, minlength=256).cumsum()
    n = len(values)
    low = int(np.searchsorted(below_or_at, (n - 1) // 2, side="right"))
    high = int(np.searchsorted(below_or_at, n // 2, side="right"))
    return (low + high) / 2


def _border_lines(lines: np.ndarray) -> int:
    """How many of the first lines (rows of ``lines``) form a flat border ending at an edge."""
    if len(lines) < 8 or lines.shape[1] < 8:
        return 0
    level = median_u8(lines[0])
    first = np.abs(lines[0].astype(np.int16) - round(level))
    if (first <= BORDER_TOLERANCE).mean() < BORDER_SHARE:
        return 0  # the outermost line is not flat: no border (most photos; saves the rest)
    diff = np.abs(lines.astype(np.int16) - round(level))
    flat = (diff <= BORDER_TOLERANCE).mean(axis=1) >= BORDER_SHARE
    count = int(np.argmin(flat)) if not flat.all() else len(lines)
    if count == 0 or count >= len(lines) - 2:
        return 0
    far = (diff[count : count + 2] > 2 * BORDER_TOLERANCE).mean(axis=1)
    return count if float(far.max()) >= EDGE_SHARE else 0


@dataclass(frozen=True)
class DecodeFailure:
    """Why a file could not be decoded, in words a user understands. ``out_of_memory``: the
    decoder ran out of memory (the caller may know the limit that made it so)."""

    reason: str
    out_of_memory: bool = False


# How many notes a file keeps, each cut to NOTE_LENGTH characters: a hostile file can make a
# decoder warn once per tag.
MAX_NOTES = 5
NOTE_LENGTH = 200


def decode(data: bytes | BinaryIO) -> DecodedImage | DecodeFailure:
    """Decode image bytes, or a binary file positioned at its start (read once, in blocks).

    Never raises for bad input: returns a ``DecodeFailure`` instead. Warnings the decoder gives
    are returned as the image's notes, not shown.
    """
    if isinstance(data, bytes):
        if not data:
            return DecodeFailure("empty file (0 bytes)")
        source: BinaryIO = io.BytesIO(data)
    else:
        source = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Pillow warns between its limit and twice its limit, and raises above it; the
        # warning is not a failure, the error is (``_decode_source``).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        outcome = _decode_source(source)
    notes = tidy_notes(str(w.message) for w in caught)
    if isinstance(outcome, DecodedImage) and notes:
        info = replace(outcome.info, notes=_unique(outcome.info.notes + notes))
        return DecodedImage(info=info, picture=outcome.picture)
    return outcome


def _decode_source(source: BinaryIO) -> DecodedImage | DecodeFailure:
    try:
        with _capped_png_text(), Image.open(source) as im:
            return _decode_open(im)
    except Image.DecompressionBombError as err:
        return DecodeFailure(f"too large to decode safely (decompression bomb guard): {err}")
    except UnidentifiedImageError:
        return DecodeFailure(_unidentified(source))
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as err:
        # Pillow reports truncated and corrupt data through these.
        return DecodeFailure(f"corrupt or truncated image: {err}")
    except MemoryError:
        return DecodeFailure("too large: not enough memory to decode it", out_of_memory=True)


def tidy_notes(messages: Iterable[str]) -> tuple[str, ...]:
    """Messages as notes: each on one line, at most NOTE_LENGTH long and with any control
    character shown as an escape (a message may quote the file's own bytes, and notes reach
    terminals), no repeats, at most MAX_NOTES."""
    return _unique(tuple(_visible(" ".join(m.split()))[:NOTE_LENGTH] for m in messages))


def _visible(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _unique(notes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in notes if n))[:MAX_NOTES]


# ISO base media file ("ftyp") brands of the HEIF family, for the hint when no decoder reads it.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                          b"mif1", b"msf1", b"mif2"})  # fmt: skip
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _unidentified(source: BinaryIO) -> str:
    """Why no decoder took the file: a format whose optional decoder is missing says which one
    to install; anything else is not an image."""
    try:
        source.seek(0)
        head = source.read(64)
    except (OSError, ValueError):
        head = b""
    brands = _ftyp_brands(head)
    if brands & _AVIF_BRANDS:  # AVIF files name the generic HEIF brands too
        if not features.check("avif"):  # (pillow-heif reads no AVIF since its 1.0)
            return "AVIF needs a Pillow built with AVIF support (Pillow >= 11.3 wheels are)"
    elif brands & _HEIF_BRANDS and not HEIF_SUPPORT:
        return "HEIC/HEIF needs `pip install 'dedupdb[heif]'` (pillow-heif is not installed)"
    return "not an image, or a format Pillow cannot read"


def _ftyp_brands(head: bytes) -> frozenset[bytes]:
    """The major and compatible brands of an ISO base media file's leading ``ftyp`` box."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return frozenset()
    size = min(int.from_bytes(head[:4], "big"), len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, size - 3, 4)]
    return frozenset(brands)


@contextlib.contextmanager
def _capped_png_text() -> Iterator[None]:
    """PNG text (zTXt, iTXt) that decompresses to more than Pillow's MAX_TEXT_CHUNK is cut to
    that size, with a warning, instead of failing the whole file: text is metadata, and the
    pixels are what is indexed. Pillow's cap is kept (the text never takes more memory); only
    its error is not. Pillow has no option for this, so its module function is swapped while a
    file is decoded (worker processes decode one file at a time)."""
    original = PngImagePlugin._safe_zlib_decompress
    PngImagePlugin._safe_zlib_decompress = _cut_zlib_text
    try:
        yield
    finally:
        PngImagePlugin._safe_zlib_decompress = original


def _cut_zlib_text(s: bytes) -> bytes:
    limit = PngImagePlugin.MAX_TEXT_CHUNK
    inflater = zlib.decompressobj()
    text = inflater.decompress(s, limit)
    if inflater.unconsumed_tail:
        warnings.warn(f"PNG text chunk over {limit // 1024} KiB: cut to that size", stacklevel=2)
    return text


def _decode_open(im: Image.Image) -> DecodedImage:
    fmt = im.format or "unknown"
    mode = im.mode
    frames = int(getattr(im, "n_frames", 1) or 1)
    full_w, full_h = im.size
    metadata = _metadata(im)
    orientation = metadata.orientation
    if fmt in ("JPEG", "MPO"):
        # The smallest DCT scale whose longest side still reaches the working size (Pillow's
        # draft keeps both given sides, so the shorter one is given as 1).
        wanted = (WORKING_SIZE, 1) if full_w >= full_h else (1, WORKING_SIZE)
        im.draft("YCbCr" if mode in ("RGB", "YCbCr") else None, wanted)
    im.seek(0)
    im.load()
    picture = _normalise_mode(im)
    lossless = _is_lossless(im, fmt)
    jpeg_quant = dct_sample = None
    if fmt in ("JPEG", "MPO"):
        jpeg_quant = signals.quantization_table(getattr(im, "quantization", None))
    elif lossless and _BIT_DEPTH.get(mode, 8) == 8 and picture.mode in ("L", "RGB"):
        dct_sample = signals.dct_sample(picture)  # the full-resolution pixels, before reduce
    longest = max(picture.size)
    if longest > REDUCED_MAX:  # box-average by a whole factor: cheap, and alias-free
        picture = picture.reduce(-(-longest // REDUCED_MAX))
    if orientation in _ORIENTATION_TRANSPOSE:
        picture = picture.transpose(_ORIENTATION_TRANSPOSE[orientation])
    if picture is im:  # closing the file (the caller's ``with``) would take the pixels along
        picture = im.copy()
    if orientation in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    info = ImageInfo(
        width=full_w,
        height=full_h,
        format=fmt,
        mode=mode,
        bit_depth=_BIT_DEPTH.get(mode, 8),
        lossless=lossless,
        frames=frames,
        orientation=orientation,
        taken_at=metadata.taken_at,
        camera_make=metadata.camera_make,
        camera_model=metadata.camera_model,
        exif_tags=metadata.exif_tags,
        notes=metadata.notes,
        jpeg_quant=jpeg_quant,
        dct_sample=dct_sample,
    )
    return DecodedImage(info=info, picture=picture)


@dataclass(frozen=True)
class _Metadata:
    orientation: int = 1
    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    exif_tags: int = 0
    notes: tuple[str, ...] = ()


def _metadata(im: Image.Image) -> _Metadata:
    """The EXIF fields the index keeps; none when the EXIF cannot be read (a note says so).

    An orientation outside 1-8 is taken as upright, as viewers do, and noted.
    """
    try:
        exif = im.getexif()
        raw = exif.get(_TAG_ORIENTATION, 1)
        found = _Metadata(
            orientation=int(raw) if isinstance(raw, int) else 1,
            taken_at=_taken_at(exif),
            camera_make=_text(exif.get(_TAG_MAKE)),
            camera_model=_text(exif.get(_TAG_MODEL)),
            exif_tags=len(exif) + len(exif.get_ifd(_EXIF_IFD)),
        )
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError) as err:
        return _Metadata(notes=(f"EXIF unreadable, left out: {err}",))
    if 1 <= found.orientation <= 8 and isinstance(raw, int):
        return found
    return replace(
        found, orientation=1, notes=(f"EXIF orientation {raw!r} is not 1-8: taken as upright",)
    )


def _normalise_mode(im: Image.Image) -> Image.Image:
    """8-bit L, RGB or YCbCr as decoded; anything else to RGB (see ``to_rgb``)."""
    if im.mode in ("L", "RGB", "YCbCr"):
        return im
    return to_rgb(im)


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit scaled (not clipped), alpha composited on white.

    Memory counts here (a worker's is limited): 16-bit pixels are scaled a band of rows at a
    time, and an alpha channel that is opaque everywhere is dropped rather than composited
    (the same pixels, without three more full-size copies).
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_scaled_to_8_bit(im)).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA") and im.getchannel("A").getextrema() == (255, 255):
        return im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode == "RGB":
        return im
    return im.convert("RGB")


# Rows of 16-bit or float pixels scaled at a time: ~2 megapixels (16 MB as float64).
_SCALE_BAND_PIXELS = 1 << 21


def _scaled_to_8_bit(im: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit or float picture as uint8 (h, w): full scale to 0-255, rounded.

    The same values as ``np.clip(pixels / top * 255 + 0.5, 0, 255)`` in float64 over the
    whole picture, computed a band of rows at a time: a 48-megapixel scan would otherwise
    take 1.2 GB of float64 temporaries.
    """
    pixels = np.asarray(im)
    top = 65535.0 if im.mode.startswith("I;16") or float(pixels.max(initial=0)) > 255 else 255.0
    gray = np.empty(pixels.shape, dtype=np.uint8)
    step = max(1, _SCALE_BAND_PIXELS // max(1, pixels.shape[1]))
    for row in range(0, pixels.shape[0], step):
        band = pixels[row : row + step].astype(np.float64)
        gray[row : row + step] = np.clip(band / top * 255.0 + 0.5, 0, 255)
    return gray


def _is_lossless(im: Image.Image, fmt: str) -> bool:
    if fmt == "WEBP":
        return bool(im.info.get("lossless", False))
    if fmt == "TIFF":
        return im.info.get("compression", "raw") not in ("jpeg", "tiff_jpeg", "webp")
    return fmt in LOSSLESS_FORMATS


def _taken_at(exif: Image.Exif) -> str | None:
    """EXIF date taken as ``YYYY-MM-DDTHH:MM:SS[.fff]``, or None when absent or malformed."""
    ifd = exif.get_ifd(_EXIF_IFD)
    raw = _text(ifd.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME))
    if not raw or len(raw) < 19 or raw[4] != ":" or raw[10] != " ":
        return None
    stamp = raw[:10].replace(":", "-") + "T" + raw[11:19]
    if not stamp[:4].isdigit() or stamp.startswith("0000"):
        return None
    subsec = _text(ifd.get(_TAG_SUBSEC_ORIGINAL))
    if subsec and subsec.isdigit():
        stamp += "." + subsec
    return stamp


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text or None
