"""Builders of hostile image files, as bytes: damaged, odd-mode, oversized or lying files that
an index must record with a reason (or index despite their flaws), never crash on.

Each builder makes a real file the way a broken camera, editor, transfer or attacker would:
the bytes, not a mock of what the decoder would say about them.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def picture(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A small picture with edges and texture (shapes over a gradient, a little noise),
    different for each seed to every perceptual hash: a smooth gradient alone would not be,
    since the difference hash of any smooth gradient is mostly its direction."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(0, 255, 3) * 0.5 + 60 * (x / width - y / height)[..., None]
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x0, y0 = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.2, 1.0) * height
        box = (x0, y0, x0 + rng.uniform(0.1, 0.6) * width, y0 + rng.uniform(0.1, 0.6) * height)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- PNG chunks


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk; ``crc`` overrides the correct checksum."""
    value = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", value & 0xFFFFFFFF)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (kind, body) of each chunk of a PNG."""
    chunks, offset = [], len(PNG_MAGIC)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions (a decompression bomb's signature)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_MAGIC
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def png_with_bad_idat_crc(image: Image.Image) -> bytes:
    """A valid PNG whose IDAT checksums are wrong (the pixel data itself is intact)."""
    out = PNG_MAGIC
    for kind, body in png_chunks(encode(image, "PNG")):
        bad = zlib.crc32(kind + body) ^ 0xDEADBEEF if kind == b"IDAT" else None
        out += png_chunk(kind, body, bad)
    return out


def png_with_big_text(image: Image.Image, size: int = 3_000_000, *, itxt: bool = False) -> bytes:
    """A valid PNG carrying ``size`` bytes of compressed text (zTXt, or iTXt), beyond Pillow's
    MAX_TEXT_CHUNK (1 MiB) once decompressed."""
    info = PngImagePlugin.PngInfo()
    text = "lorem ipsum " * (size // 12)
    if itxt:
        info.add_itxt("Comment", text, zip=True)
    else:
        info.add_text("Comment", text, zip=True)
    return encode(image, "PNG", pnginfo=info)


def bomb_png(side: int = 13000) -> bytes:
    """A real (fully decodable) RGB PNG of side x side pixels of one colour: ~500 KB for 13000,
    below Pillow's decompression-bomb limit (~179 megapixels), ~500 MB once decoded."""
    row = b"\x00" + bytes((40, 90, 200)) * side  # filter byte "none", then the pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        PNG_MAGIC + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


# ----------------------------------------------------------------------------- EXIF


def exif_with_orientation(value: int, count: int = 1) -> bytes:
    """EXIF (big-endian TIFF) holding one Orientation tag: ``count`` SHORT values, the first
    ``value`` (a count above 1 makes Pillow warn "had too many entries")."""
    values = struct.pack(">" + "H" * count, *([value] * count))
    inline = values.ljust(4, b"\x00") if len(values) <= 4 else struct.pack(">I", 26)
    ifd = struct.pack(">H", 1) + struct.pack(">HHI", 0x0112, 3, count) + inline + b"\0\0\0\0"
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd
    if len(values) > 4:
        tiff += values
    return b"Exif\x00\x00" + tiff


def corrupt_exif() -> bytes:
    """EXIF whose one tag (Make, 255 ASCII bytes) points beyond the end of the data."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x010F, 2, 255, 4000) + b"\0\0\0\0"
    return b"Exif\x00\x00MM\x00*" + struct.pack(">I", 8) + ifd


def jpeg_with_exif(image: Image.Image, exif: bytes) -> bytes:
    return encode(image, "JPEG", quality=90, exif=exif)


def tiff_with_corrupt_deflate(image: Image.Image) -> bytes:
    """A deflate-compressed TIFF whose compressed strip (right after the 8-byte header) is
    damaged: libtiff reports it by printing to standard error ("ZIPDecode: Decoding error")."""
    data = bytearray(encode(image, "TIFF", compression="tiff_deflate"))
    data[12:20] = b"\xff" * 8
    return bytes(data)
