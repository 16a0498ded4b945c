"""``DaskExecutor``: the index's per-file work on the workers of a Dask cluster.

It implements the execution seam (``executor.Executor``) with ``distributed.Client``: each
task is one ``Client.submit`` of the same pure per-file function the local pool runs (read,
hash, decode: ``RUN_FILE``), results are taken in completion order, and the indexing process
stays the only database writer, committing each as it arrives. The workers read the files
themselves: the photo folder must be mounted at the same path on every machine (the task
carries the path, never the bytes).

Crash safety is Dask's: a worker process that dies (a decoder segfault, the out-of-memory
killer) is restarted by its nanny and its tasks are run again elsewhere; a task that has been
running on ``distributed.scheduler.allowed-failures`` + 1 workers that all died (3 + 1 by
default) fails with ``KilledWorker``. Dask counts a death against every task the worker held,
so a file that only waited behind the culprit can fail so too: a task that fails with
``KilledWorker`` is therefore run once more alone on the cluster (nothing else submitted until
it is answered), and only then answered as ``WorkerDied`` (a ``Lost``): that one file is
recorded as failed with the reason, the run goes on. A task whose function raised
is retried ``retries`` times (``Client.submit(retries=...)``), then answered as ``Lost`` with
the error, as the local pool does.

Unlike the local pool, a Dask executor does not enforce the per-file ``--timeout`` nor the
per-worker ``--max-memory`` (Dask's own ``--memory-limit`` restarts a worker that grows past
it, which then costs the file it was on, as above).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from distributed import Client, Future, KilledWorker, wait

from ..pool import Lost

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["RUN_FILE", "DaskExecutor", "WorkerDied", "index_executor"]

# Tasks in flight per worker thread: the next one waits on the worker while one runs, so a
# worker never idles on a round trip to the client (the local pool's DEPTH).
DEPTH = 2


@dataclass(frozen=True)
class WorkerDied(Lost):
    """A task whose Dask workers all died while running it (``distributed.KilledWorker``)."""

    attempts: int = 0  # workers that died running it
    worker: str = ""  # the last one's address

    @property
    def reason(self) -> str:
        return (
            f"the Dask worker running it died, {self.attempts} times "
            f"(KilledWorker; last on {self.worker})"
        )


class DaskExecutor(Generic[T, R]):
    """Runs ``function`` over submitted tasks on the cluster behind ``client`` (which the
    caller opened and closes, unless ``owns_client``). See the module docstring.

    At most ``DEPTH`` tasks per worker thread are on the cluster at once, the rest wait here:
    a worker that dies then takes few innocent tasks down with it (each counts as one of
    their ``allowed-failures``), and a run of millions of files does not flood the scheduler.
    """

    def __init__(
        self,
        client: Client,
        function: Callable[[T], R],
        *,
        retries: int = 0,
        in_flight: int | None = None,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.owns_client = owns_client
        self.function = function
        self.retries = retries
        self._in_flight = in_flight
        self._waiting: deque[T] = deque()
        self._running: dict[Future[R], tuple[T, bool]] = {}  # -> (task, sent alone)
        self._suspects: deque[T] = deque()  # failed with KilledWorker among other tasks
        self._seen: dict[str, float] = {}  # task key -> when it was first seen running

    def __enter__(self) -> DaskExecutor[T, R]:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(kill=kind is not None)

    def start(self) -> None:
        """Nothing to start: the cluster runs already (its workers may join later)."""

    def submit(self, task: T) -> None:
        self._waiting.append(task)
        self._fill()

    def results(self) -> Iterator[tuple[T, R | Lost]]:
        while self._running or self._waiting or self._suspects:
            if self._suspects and not self._running:
                self._send(self._suspects.popleft(), alone=True)
            else:
                self._fill()
            # ``wait`` finds its client as the current one: the command's client is nobody's
            # default (a library must not set one for its caller).
            with self.client.as_current():
                done, _ = wait(list(self._running), return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
            for future in done:
                task, alone = self._running.pop(future)
                self._seen.pop(str(future.key), None)
                outcome = _outcome(future)
                future.release()
                if isinstance(outcome, WorkerDied) and not alone:
                    self._suspects.append(task)  # perhaps only a neighbour of the culprit
                    continue
                yield task, outcome

    def activity(self) -> Sequence[tuple[int | str, T | None, float | None]]:
        """Each worker's address, a task it is running (or None) and for how long."""
        by_key = {str(future.key): task for future, (task, _) in self._running.items()}
        now = time.monotonic()
        out: list[tuple[int | str, T | None, float | None]] = []
        processing: dict[str, Any] = self.client.processing()  # type: ignore[no-untyped-call]
        for address, keys in sorted(processing.items()):
            mine = [str(k) for k in keys if str(k) in by_key]
            if not mine:
                out.append((address, None, None))
                continue
            since = self._seen.setdefault(mine[0], now)
            out.append((address, by_key[mine[0]], now - since))
        return out

    def close(self, *, kill: bool = False) -> None:
        """Forget waiting tasks and cancel those on the cluster (they cannot be answered now);
        the cluster stays up, and the client unless this executor owns it."""
        self._waiting.clear()
        self._suspects.clear()
        if self._running:
            self.client.cancel(list(self._running))  # type: ignore[no-untyped-call]
            self._running.clear()
        if self.owns_client:
            self.client.close()  # type: ignore[no-untyped-call]

    def _limit(self) -> int:
        if self._in_flight is not None:
            return max(1, self._in_flight)
        threads = sum(self.client.nthreads().values())  # type: ignore[no-untyped-call]
        return DEPTH * max(1, threads)

    def _fill(self) -> None:
        if self._suspects or any(alone for _, alone in self._running.values()):
            return  # a suspect runs alone: nothing else until it is answered
        limit = self._limit() if self._waiting else 0
        while self._waiting and len(self._running) < limit:
            self._send(self._waiting.popleft())

    def _send(self, task: T, *, alone: bool = False) -> None:
        future = self.client.submit(self.function, task, pure=False, retries=self.retries)
        self._running[future] = (task, alone)


def _outcome(future: Future[R]) -> R | Lost:
    """A finished future's result, or ``Lost`` with why it has none. (A result whose worker
    died before it was fetched is computed again: ``result()`` waits for it.)"""
    try:
        result: R = future.result()
    except KilledWorker as died:
        return WorkerDied(attempts=died.allowed_failures + 1, worker=died.last_worker.address)
    except CancelledError:
        return Lost(error="cancelled on the Dask cluster")
    except Exception as error:  # the task raised: a bug, answered as the local pool does
        return Lost(error=f"{type(error).__name__}: {error}")
    return result


def _run_file(task: Any) -> Any:
    """The local pool's per-file function, imported on the worker when it runs (this module
    stays light for the client)."""
    from ..fingerprint.files import process_file

    return process_file(task)


# The per-file function the local pool runs, for ``index`` tasks.
RUN_FILE: Callable[[Any], Any] = _run_file


def index_executor(client: Client, *, owns_client: bool = False) -> DaskExecutor[Any, Any]:
    """The executor ``index`` takes to run its files on the cluster behind ``client``."""
    return DaskExecutor(client, RUN_FILE, owns_client=owns_client)
