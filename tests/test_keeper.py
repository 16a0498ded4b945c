"""The keeper is the original: real files indexed and reported, one test per rule of
docs/keeper.md (conversions, camera metadata, compression, sharpness, folder hints), and the
apply plan's warning when the keeper lacks metadata a removed copy has."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import photo
from PIL import Image, ImageFilter

from dedupdb.cli import cli
from dedupdb.decode import decode
from dedupdb.indexing import IndexOptions, index
from dedupdb.report import Report, ReportCluster, ReportOptions, build_report
from dedupdb.signals import conversion_fit, dct_sample, jpeg_quality, quantization_table
from dedupdb.store import Store

SEQUENTIAL = IndexOptions(workers=1)
SIZE = (640, 480)
T0 = 1_700_000_000  # seconds: the original's modification time; copies are written later


def textured(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """A photo-like picture with fine detail (so JPEG keeps many non-zero coefficients)."""
    base = np.asarray(photo(seed, size), dtype=np.float64)
    detail = np.random.default_rng(seed + 1).normal(0, 6, base.shape)
    return Image.fromarray(np.clip(base + detail, 0, 255).astype(np.uint8))


def save(
    image: Image.Image, path: Path, when: int, fmt: str | None = None, **options: object
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **options)
    os.utime(path, (when, when))
    return path


def decoded(path: Path) -> Image.Image:
    """A file's full decode, as a converter (Pillow, ImageMagick: libjpeg) writes it out."""
    with Image.open(path) as im:
        return im.convert("RGB")


def camera_exif(taken: str = "2021:06:01 10:00:00") -> Image.Exif:
    exif = Image.Exif()
    exif[271], exif[272], exif[306] = "Canon", "EOS 5D", taken
    return exif


def report_of(store: Store, root: Path, options: ReportOptions | None = None) -> Report:
    index(store, root, SEQUENTIAL)
    return build_report(store, options or ReportOptions())


def only_cluster(report: Report) -> ReportCluster:
    assert len(report.clusters) == 1, [[m.path for m in c.members] for c in report.clusters]
    return report.clusters[0]


def kept(cluster: ReportCluster) -> str:
    return os.path.basename(next(m.path for m in cluster.members if m.keeper))


# ----------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("quality", [75, 90, 95])
@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP"])
def test_a_lossless_conversion_of_a_jpeg_ranks_below_it(
    store: Store, tmp_path: Path, quality: int, fmt: str
) -> None:
    root = tmp_path / "photos"
    original = save(textured(1), root / "Pictures" / "IMG_0001.jpg", T0, quality=quality)
    ext = {"PNG": "png", "TIFF": "tif", "BMP": "bmp"}[fmt]
    save(decoded(original), root / "Downloads" / f"IMG_0001.{ext}", T0 + 60, fmt)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "IMG_0001.jpg"
    name = "TIFF" if fmt == "TIFF" else fmt
    assert cluster.reasons[0].startswith(
        f"the {name} IMG_0001.{ext} is a conversion of this JPEG: same pixels, "
    )
    assert cluster.reasons[0].endswith("x larger")


def test_a_conversion_is_proven_by_its_pixels_not_its_file_time(
    store: Store, tmp_path: Path
) -> None:
    # Copied without keeping the times, the PNG is now the older file.
    root = tmp_path / "photos"
    original = save(textured(16), root / "a.jpg", T0 + 60, quality=88)
    save(decoded(original), root / "b.png", T0)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "a.jpg"
    assert "is a conversion of this JPEG" in cluster.reasons[0]


def test_a_conversion_of_an_exif_rotated_jpeg_is_one(store: Store, tmp_path: Path) -> None:
    # The JPEG's pixels are stored on their side (odd sizes: the grid moves when turned); the
    # PNG was written upright, as viewers and converters apply the orientation.
    root = tmp_path / "photos"
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = textured(2, (477, 635)).transpose(Image.Transpose.ROTATE_90)
    original = save(sideways, root / "a.jpg", T0, quality=85, exif=exif)
    with Image.open(original) as im:
        upright = im.transpose(Image.Transpose.ROTATE_270).convert("RGB")
    save(upright, root / "b.png", T0 + 60)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "a.jpg"
    assert "is a conversion of this JPEG" in cluster.reasons[0]


def test_a_lossless_original_beats_its_jpeg_export(store: Store, tmp_path: Path) -> None:
    # The other way round: the PNG is the original, the JPEG was made from it (quality 90 to
    # 98: its decode is near, but the PNG's pixels never lay on its lattice).
    root = tmp_path / "photos"
    original = save(textured(3), root / "shot.png", T0)
    for quality in (90, 98):
        save(decoded(original), root / f"shot-q{quality}.jpg", T0 + quality, quality=quality)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "shot.png"
    assert not any("conversion" in reason for reason in cluster.reasons)


def test_a_conversion_of_a_highest_quality_jpeg_holds_the_same_picture(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    original = save(textured(5), root / "a.jpg", T0, quality=100)
    save(decoded(original), root / "b.png", T0 + 60)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "a.jpg"
    assert (
        "the same picture to within a level (saved at the highest quality)" in (cluster.reasons[0])
    )


def test_a_conversion_of_a_lossy_webp_ranks_below_it(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    original = save(textured(6), root / "a.webp", T0, quality=80)
    save(decoded(original), root / "b.png", T0 + 60)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "a.webp"
    assert cluster.reasons[0].startswith("the PNG b.png is a conversion of this lossy WebP")


def test_conversion_fit_tells_a_decode_from_a_picture() -> None:
    picture = textured(7)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    with Image.open(buffer) as jpeg:
        steps = quantization_table(jpeg.quantization)
        decode_of = jpeg.convert("RGB")
    assert steps is not None and jpeg_quality(steps) == 85
    fit_decode = conversion_fit(dct_sample(decode_of), steps)
    fit_picture = conversion_fit(dct_sample(picture), steps)
    assert fit_decode is not None and fit_decode > 0.8
    assert fit_picture is not None and fit_picture < 0.2
    # A decoder that rounds differently (+-1 level) still fits.
    jitter = np.random.default_rng(0).integers(-1, 2, (SIZE[1], SIZE[0], 3))
    shaken = np.clip(np.asarray(decode_of, dtype=np.int64) + jitter, 0, 255).astype(np.uint8)
    shaken_fit = conversion_fit(dct_sample(Image.fromarray(shaken)), steps)
    assert shaken_fit is not None and shaken_fit > 0.4


def test_the_index_stores_the_conversion_signals(tmp_path: Path) -> None:
    path = save(textured(8), tmp_path / "a.jpg", T0, quality=90)
    jpeg = decode(path.read_bytes())
    assert not isinstance(jpeg, type(None)) and hasattr(jpeg, "info")
    png = decode(save(decoded(path), tmp_path / "a.png", T0).read_bytes())
    assert hasattr(png, "info") and hasattr(jpeg, "info")
    assert jpeg.info.jpeg_quant is not None and jpeg.info.dct_sample is None  # type: ignore[union-attr]
    assert png.info.dct_sample and png.info.jpeg_quant is None  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- compression


def test_a_higher_quality_resave_of_the_original_does_not_win_on_bytes(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    original = save(textured(9), root / "IMG_0009.jpg", T0, quality=80)
    save(decoded(original), root / "edited" / "IMG_0009.jpg", T0 + 60, quality=98)
    save(decoded(original), root / "IMG_0009-small.jpg", T0 + 90, quality=30)
    report = report_of(store, root)
    cluster = only_cluster(report)
    assert kept(cluster) == "IMG_0009.jpg"
    assert next(m.path for m in cluster.members if m.keeper).endswith("photos/IMG_0009.jpg")
    scores = {os.path.basename(os.path.dirname(m.path)) + "/" + os.path.basename(m.path):
              m.score_parts["bpp"] for m in cluster.members}  # fmt: skip
    assert scores["photos/IMG_0009.jpg"] == scores["edited/IMG_0009.jpg"] == 1.0
    assert scores["photos/IMG_0009-small.jpg"] == 0.4  # quality 30 of 75


# ----------------------------------------------------------------------------- sharpness


def copies_with_artifacts(root: Path, seed: int) -> None:
    """An original and its noisy, over-sharpened and denoised copies, all JPEG quality 90,
    written at one time (no hint from the clock), in plain names."""
    picture = textured(seed)
    save(picture, root / "original.jpg", T0, quality=90)
    pixels = np.asarray(picture, dtype=np.float64)
    noisy = pixels + np.random.default_rng(seed).normal(0, 20, pixels.shape)
    save(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), root / "noisy.jpg", T0,
         quality=90)  # fmt: skip
    halos = picture.filter(ImageFilter.UnsharpMask(radius=3, percent=300, threshold=0))
    save(halos, root / "sharpened.jpg", T0, quality=90)
    save(picture.filter(ImageFilter.MedianFilter(3)), root / "denoised.jpg", T0, quality=90)


def test_noise_and_halos_earn_no_sharpness(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    copies_with_artifacts(root, 10)
    cluster = only_cluster(report_of(store, root))
    sharpness = {os.path.basename(m.path): m.sharpness for m in cluster.members}
    parts = {os.path.basename(m.path): m.score_parts["sharpness"] for m in cluster.members}
    # The measure rises with noise and halos, as it does with detail ...
    assert sharpness["noisy.jpg"] > 2 * sharpness["original.jpg"]
    assert sharpness["sharpened.jpg"] > 2 * sharpness["original.jpg"]
    # ... so copies measuring far over most copies count as edited, and the denoised copy
    # as blurred: only the original scores 1.
    assert parts["original.jpg"] == 1.0
    assert max(parts["noisy.jpg"], parts["sharpened.jpg"], parts["denoised.jpg"]) < 0.5
    assert kept(cluster) == "original.jpg"
    assert cluster.reasons == [
        f"no added noise or over-sharpening: sharpened.jpg measures "
        f"{sharpness['sharpened.jpg']:.3g} against {sharpness['original.jpg']:.3g} "
        "for most copies"
    ]


def test_two_copies_alone_earn_nothing_for_being_sharper(store: Store, tmp_path: Path) -> None:
    # A noisy copy and its original: nothing tells which is the blurred one, so the sharper
    # earns nothing ("sharper: 208 vs 0.405" no more); the clock then tells.
    root = tmp_path / "photos"
    copies_with_artifacts(root, 12)
    for name in ("sharpened.jpg", "denoised.jpg"):
        (root / name).unlink()
    os.utime(root / "noisy.jpg", (T0 + 60, T0 + 60))
    cluster = only_cluster(report_of(store, root))
    assert [m.score_parts["sharpness"] for m in cluster.members] == [1.0, 1.0]
    assert kept(cluster) == "original.jpg"
    assert cluster.reasons == ["same quality; oldest file"]


def test_the_original_is_kept_over_noisy_sharpened_and_denoised_copies(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    copies_with_artifacts(root, 11)
    for name in ("noisy.jpg", "sharpened.jpg", "denoised.jpg"):  # the copies came later
        os.utime(root / name, (T0 + 60, T0 + 60))
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "original.jpg"


# ----------------------------------------------------------------------------- metadata


def test_camera_metadata_is_kept_over_a_higher_score(store: Store, tmp_path: Path) -> None:
    # A lossless file scores higher for its format and a few more pixels; the JPEG has the
    # date taken and is not clearly worse (94 % of the pixels, quality 92): it is kept.
    root = tmp_path / "photos"
    picture = textured(12)
    save(picture, root / "edit.png", T0)
    dated = Image.Exif()
    dated[306] = "2021:06:01 10:00:00"
    save(picture.resize((620, 465)), root / "DSC_0012.jpg", T0 + 60, quality=92, exif=dated)
    cluster = only_cluster(report_of(store, root))
    scores = {os.path.basename(m.path): m.score for m in cluster.members}
    assert scores["edit.png"] > scores["DSC_0012.jpg"]
    assert kept(cluster) == "DSC_0012.jpg"
    assert cluster.reasons[0] == (
        "keeps the camera's metadata (taken 2021-06-01); edit.png scores higher but has none"
    )


def apply_args(store: Store, tmp_path: Path) -> list[str]:
    """The database (SQLite or, with --backend postgresql, the server) and a quarantine folder
    (a server database has no default one)."""
    return ["--db", store.url, "--move-to", str(tmp_path / "quarantine")]


def apply_dry_run(store: Store, tmp_path: Path) -> Result:
    """``dedupdb report`` then ``dedupdb apply`` (a dry run: the plan), as a user runs them."""
    made = CliRunner().invoke(cli, ["report", "--db", store.url, "--quiet"])
    assert made.exit_code == 0, made.output
    return CliRunner().invoke(cli, ["apply", *apply_args(store, tmp_path)])


def test_a_clearly_smaller_copy_with_metadata_loses_and_the_plan_says_so(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    picture = textured(13)
    save(picture, root / "full.jpg", T0 + 60, quality=92)
    save(picture.resize((320, 240)), root / "DSC_0013.jpg", T0, quality=92, exif=camera_exif())
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "full.jpg"
    result = apply_dry_run(store, tmp_path)
    assert result.exit_code == 0, result.output
    assert "! it has camera Canon EOS 5D, date taken 2021-06-01; the keeper has not" in (
        result.output
    )
    assert "1 copies hold camera metadata their keeper lacks" in result.output
    assert (root / "DSC_0013.jpg").exists()  # a dry run
    # With --yes, said again before acting.
    done = CliRunner().invoke(cli, ["apply", *apply_args(store, tmp_path), "--yes"])
    assert done.exit_code == 0, done.output
    warning = done.output.index("has camera Canon EOS 5D, date taken 2021-06-01; its keeper")
    assert warning < done.output.index("Run ")
    assert not (root / "DSC_0013.jpg").exists() and (root / "full.jpg").exists()


def test_no_warning_when_the_keeper_has_the_metadata(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    picture = textured(14)
    save(picture, root / "DSC_0014.jpg", T0, quality=92, exif=camera_exif())
    save(picture, root / "copy.jpg", T0 + 60, quality=92)
    cluster = only_cluster(report_of(store, root))
    assert kept(cluster) == "DSC_0014.jpg"
    result = apply_dry_run(store, tmp_path)
    assert result.exit_code == 0, result.output
    assert "metadata" not in result.output


# ----------------------------------------------------------------------------- folder hints


def identical_copies(root: Path, folders: list[str]) -> None:
    data = io.BytesIO()
    textured(15).save(data, "JPEG", quality=90)
    for folder in folders:
        path = root / folder / "IMG_0015.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.getvalue())
        os.utime(path, (T0, T0))  # a copy that kept the time: the clock cannot tell


def test_a_camera_folder_is_kept_over_downloads(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "p"
    identical_copies(root, ["Downloads/x", "DCIM/100CANON"])
    cluster = only_cluster(report_of(store, root))
    keeper = next(m.path for m in cluster.members if m.keeper)
    assert "/DCIM/100CANON/" in keeper
    assert cluster.reasons == [
        "identical copies; in a camera folder (DCIM; a default hint, --avoid overrides it)"
    ]


@pytest.mark.parametrize("folder", ["WhatsApp Images", "Telegram", "export", "web", "backup"])
def test_copies_in_messenger_export_web_and_backup_folders_lose(
    store: Store, tmp_path: Path, folder: str
) -> None:
    root = tmp_path / "p"
    identical_copies(root, [f"{folder}/2021", "photos/2021"])
    cluster = only_cluster(report_of(store, root))
    assert "/photos/2021/" in next(m.path for m in cluster.members if m.keeper)
    assert cluster.reasons == [
        f"identical copies; the others are in a {folder} folder "
        "(a default hint, --prefer overrides it)"
    ]


def test_the_user_s_rules_override_the_folder_hints(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "p"
    identical_copies(root, ["Downloads", "DCIM"])
    report = report_of(store, root, ReportOptions(prefer=("Downloads",)))
    keeper = next(m.path for m in only_cluster(report).members if m.keeper)
    assert "/Downloads/" in keeper
    assert only_cluster(report).reasons[0] == "in a preferred folder (--prefer Downloads)"
