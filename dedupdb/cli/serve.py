"""`dedupdb serve`: the review UI in a browser."""

from __future__ import annotations

from typing import Any

import click

from ..errors import DedupdbError
from .base import (
    cli,
    db_option,
    handle_errors,
    open_db,
)


@cli.command("serve")
@db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any but the loopback requires a token (made up if not given).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: a free one).",
)
@click.option(
    "--token",
    envvar="DEDUPDB_TOKEN",
    metavar="TOKEN",
    help="Require this access token (in the URL once, then a cookie) [env DEDUPDB_TOKEN].",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the address in a browser.")
@handle_errors
def serve_command(
    db: str | None, host: str, port: int, token: str | None, open_browser: bool
) -> None:
    """Review the duplicates in a browser: compare the copies, choose keepers, mark
    not-duplicates, then apply (the same plan and journal as `dedupdb apply`) and undo.
    Prints the address; Ctrl+C stops the server. Needs the serve extra:
    pip install 'dedupdb[serve]'.

    \b
    Examples:
      dedupdb serve --open
      dedupdb serve --db /srv/photos.sqlite --port 9000
      dedupdb serve --host 0.0.0.0 --port 8765      # prints a URL with a token
    """
    try:
        from ..web.server import serve
    except ImportError as err:
        raise DedupdbError(
            f"dedupdb serve needs its extra packages ({err.name} is missing)",
            "pip install 'dedupdb[serve]'",
        ) from err

    def ready(address: Any) -> None:
        click.echo(f"dedupdb review: {address.url}  (Ctrl+C stops it)")
        if open_browser:
            import webbrowser

            webbrowser.open(address.url)

    store = open_db(db, create=False)
    try:
        serve(store, host, port, token=token, on_ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
