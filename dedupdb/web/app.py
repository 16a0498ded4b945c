"""The application: one Starlette app, its areas' routes, one Jinja environment.

Each area of the UI is a module of ``routes/`` with ``ROUTES`` (its Starlette routes) and
``NAV`` (its entries in the navigation bar, if any); adding a page is adding a module to
``AREAS``. Templates (``pages.render``) extend ``base.html``, which draws the navigation
from ``NAV``.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ..report import ReportOptions
from ..store import Store
from .images import ThumbnailCache
from .routes import act, dashboard, history, images, review
from .security import Guard, GuardMiddleware
from .state import State

HERE = Path(__file__).parent
# The areas of the UI, in the navigation bar's order.
AREAS = (review, act, history, dashboard, images)


def default_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dedupdb")) / "thumbnails"


def create_app(
    store: Store,
    *,
    token: str | None = None,
    cache_dir: Path | None = None,
    options: ReportOptions | None = None,
    build: bool = True,
) -> Starlette:
    """The review application over an open store.

    ``token``: required by every request when set (see ``security``); without it only
    loopback addresses are answered. ``build``: start building the report at once.
    """
    routes: list[BaseRoute] = [r for area in AREAS for r in area.ROUTES]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    guard = Guard(token)
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=guard)])
    state = State(store, options)
    app.state.review = state
    app.state.nav = [entry for area in AREAS for entry in getattr(area, "NAV", ())]
    app.state.guard = guard
    app.state.thumbs = ThumbnailCache(Path(cache_dir) if cache_dir else default_cache())
    app.state.quarantine_hint = os.fspath(store.sqlite_path.parent) if store.sqlite_path else ""
    if build:
        state.start()
    return app
