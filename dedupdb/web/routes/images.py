"""Pictures by image id: thumbnails (rendered on demand, cached) and the full-size file."""

from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..images import BROWSER_FORMATS, FULL_SIZE, PictureGone, ThumbnailCache, lookup, thumb_size

# The cached files are named by content: the same URL may show another picture only when the
# index changes, so browsers keep them a short while.
_CACHE = {"Cache-Control": "private, max-age=300", "Content-Disposition": "inline"}


async def thumbnail(request: Request) -> Response:
    try:
        asked = int(request.query_params.get("w", "320"))
    except ValueError:
        asked = 320
    return await _rendered(request, thumb_size(asked))


async def _rendered(request: Request, size: int) -> Response:
    cache: ThumbnailCache = request.app.state.thumbs
    store = request.app.state.review.store
    image_id: int = request.path_params["image_id"]
    try:
        picture = await run_in_threadpool(lookup, store, image_id)
    except PictureGone as gone:
        return PlainTextResponse(str(gone), status_code=404)
    path = await run_in_threadpool(cache.get, picture, size)
    if path is None:
        return PlainTextResponse(f"image {image_id} cannot be decoded", status_code=415)
    return FileResponse(path, media_type="image/jpeg", headers=_CACHE)


async def full(request: Request) -> Response:
    """The file itself, streamed, when browsers show its format; else a large JPEG of it."""
    store = request.app.state.review.store
    image_id: int = request.path_params["image_id"]
    try:
        picture = await run_in_threadpool(lookup, store, image_id)
    except PictureGone as gone:
        return PlainTextResponse(str(gone), status_code=404)
    media_type = BROWSER_FORMATS.get(picture.format)
    if media_type is None:
        return await _rendered(request, FULL_SIZE)
    return FileResponse(os.fsdecode(picture.path), media_type=media_type, headers=_CACHE)


ROUTES = [
    Route("/image/{image_id:int}/thumb", thumbnail),
    Route("/image/{image_id:int}/full", full),
]
