"""Rendering: one autoescaped Jinja environment over the packaged templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .. import __version__
from ..keeper_rules import human_bytes

TEMPLATES = Path(__file__).parent / "templates"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: object) -> str:
    """Control characters in a name made visible (``\\x1b``) rather than acted on; the
    result is still escaped by the template's autoescape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    env.filters["visible"] = visible
    env.globals["version"] = __version__
    return env


ENV = _environment()


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template with what every page needs: the navigation, the CSRF token, the report."""
    html = ENV.get_template(name).render(
        request=request,
        nav=request.app.state.nav,
        path=request.url.path,
        csrf=request.app.state.guard.csrf,
        reports=request.app.state.review.reports,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
