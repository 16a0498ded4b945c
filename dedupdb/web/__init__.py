"""``dedupdb serve``: review the duplicates in a browser, decide, apply and undo.

A Starlette application over the library (``report``, ``review``, ``decisions``, ``plan``,
``actions``): the pages call the same functions as the CLI. ``create_app`` builds it;
``server.serve`` runs it with uvicorn. Needs the ``serve`` extra: ``pip install 'dedupdb[serve]'``.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
