"""Run the shards of one analysis on several processes or a Dask cluster.

The engine splits an analysis by flow (``shard=(i, n)``: the flows whose canonical key hash is
``i`` modulo ``n``; both directions of a connection have one key, and IP fragments are reassembled
before the split). Here the ``n`` shards become ``n`` tasks: processes of this machine
(:class:`concurrent.futures.ProcessPoolExecutor`, standard library) or Dask tasks on a
``distributed.Client``. Each task's result is handed to ``fold`` in shard order as soon as it and
those before it are done, so the caller merges them one at a time and never holds every part
(pcapan.api does the merge: this module knows nothing of what a shard computes).

Progress: each task gets a :class:`Reporter` that sends a few messages a second (shard, file
number, file name, bytes read, file size) through a queue (a multiprocessing queue for
processes, a ``distributed.Queue`` for Dask); the caller's ``progress(name, done, total)`` sees
per file the mean over the shards of the bytes read, so one bar fills as the whole work does.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from pcapan.config import (
    DASK_CONNECT_TIMEOUT_S,
    PARALLEL_DONE_POLL_S,
    PARALLEL_PROGRESS_INTERVAL_S,
)
from pcapan.errors import ParallelError

Progress = Callable[[str, int, int | None], None]
# A task: (its spec, its reporter) -> its result (picklable; a module-level function).
Task = Callable[[Any, "Reporter"], Any]
Fold = Callable[[int, Any], None]

# The queue of a process pool's workers (set by the pool's initializer in each worker).
_MP_QUEUE: Any = None


def worker_count(workers: int | None) -> int:
    """Processes for ``workers``: None or 1 -> 1, 0 -> one per core this process may use."""
    if workers is None:
        return 1
    if workers < 0:
        raise ValueError("workers must be 0 (one per core) or more")
    if workers == 0:
        if hasattr(os, "sched_getaffinity"):
            return max(1, len(os.sched_getaffinity(0)))
        return os.cpu_count() or 1
    return workers


class Reporter:
    """A task's side of the progress: ``report(file_no, name, done, total)`` after each batch
    sends at most one message per PARALLEL_PROGRESS_INTERVAL_S; ``flush()`` sends the last one."""

    def __init__(self, shard: int, channel: str | None) -> None:
        # channel: None (nobody listens), "mp" (the process pool's queue), else the name of a
        # distributed.Queue.
        self.shard = shard
        self.channel = channel
        self._queue: Any = None
        self._last = 0.0
        self._pending: tuple[Any, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"shard": self.shard, "channel": self.channel}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["shard"], state["channel"])  # type: ignore[misc]

    @property
    def active(self) -> bool:
        return self.channel is not None

    def __call__(self, file_no: int, name: str, done: int, total: int | None) -> None:
        if self.channel is None:
            return
        self._pending = (self.shard, file_no, name, done, total)
        now = time.monotonic()
        if now - self._last >= PARALLEL_PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        msg, self._pending = self._pending, None
        self._last = time.monotonic()
        if self._queue is None:
            if self.channel == "mp":
                self._queue = _MP_QUEUE
            else:
                from distributed import Queue

                self._queue = Queue(self.channel)
        if self._queue is not None:
            self._queue.put(msg)


class _Board:
    """The caller's side: the latest position of each shard, shown per file as the mean."""

    def __init__(self, n: int, progress: Progress) -> None:
        self.n = n
        self.progress = progress
        self.at: dict[int, tuple[int, int]] = {}  # shard -> (file number, bytes read in it)
        self.sizes: dict[int, int | None] = {}
        self.names: dict[int, str] = {}

    def update(self, msg: Sequence[Any]) -> None:
        shard, file_no, name, done, total = msg
        self.at[shard] = (file_no, done)
        self.sizes[file_no] = total
        acc = 0
        for s in range(self.n):
            f, d = self.at.get(s, (-1, 0))
            acc += d if f == file_no else (total or d) if f > file_no else 0
        self.names[file_no] = name
        self.progress(name, acc // self.n, total)

    def finish(self) -> None:
        """Every file read by every shard: full bars (a worker's last message may come after
        its result)."""
        for file_no, name in sorted(self.names.items()):
            total = self.sizes[file_no]
            if total is not None:
                self.progress(name, total, total)


def run(
    task: Task,
    specs: Sequence[Any],
    fold: Fold,
    *,
    client: Any = None,
    progress: Progress | None = None,
) -> None:
    """``task(spec, reporter)`` for every spec, one process each (or one Dask task each when
    ``client`` is a ``distributed.Client`` or a scheduler address); ``fold(i, result)`` in order."""
    if client is not None:
        _run_dask(task, specs, fold, client, progress)
    else:
        _run_processes(task, specs, fold, progress)


def connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (ParallelError if none)."""
    try:
        import distributed
    except ImportError:
        raise ParallelError(
            "a Dask scheduler needs dask.distributed: pip install 'pcapan[dask]'"
        ) from None
    try:
        return distributed.Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ParallelError(f"cannot reach the Dask scheduler {address}: {exc}") from None


def _init_worker(queue: Any) -> None:
    global _MP_QUEUE
    _MP_QUEUE = queue


def _context() -> Any:
    # fork where there is one (Linux): a worker starts with pcapan and numpy already imported
    # (~10 ms instead of ~0.5 s to import them again); the pool forks all its workers at the
    # first submit, before it starts its own thread (the only thread it forks with is the caller's).
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else methods[0])


def _run_processes(task: Task, specs: Sequence[Any], fold: Fold, progress: Progress | None) -> None:
    """Shard 0 runs in this process, the others in a pool of n - 1: this process would
    otherwise only wait, and its own shard's result is not pickled and sent (measured on the
    real short-connection capture: 0.27 s of CPU to receive a half, 4% of the analysis)."""
    ctx = _context()
    queue = ctx.Queue() if progress is not None and len(specs) > 1 else None
    board = _Board(len(specs), progress) if progress is not None else None

    def drain() -> None:
        if queue is None or board is None:
            return
        while True:
            try:
                msg = queue.get_nowait()
            except Exception:  # queue.Empty (or the queue is closed)
                return
            board.update(msg)

    local = _LocalReporter(board, drain)
    if len(specs) == 1:
        fold(0, task(specs[0], local))
        if board is not None:
            board.finish()
        return
    with ProcessPoolExecutor(
        max_workers=len(specs) - 1, mp_context=ctx, initializer=_init_worker, initargs=(queue,)
    ) as pool:
        futures: list[Any] = [None] + [
            pool.submit(task, spec, Reporter(i, "mp" if queue is not None else None))
            for i, spec in enumerate(specs)
            if i
        ]
        try:
            fold(0, task(specs[0], local))
            for i in range(1, len(futures)):
                while True:
                    try:
                        out = futures[i].result(timeout=PARALLEL_PROGRESS_INTERVAL_S)
                        break
                    except TimeoutError:  # (concurrent.futures' is this one)
                        drain()
                futures[i] = None  # the part is the caller's now: not held here as well
                drain()
                fold(i, out)
                del out
        except BaseException:
            for f in futures:
                if f is not None:
                    f.cancel()
            raise
    if queue is not None:
        queue.close()
    if board is not None:
        board.finish()


class _LocalReporter(Reporter):
    """Shard 0's reporter in this process: straight to the board, taking the others' messages
    on the way (nothing else reads the queue while this process analyses)."""

    def __init__(self, board: _Board | None, drain: Callable[[], None]) -> None:
        super().__init__(0, "local" if board is not None else None)
        self.board = board
        self.drain = drain

    def flush(self) -> None:
        if self._pending is None or self.board is None:
            return
        msg, self._pending = self._pending, None
        self._last = time.monotonic()
        self.board.update(msg)
        self.drain()


def _run_dask(
    task: Task, specs: Sequence[Any], fold: Fold, client: Any, progress: Progress | None
) -> None:
    import distributed

    own = isinstance(client, str)
    if own:
        client = connect(client)
    run_id = uuid.uuid4().hex
    name = f"pcapan-progress-{run_id}" if progress is not None else None
    queue = distributed.Queue(name, client=client) if name is not None else None
    board = _Board(len(specs), progress) if progress is not None else None

    def drain() -> None:
        if queue is None or board is None:
            return
        n = queue.qsize()
        if n:
            for msg in queue.get(batch=n):
                board.update(msg)

    # Shard i goes to the i-th worker thread (round robin over the workers): left to itself the
    # scheduler may queue two of these root tasks on one worker (worker-saturation 1.1 allows it
    # with one thread each), and a shard, hours of work, is not worth waiting for stealing.
    # Loose: if that worker is gone, another takes the task.
    slots = [addr for addr, n in sorted(client.nthreads().items()) for _ in range(n)]
    futures: list[Any] = [
        client.submit(
            task,
            spec,
            Reporter(i, name),
            key=f"pcapan-shard-{i}-{run_id}",
            pure=False,
            workers=[slots[i % len(slots)]] if slots else None,
            allow_other_workers=True,
        )
        for i, spec in enumerate(specs)
    ]
    try:
        for i in range(len(futures)):
            # The parts stay on the workers until their turn: the client holds one at a time.
            # With a progress bar to feed, polled with done(), not result(timeout=) in a loop:
            # that took 234 s instead of 6.4 s on the real short-connection capture (the shards
            # ran 5.9 and 6.8 s). done() is a local look at the future, so it is asked every
            # PARALLEL_DONE_POLL_S and the queue (a round trip to the scheduler) drained every
            # PARALLEL_PROGRESS_INTERVAL_S: sleeping the whole interval between done()s made
            # the caller learn of a result up to that late. Without a bar, no polling at all.
            if queue is not None:
                drained = 0.0
                while not futures[i].done():
                    now = time.monotonic()
                    if now - drained >= PARALLEL_PROGRESS_INTERVAL_S:
                        drain()
                        drained = now
                    time.sleep(PARALLEL_DONE_POLL_S)
            out = futures[i].result()
            futures[i].release()
            futures[i] = None
            drain()
            fold(i, out)
            del out
    finally:
        pending = [f for f in futures if f is not None]
        if pending:
            client.cancel(pending)
        if queue is not None:
            queue.close()
        if own:
            client.close()
    if board is not None:
        board.finish()
