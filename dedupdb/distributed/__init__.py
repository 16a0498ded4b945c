"""dedupdb on a Dask cluster: the all-pairs search partitioned over workers (``search``) and
the index's per-file work sent to workers (``executor``). Dask is an extra
(``pip install 'dedupdb[dask]'``): it is imported only when a cluster is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DedupdbError

if TYPE_CHECKING:
    from distributed import Client

    from .executor import DaskExecutor

__all__ = ["DEFAULT_CONNECT_TIMEOUT_S", "connect", "open_client"]

# How long to wait for the scheduler to answer before saying it cannot be reached.
DEFAULT_CONNECT_TIMEOUT_S = 30.0


def open_client(address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> Client:
    """A client of the Dask cluster whose scheduler is at ``address`` (e.g. ``tcp://host:8786``);
    a clear error when Dask is not installed or the scheduler does not answer."""
    try:
        from distributed import Client
    except ImportError as err:
        raise DedupdbError(
            "a Dask scheduler was given, but Dask is not installed",
            "pip install 'dedupdb[dask]'",
        ) from err
    try:
        return Client(address, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as err:
        raise DedupdbError(
            f"cannot reach the Dask scheduler at {address}: {err}",
            "check the address (tcp://host:8786) and that `dask scheduler` runs there",
        ) from err


def connect(address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> DaskExecutor[Any, Any]:
    """The index's executor on the Dask cluster whose scheduler is at ``address`` (e.g.
    ``tcp://host:8786``); closing it closes its client (the cluster stays up)."""
    from .executor import index_executor

    return index_executor(open_client(address, timeout), owns_client=True)
