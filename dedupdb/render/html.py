"""The HTML report: one self-contained file (inline CSS, JS and thumbnails; no network).

The report's data is embedded as JSON (escaped by Jinja's ``tojson``, so no file name can
close the script element) and a small vanilla script renders one page of clusters at a time,
with a filter box, so a report of 10,000 clusters stays fast. The page chrome is rendered by
one autoescaped Jinja environment over the packaged ``templates/``.

Thumbnails are the one place the report decodes images: small JPEGs made from the files at
report time, embedded as data: URIs; a file that is gone or unreadable gets none (the page
shows a placeholder saying so).
"""

from __future__ import annotations

import base64
import io
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jinja2
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import __version__
from ..decode import to_rgb
from ..keeper_rules import WEIGHTS, human_bytes
from ..report import Report, ReportCluster, cropped_members
from .parts import in_file_frame, member_words, outlines

THUMB_SIZE = 160
THUMB_QUALITY = 70
# Thumbnails for the first clusters only (by reclaimable bytes): decoding every file of a
# 10,000-cluster report would take long and weigh hundreds of megabytes.
DEFAULT_THUMBNAIL_CLUSTERS = 500
PAGE_SIZE = 25

# Member fields the page does not show: left out of the embedded data to keep it light.
_NOT_SHOWN = ("path_bytes_b64", "mtime_ns", "lossless", "exif_tags", "sharpness")

ThumbProgress = Callable[[int, int], None]


def thumbnail_data_uri(path: bytes, size: int = THUMB_SIZE) -> str | None:
    """A small upright JPEG of the file as a data: URI, or None when it cannot be read."""
    jpeg = thumbnail_jpeg(path, size)
    if jpeg is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def thumbnail_jpeg(
    path: bytes, size: int = THUMB_SIZE, quality: int = THUMB_QUALITY
) -> bytes | None:
    """An upright JPEG of the file fitting in size x size, or None when it cannot be read."""
    try:
        with warnings.catch_warnings():
            # The index kept the file's warnings (corrupt EXIF, a bomb-sized picture) as its
            # note; a thumbnail has nothing to add on the terminal.
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if im.format == "JPEG":
                    im.draft("RGB", (size * 2, size * 2))
                im.seek(0)
                upright = ImageOps.exif_transpose(im)
                if upright.mode.startswith("I;16"):  # Pillow cannot reduce these: 32-bit
                    upright = upright.convert("I")
                upright.thumbnail((size, size), Image.Resampling.LANCZOS)
                rgb = to_rgb(upright)
    except (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError, MemoryError):
        return None
    except Image.DecompressionBombError:
        return None
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def make_thumbnails(
    report: Report,
    clusters: int = DEFAULT_THUMBNAIL_CLUSTERS,
    progress: ThumbProgress | None = None,
    workers: int | None = None,
) -> dict[int, str]:
    """Image id -> data URI for the members of the first ``clusters`` clusters, decoded by
    ``workers`` threads (default one per core) when there are many."""
    members = [m for c in report.clusters[:clusters] for m in c.members]
    paths = [m.raw_path for m in members]
    workers = workers or os.cpu_count() or 1
    out: dict[int, str] = {}
    # Around the threads too: each thumbnail's own ``catch_warnings`` saves and restores the
    # process-wide filters, which threads interleave; this one restores them once all are done.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = _thumbnails(paths, workers)
        for done, (member, uri) in enumerate(zip(members, made, strict=True), start=1):
            if uri is not None:
                out[member.image_id] = uri
            if progress is not None:
                progress(done, len(members))
    return out


def _thumbnails(paths: list[bytes], workers: int) -> Iterator[str | None]:
    """Thumbnails in order. Threads suffice: Pillow releases the GIL while it decodes and
    resizes, and threads start at once (a process pool would import dedupdb again)."""
    if workers <= 1 or len(paths) < 2 * workers:
        yield from (thumbnail_data_uri(p) for p in paths)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="dedupdb-thumb") as pool:
        yield from pool.map(thumbnail_data_uri, paths)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dedupdb.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["bytes"] = human_bytes
    return env


def distance_notes(cluster: ReportCluster, settings: Mapping[str, Any]) -> dict[int, str]:
    """Why a member's distance from the keeper may exceed the report's threshold, in words,
    by image id: a cropped copy is compared on the matching part of the picture (its whole
    frame is far from the keeper's), and a pair found by the second hash is within that
    hash's threshold rather than the first's."""
    cropped = cropped_members(cluster)
    threshold = settings.get("threshold")
    second = settings.get("second_hash")
    notes = {}
    for member in cluster.members:
        if member.keeper:
            continue
        if member.image_id in cropped:
            notes[member.image_id] = "cropped copy: matched on the part both show"
        elif cluster.keeper in cropped:
            notes[member.image_id] = "the keeper is a cropped copy of it"
        elif isinstance(threshold, int) and member.distance > threshold:
            notes[member.image_id] = (
                f"matched on {second}, the second hash"
                if second
                else "matched through the other copies"
            )
    return notes


def _parts_shown(cluster: ReportCluster) -> dict[int, dict[str, Any]]:
    """Image id -> what the page shows of part-copies (``parts``): ``part``, the member's
    words, and ``outlines``, the parts drawn over its thumbnail, each a ``region`` in
    fractions of the file's frame and a ``label``. Members of no such pair get nothing (the
    page shows them as it always did)."""
    shown: dict[int, dict[str, Any]] = {
        image_id: {"part": words} for image_id, words in member_words(cluster).items()
    }
    by_id = {m.image_id: m for m in cluster.members}
    for image_id, drawn in outlines(cluster).items():
        shown.setdefault(image_id, {})["outlines"] = [
            {"region": list(in_file_frame(by_id[image_id], o.region)), "label": o.label}
            for o in drawn
        ]
    return shown


def render_html(
    report: Report,
    thumbnails: Mapping[int, str] | None = None,
    *,
    thumbnail_clusters: int = DEFAULT_THUMBNAIL_CLUSTERS,
    page_size: int = PAGE_SIZE,
) -> str:
    """The report as one self-contained HTML page."""
    data: dict[str, Any] = report.to_dict()
    data["thumbnails"] = {str(k): v for k, v in (thumbnails or {}).items()}
    data["thumbnail_clusters"] = thumbnail_clusters if thumbnails is not None else 0
    data["weights"] = WEIGHTS
    for cluster, built in zip(data["clusters"], report.clusters, strict=True):
        cluster.pop("pairs", None)  # not shown; keeps the page light
        notes = distance_notes(built, report.settings)
        parts = _parts_shown(built)
        for member in cluster["members"]:
            if member["image_id"] in notes:
                member["note"] = notes[member["image_id"]]
            member.update(parts.get(member["image_id"], {}))
            for unused in _NOT_SHOWN:
                member.pop(unused, None)
            if (member.get("picture_width"), member.get("picture_height")) in (
                (member["width"], member["height"]),
                (None, None),
            ):  # no added borders: the file's size says it (keeps the page light)
                member.pop("picture_width", None)
                member.pop("picture_height", None)
            member["name"] = os.path.basename(member["path"])
            member["folder"] = os.path.dirname(member["path"])
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        data=data,
        version=__version__,
        page_size=page_size,
    )
