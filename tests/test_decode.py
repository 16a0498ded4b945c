"""Decoding: every kind of picture comes out upright, 8-bit RGB and small; every bad input comes
out as a ``DecodeFailure`` with a reason, never an exception."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import hostile
import numpy as np
import pytest
from conftest import photo
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from dedupdb import hashes
from dedupdb.decode import WORKING_SIZE, DecodedImage, DecodeFailure, decode, median_u8


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def decoded(data: bytes) -> DecodedImage:
    result = decode(data)
    assert isinstance(result, DecodedImage), result
    assert result.rgb.dtype == np.uint8
    assert result.rgb.ndim == 3 and result.rgb.shape[2] == 3
    assert max(result.rgb.shape[:2]) <= WORKING_SIZE
    return result


def failed(data: bytes) -> str:
    result = decode(data)
    assert isinstance(result, DecodeFailure), result
    return result.reason


def phash(result: DecodedImage) -> int:
    return hashes.phash_variants(hashes.gray_square(result.rgb))[0]


# ----------------------------------------------------------------------------- kinds


def test_jpeg_is_reduced_and_described() -> None:
    result = decoded(encode(photo(1, (1200, 900)), "JPEG", quality=90))
    assert (result.info.width, result.info.height) == (1200, 900)
    assert result.info.format == "JPEG"
    assert not result.info.lossless
    assert result.info.frames == 1
    assert result.rgb.shape == (192, 256, 3)


def test_cmyk_jpeg() -> None:
    picture = photo(2)
    result = decoded(encode(picture.convert("CMYK"), "JPEG", quality=95))
    assert result.info.mode == "CMYK"
    upright = decoded(encode(picture, "PNG"))
    assert hashes.hamming(phash(result), phash(upright)) <= 4


def test_16_bit_grayscale_png_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 300, dtype=np.uint16), (200, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    result = decoded(data)
    assert result.info.bit_depth == 16
    assert result.info.lossless
    row = result.rgb[result.rgb.shape[0] // 2, :, 0].astype(int)
    assert row[0] < 10 and row[-1] > 245  # the full range, not all white
    assert np.all(np.diff(row) >= 0)


def test_palette_png_with_transparency_is_composited_on_white() -> None:
    picture = Image.new("P", (200, 150), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    picture.paste(1, (50, 50, 150, 100))
    data = encode(picture, "PNG", transparency=0)
    result = decoded(data)
    assert result.info.mode == "P"
    corner, centre = (
        result.rgb[0, 0],
        result.rgb[result.rgb.shape[0] // 2, result.rgb.shape[1] // 2],
    )
    assert corner.tolist() == [255, 255, 255]  # transparent black -> white background
    assert centre.tolist() == [255, 0, 0]


def test_rgba_png() -> None:
    rgba = photo(3).convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, 40, 40))
    rgba.putalpha(alpha)
    result = decoded(encode(rgba, "PNG"))
    assert result.info.mode == "RGBA"
    assert result.rgb[2, 2].tolist() == [255, 255, 255]


def test_animated_gif_hashes_its_first_frame() -> None:
    first, second = photo(4).convert("P"), photo(5).convert("P")
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    result = decoded(data)
    assert result.info.frames == 2
    assert result.info.lossless
    only_first = decoded(encode(first, "GIF"))
    only_second = decoded(encode(second, "GIF"))
    assert hashes.hamming(phash(result), phash(only_first)) == 0
    assert hashes.hamming(phash(result), phash(only_second)) > 10


def test_exif_rotated_jpeg_is_reported_and_hashed_upright() -> None:
    upright = photo(6, (320, 240))
    # Orientation 6: the stored pixels are the upright picture turned 90° counter-clockwise;
    # viewers rotate them 90° clockwise to display.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Acme"
    exif[0x0110] = "Camera 1"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    result = decoded(encode(stored, "JPEG", quality=95, exif=exif))
    assert (result.info.width, result.info.height) == (320, 240)
    assert result.rgb.shape[1] > result.rgb.shape[0]  # landscape, like the upright picture
    assert result.info.orientation == 6
    assert result.info.camera_make == "Acme"
    assert result.info.camera_model == "Camera 1"
    assert result.info.taken_at == "2024-05-06T07:08:09"
    reference = decoded(encode(upright, "JPEG", quality=95))
    assert hashes.hamming(phash(result), phash(reference)) <= 2


def test_heic_through_pillow_heif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
    pillow_heif.register_heif_opener()
    picture = photo(7)
    try:
        data = encode(picture, "HEIF", quality=90)
    except (KeyError, OSError, ValueError) as err:  # pragma: no cover - depends on libheif
        pytest.skip(f"pillow-heif cannot encode HEIF here: {err}")
    result = decoded(data)
    assert result.info.format == "HEIF"
    assert (result.info.width, result.info.height) == picture.size
    reference = decoded(encode(picture, "PNG"))
    assert hashes.hamming(phash(result), phash(reference)) <= 4


def test_png_named_like_anything_decodes_by_content() -> None:
    result = decoded(encode(photo(8), "PNG"))
    assert result.info.format == "PNG"


# ----------------------------------------------------------------------------- bad input


def test_empty_file() -> None:
    assert "empty" in failed(b"")


def test_text_file() -> None:
    assert "not an image" in failed(b"hello, I am a text file named photo.jpg\n" * 10)


def test_truncated_jpeg() -> None:
    data = encode(photo(9, (400, 300)), "JPEG", quality=90)
    assert "truncated" in failed(data[: len(data) // 3])


def test_corrupt_jpeg() -> None:
    data = bytearray(encode(photo(10, (400, 300)), "JPEG", quality=90))
    data[2:40] = b"\xff" * 38  # smash the headers after the SOI marker
    reason = failed(bytes(data))
    assert "corrupt" in reason or "not an image" in reason


def test_jpeg_header_only() -> None:
    assert failed(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions (a decompression bomb's signature)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_with_pillows_limit() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None  # the guard is on, not disabled
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 100
    reason = failed(png_claiming(side, side))
    assert "decompression bomb" in reason


def test_above_pillows_warning_limit_is_not_an_error_but_still_a_failure_if_truncated() -> None:
    # Between 1x and 2x the limit Pillow only warns; the warning must not escape (pytest runs
    # with warnings as errors), and this file's data is truncated, so it fails cleanly.
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((1.5 * Image.MAX_IMAGE_PIXELS) ** 0.5)
    assert failed(png_claiming(side, side))


def test_random_bytes_never_raise() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 10, 100, 5000):
        assert failed(rng.integers(0, 256, n, dtype=np.uint8).tobytes())


@given(hnp.arrays(np.uint8, st.integers(1, 700)))
def test_median_u8_is_numpys_median(values: np.ndarray) -> None:
    assert median_u8(values) == float(np.median(values))
    assert median_u8(values[::-2]) == float(np.median(values[::-2]))  # strided, as columns are


# ----------------------------------------------------------------------------- flawed metadata


@pytest.mark.parametrize("itxt", [False, True], ids=["zTXt", "iTXt"])
def test_png_with_a_text_chunk_over_pillows_limit_is_read_and_noted(itxt: bool) -> None:
    # 3 MB of compressed text, more than PngImagePlugin.MAX_TEXT_CHUNK: the pixels are read,
    # the text is cut (metadata never fails a file) and the cut is noted.
    picture = hostile.picture(21)
    result = decoded(hostile.png_with_big_text(picture, itxt=itxt))
    assert any("text chunk" in note for note in result.info.notes), result.info.notes
    plain = decoded(encode(picture, "PNG"))
    assert np.array_equal(result.rgb, plain.rgb)


def test_the_text_cap_leaves_pillow_as_it_was() -> None:
    from PIL import PngImagePlugin

    before = PngImagePlugin._safe_zlib_decompress
    decoded(hostile.png_with_big_text(hostile.picture(22)))
    assert PngImagePlugin._safe_zlib_decompress is before


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_out_of_range_exif_orientation_is_taken_as_upright_and_noted(orientation: int) -> None:
    picture = hostile.picture(23)
    result = decoded(hostile.jpeg_with_exif(picture, hostile.exif_with_orientation(orientation)))
    assert result.info.orientation == 1
    assert (result.info.width, result.info.height) == picture.size
    assert result.info.notes == (f"EXIF orientation {orientation} is not 1-8: taken as upright",)


def test_decoder_warnings_become_notes_not_warnings() -> None:
    # Pillow warns about an Orientation tag with two values, and about EXIF pointing past its
    # end; pytest turns an escaping warning into an error, and this checks it never escapes.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doubled = decoded(
            hostile.jpeg_with_exif(hostile.picture(24), hostile.exif_with_orientation(6, 2))
        )
        corrupt = decoded(hostile.jpeg_with_exif(hostile.picture(25), hostile.corrupt_exif()))
    assert caught == []
    assert doubled.info.orientation == 6  # the first value, as Pillow reads it
    assert doubled.info.notes == ("Metadata Warning, tag 274 had too many entries: 2, expected 1",)
    assert corrupt.info.notes == ("Tag data larger than file. Skipping tag 271",)
    assert corrupt.info.camera_make is None


def test_a_png_with_bad_idat_checksums_decodes_like_the_intact_one() -> None:
    # Decided (docs/hostile-files.md): chunk checksums are not verified, as Pillow does not;
    # damage that breaks the compressed pixels is a decode failure, the rest decodes.
    picture = hostile.picture(26)
    result = decoded(hostile.png_with_bad_idat_crc(picture))
    assert np.array_equal(result.rgb, decoded(encode(picture, "PNG")).rgb)
    assert result.info.notes == ()


def test_notes_are_few_and_short() -> None:
    from dedupdb.decode import MAX_NOTES, NOTE_LENGTH, tidy_notes

    # 20 warnings of 7 kinds (a hostile file can make a decoder warn once per tag)
    notes = tidy_notes(tuple(f"warning {i % 7}: " + "x" * 500 for i in range(20)))
    assert len(notes) == MAX_NOTES
    assert all(len(n) <= NOTE_LENGTH for n in notes)


# ----------------------------------------------------------------------------- memory-light paths


@given(
    st.sampled_from(["I;16", "I", "F"]),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 50),
    st.integers(0, 2**32 - 1),
)
def test_16_bit_pixels_scaled_in_bands_equal_the_whole_picture_formula(
    mode: str, height: int, width: int, band: int, seed: int
) -> None:
    from dedupdb import decode as decoding

    rng = np.random.default_rng(seed)
    if mode == "I;16":
        pixels = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        image = Image.fromarray(pixels)
    elif mode == "I":
        pixels = rng.integers(-300, 70000, (height, width)).astype(np.int32)
        image = Image.fromarray(pixels, "I")
    else:
        pixels = rng.uniform(-10, 300, (height, width)).astype(np.float32)
        image = Image.fromarray(pixels, "F")
    assert image.mode == mode
    whole = np.asarray(image, dtype=np.float64)
    top = 65535.0 if mode == "I;16" or float(whole.max(initial=0)) > 255 else 255.0
    expected = np.clip(whole / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    original = decoding._SCALE_BAND_PIXELS
    decoding._SCALE_BAND_PIXELS = band  # several bands, of any height
    try:
        assert np.array_equal(decoding._scaled_to_8_bit(image), expected)
    finally:
        decoding._SCALE_BAND_PIXELS = original


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_an_opaque_alpha_channel_is_dropped_with_the_same_pixels(mode: str) -> None:
    from dedupdb.decode import to_rgb

    image = photo(27).convert(mode)
    assert image.getchannel("A").getextrema() == (255, 255)
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    composited = Image.alpha_composite(background, rgba).convert("RGB")
    assert np.array_equal(np.asarray(to_rgb(image)), np.asarray(composited))


def test_notes_show_control_characters_as_escapes() -> None:
    from dedupdb.decode import tidy_notes

    assert tidy_notes(["tag \x1b]0;title\x07 odd\nline"]) == ("tag \\x1b]0;title\\x07 odd line",)
