"""The pure part of the fingerprint stage: bytes in, a ``Fingerprint`` out.

``fingerprint`` decodes a picture from its bytes or a binary file, and computes its content
hash, perceptual hashes and quality signals; it touches no database and no path, so it runs
wherever an executor sends it. Loads numpy and Pillow (the indexing process imports this
module only to decode in-process or to warm up before forking workers).
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from PIL import Image as PILImage

from .. import decode as decoding
from .. import finehash, hashes, inner, signals
from ..decode import DecodedImage, DecodeFailure, ImageInfo, decode
from .records import Fingerprint, FingerprintSettings, Rejected

# Block size of the streamed read: small enough that each block is hashed and decoded while it
# is still in the CPU's cache, large enough to keep the per-block Python overhead negligible.
READ_BLOCK = 1 << 18

DEFAULT_SETTINGS = FingerprintSettings()

# Whether ``warm_up`` ran in this process (or in the one it was forked from).
_warm = False


def fingerprint(
    source: bytes | BinaryIO,
    settings: FingerprintSettings = DEFAULT_SETTINGS,
    *,
    content_hash: bytes | None = None,
) -> Fingerprint | Rejected:
    """The fingerprint of a picture given as its bytes or a binary file positioned at its
    start; ``Rejected`` (never an exception) for bytes that are not a picture that can be
    decoded, or one smaller than ``settings.min_resolution``.

    A file is read once: the decoder reads it through a ``hashes.HashingReader``, which hashes
    each block as it passes. ``content_hash``: the bytes' hash when the caller already has it.
    """
    if isinstance(source, bytes):
        digest = hashes.content_hash(source) if content_hash is None else content_hash
        return from_decoded(decode(source), digest, settings)
    reader = hashes.HashingReader(source)  # type: ignore[arg-type]  # any binary file reads
    decoded = decode(io.BufferedReader(reader, READ_BLOCK))
    if isinstance(decoded, DecodeFailure):  # the hash is not needed then: not read to the end
        return Rejected(decoded.reason, out_of_memory=decoded.out_of_memory)
    digest = reader.digest() if content_hash is None else content_hash
    return from_decoded(decoded, digest, settings)


def fingerprint_path(
    path: str | bytes | os.PathLike[str], settings: FingerprintSettings = DEFAULT_SETTINGS
) -> Fingerprint | Rejected:
    """``fingerprint`` of the file at ``path`` (an ``OSError`` if it cannot be opened)."""
    with open(path, "rb", buffering=0) as handle:
        return fingerprint(handle, settings)


def from_decoded(
    decoded: DecodedImage | DecodeFailure, digest: bytes, settings: FingerprintSettings
) -> Fingerprint | Rejected:
    """The fingerprint of a decoded picture whose bytes hash to ``digest``."""
    if isinstance(decoded, DecodeFailure):
        return Rejected(decoded.reason, out_of_memory=decoded.out_of_memory)
    info = decoded.info
    if min(info.width, info.height) < settings.min_resolution:
        return Rejected(
            f"smaller than --min-resolution {settings.min_resolution} px "
            f"({info.width}x{info.height})",
            skipped=True,
        )
    found = _measure(decoded, digest, settings)
    if settings.features:
        from .. import features  # OpenCV is loaded only by runs that ask for features

        packed = features.pack(features.extract(decoded.content.luma))
        found = found._replace(local_features=packed)
    return found


def _measure(decoded: DecodedImage, digest: bytes, settings: FingerprintSettings) -> Fingerprint:
    """What is stored about the content of a decoded picture (not its path or stat)."""
    params = settings.params
    info = decoded.info
    full_size = decoded.picture.size
    fine = finehash.compute(decoded.working_luma)  # the whole frame's: see finehash
    decoded = decoded.content  # hashes and signals of the picture inside any added borders
    content_width, content_height = content_size(info, full_size, decoded.picture.size)
    luma = decoded.working_luma
    gray = hashes.gray_square(luma)
    variants = hashes.all_variants(gray, params)
    colours = signals.colour_source(decoded.picture)  # reduced once for both signatures
    measured = signals.measure(colours, gray, luma)
    packed = {name: hashes.pack_variants(v, params) for name, v in variants.items()}
    # Its box is a share of the picture inside any added borders, as every region is.
    shown = inner.measure(decoded.picture, decoded.luma, params)
    return Fingerprint(
        content_hash=digest,
        width=info.width,
        height=info.height,
        content_width=content_width,
        content_height=content_height,
        format=info.format,
        mode=info.mode,
        bit_depth=info.bit_depth,
        lossless=info.lossless,
        frames=info.frames,
        orientation=info.orientation,
        taken_at=info.taken_at,
        camera_make=info.camera_make,
        camera_model=info.camera_model,
        exif_tags=info.exif_tags,
        note="\n".join(info.notes) or None,
        hash_size=params.hash_size,
        phash=packed["phash"],
        dhash=packed["dhash"],
        ahash=packed["ahash"],
        whash=packed["whash"],
        crop_phash=hashes.pack_variants(hashes.crop_phashes(gray, params.hash_size), params),
        crop_colour=signals.crop_colours(colours, hashes.CROP_WINDOWS),
        sharpness=measured.sharpness,
        low_information=measured.low_information,
        colour=measured.colour,
        thumb=measured.thumb,
        jpeg_quant=info.jpeg_quant,
        dct_sample=info.dct_sample,
        fine_hash=fine,
        inner_picture=None if shown is None else inner.pack(shown, params),
    )


def content_size(
    info: ImageInfo, decoded_size: tuple[int, int], content: tuple[int, int]
) -> tuple[int, int]:
    """The picture inside added borders in the file's pixels: ``content`` is measured on the
    reduced-scale decoded picture (``decoded_size``), upright like ``info``'s dimensions."""
    if content == decoded_size:
        return info.width, info.height
    return (
        max(1, round(content[0] * info.width / decoded_size[0])),
        max(1, round(content[1] * info.height / decoded_size[1])),
    )


def warm_up() -> None:
    """Load what the first file would otherwise load in the middle of its work: SciPy's FFT
    (pHash), Pillow's format plugins and the first-call set-up of the decode and hash code.

    Each worker does it as it starts, while the indexing process is still starting too (see
    ``workers``); workers forked later from a process that did it (a re-index, a replacement)
    inherit it, and it is done once, not once per worker.
    """
    global _warm
    if _warm:
        return
    PILImage.init()
    buffer = io.BytesIO()
    PILImage.new("RGB", (160, 120), (90, 120, 150)).save(buffer, "JPEG")
    decoded = decoding.decode(buffer.getvalue())  # not ``decode``: tests count files' decodes
    if isinstance(decoded, DecodedImage):
        _measure(decoded, b"", FingerprintSettings())
    _warm = True
