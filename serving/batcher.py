"""Dynamic batching: many small submissions become few model runs.

A submission carries ``k >= 1`` rows. The batcher collects rows until ``max_batch_size``
rows are waiting or ``max_queue_delay_ms`` has passed since the oldest waiting row
arrived, runs them in one call on a dedicated single thread (off the event loop), and
hands each submission exactly its rows of every output. A submission larger than a batch
is split over consecutive batches and reassembled in order.

It only waits for rows that are on their way: handlers announce a request while they read
and decode its upload (:meth:`DynamicBatcher.incoming`). With nothing announced, waiting
rows run at once, so a lone request never pays the queue delay; under load the delay lets
rows whose uploads are still being decoded join the batch.

A lone request skips the queue altogether (:meth:`DynamicBatcher.run_alone`): when nothing
waits, nothing runs and no other request is on its way, its decode and its model run share
one hop to the inference thread instead of two hops and a wake-up of the batching task. On
this project's 2-core VM, in three alternating rounds each, the c=1 p50 went from 5.7-6.5 to
5.3-5.7 ms for the CNN and from 15.4-17.3 to 13.4-14.8 ms for lite0; at c=4 and c=64 requests
overlap, the batcher is seldom idle and throughput stayed within noise.

Bulk submissions (LIME's hundreds of perturbed images) queue behind every interactive
one: a prediction that arrives while an explanation is being scored joins the very next
batch instead of waiting for the explanation's rows to drain. That batch carries no bulk
rows, and a batch of bulk rows carries at most ``bulk_batch_size``, so a prediction waits for
one short bulk run at most. (Capping bulk runs only while predictions were on their way was
not enough: predictions arriving between two announcements still met 32-row bulk runs; and on
a CPU, four or eight rows per run cost no more per row than 32. With four rather than
eight, predictions beside two LIME explanations had p50 73-80 instead of 100-106 ms.)

Once no prediction has arrived for ``bulk_quiet_s``, bulk runs grow to
``quiet_bulk_batch_size`` rows (by default the size the model runs fastest per row, timed as
it loads): fewer, larger runs, so a lone LIME request finishes sooner (``lite0``, 1,000
samples: +19 % over the bare model against +35 % with slic, +28 % against +39 % with
quickshift; ``cnn``, fastest at 4-8 rows, within noise). A prediction that arrives meanwhile
stops such a run between two operators (:class:`StopSignal`, onnxruntime's terminate flag):
its rows go back to the head of the bulk queue and the prediction runs next, as it would
have behind a short bulk run. A prediction whose own request then submits the bulk rows
(LIME's, ``holds_bulk=False``) does not count: nothing waits on its answer by then, yet it
held the explanation's own first quarter second at four-row runs (``lite0``, slic, six
requests each way: +18 % over the bare model against +20 %, medians; within noise).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from core.options import check_at_least, check_positive, option

logger = logging.getLogger("serving.batcher")

RunBatch = Callable[[np.ndarray], dict[str, np.ndarray]]
T = TypeVar("T")


class QueueFull(Exception):
    """Too many rows are waiting; try again shortly (HTTP 503 + Retry-After)."""


class BatcherStopped(Exception):
    """The batcher is shutting down and takes no new work (HTTP 503)."""


class RequestTimeout(Exception):
    """The submission did not get its model run within the request timeout (HTTP 504)."""


class TooManyRows(ValueError):
    """One submission larger than the whole queue; it could never run (HTTP 422)."""


class ModelRunError(RuntimeError):
    """The model itself failed on a batch (HTTP 500)."""


class RunStopped(Exception):
    """A model run ended early because its :class:`StopSignal` was given; nothing failed."""


class StopSignal:
    """Asks one model run in flight to stop early (from any thread).

    The runtime says how with :meth:`on_stop` (onnxruntime: set the run's terminate flag);
    a stop asked for before that is passed on at once. A run that ends anyway returns its
    outputs as usual; one that stops raises :class:`RunStopped`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stoppers: list[Callable[[], None]] = []
        self.requested = False

    def on_stop(self, stopper: Callable[[], None]) -> None:
        with self._lock:
            if not self.requested:
                self._stoppers.append(stopper)
                return
        stopper()

    def stop(self) -> None:
        with self._lock:
            if self.requested:
                return
            self.requested = True
            stoppers, self._stoppers = self._stoppers, []
        for stopper in stoppers:
            stopper()


class RunStoppable(Protocol):
    """A batch run that takes a :class:`StopSignal` (``ModelRuntime.run``)."""

    def __call__(self, batch: np.ndarray, *, stop: StopSignal) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class BatcherConfig:
    """How rows are batched; checked here, so a bad value fails at start, not in the loop."""

    max_batch_size: int = option(32, "most image rows per model run", int)
    max_queue_delay_ms: float = option(
        5.0,
        "longest wait for more rows after the first one of a batch "
        "(only while other requests are still being decoded)",
        float,
    )
    max_queue_size: int = option(
        2048, "most rows waiting per model; beyond that requests get 503", int
    )
    request_timeout_s: float = option(
        30.0, "longest time a request may wait for its model run before 504", float
    )
    bulk_batch_size: int = option(
        4,
        "most rows of bulk work (LIME's perturbed images) per model run, so a prediction "
        "never waits behind a long bulk run",
        int,
    )
    bulk_quiet_s: float = option(
        0.25,
        "once no prediction has arrived for this long, bulk runs take up to "
        "quiet_bulk_batch_size rows, and a prediction stops such a run (0: bulk runs stay at "
        "bulk_batch_size)",
        float,
    )
    quiet_bulk_batch_size: int = option(
        0,
        "most rows per bulk run once predictions are quiet (0: of bulk_batch_size, twice "
        "that ... max_batch_size, the one the model runs fastest per row, timed as it loads)",
        int,
    )

    def __post_init__(self) -> None:
        check_at_least(self, 1, "max_batch_size", "max_queue_size", "bulk_batch_size")
        check_at_least(self, 0, "max_queue_delay_ms", "bulk_quiet_s", "quiet_bulk_batch_size")
        if self.quiet_bulk_batch_size > self.max_batch_size:
            raise ValueError(
                f"BatcherConfig.quiet_bulk_batch_size ({self.quiet_bulk_batch_size}) must be at "
                f"most max_batch_size ({self.max_batch_size})"
            )
        check_positive(self, "request_timeout_s")
        if self.max_queue_size < self.max_batch_size:
            raise ValueError(
                f"BatcherConfig.max_queue_size ({self.max_queue_size}) must be at least "
                f"max_batch_size ({self.max_batch_size})"
            )

    def quiet_bulk_candidates(self) -> list[int]:
        """Bulk run sizes to time for ``quiet_bulk_batch_size`` 0: ``bulk_batch_size``,
        doubled until ``max_batch_size``, and ``max_batch_size``."""
        sizes, size = [], self.bulk_batch_size
        while size < self.max_batch_size:
            sizes.append(size)
            size *= 2
        return [*sizes, self.max_batch_size]


class BatchObserver(Protocol):
    """Receives the batcher's measurements (see :mod:`serving.metrics`)."""

    def batch_done(self, rows: int, run_seconds: float) -> None: ...

    def queue_delay(self, seconds: float) -> None: ...

    def queue_depth(self, rows: int) -> None: ...

    def rejected(self, reason: str) -> None: ...

    def bulk_run_stopped(self) -> None: ...


class _NoObserver:
    def batch_done(self, rows: int, run_seconds: float) -> None:
        pass

    def queue_delay(self, seconds: float) -> None:
        pass

    def queue_depth(self, rows: int) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass

    def bulk_run_stopped(self) -> None:
        pass


@dataclass(eq=False)
class _Submission:
    rows: np.ndarray
    future: asyncio.Future
    enqueued: float
    bulk: bool = False  # queued behind every interactive submission
    taken: int = 0  # rows handed to batches so far
    parts: list[dict[str, np.ndarray]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return len(self.rows) - self.taken


class Announcement:
    """One request announced to a batcher (:meth:`DynamicBatcher.incoming`)."""

    def __init__(self, batcher: DynamicBatcher) -> None:
        self._batcher: DynamicBatcher | None = batcher

    def end(self) -> None:
        """The request's rows are ready (or it gave up): stop waiting for them. Idempotent."""
        if self._batcher is not None:
            self._batcher._announcement_ended()
            self._batcher = None


@dataclass
class BatcherStats:
    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    stopped_runs: int = 0  # bulk runs stopped for a prediction (their rows ran again)


class DynamicBatcher:
    """Batches submissions for one model; ``run``, ``run_lone`` (for :meth:`run_alone`,
    default ``run``) and ``run_stoppable`` (for grown bulk runs; without it bulk runs stay
    at ``bulk_batch_size``) are only ever called from one thread."""

    def __init__(
        self,
        run: RunBatch,
        config: BatcherConfig,
        observer: BatchObserver | None = None,
        name: str = "model",
        run_lone: RunBatch | None = None,
        run_stoppable: RunStoppable | None = None,
    ) -> None:
        self._run = run
        self._run_lone = run_lone or run
        self._run_stoppable = run_stoppable
        self._last_interactive = -math.inf  # loop time of the latest prediction
        self._bulk_stop: StopSignal | None = None  # the grown bulk run in flight
        self.config = config
        self.name = name
        self._observer = observer or _NoObserver()
        self._pending: deque[_Submission] = deque()
        self._pending_rows = 0
        self._incoming = 0  # requests announced but not yet submitted (reading, decoding)
        self._runs = 0  # model runs in flight on the inference thread (batches, lone runs)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.stats = BatcherStats()

    @property
    def depth(self) -> int:
        """Rows waiting for a model run."""
        return self._pending_rows

    @property
    def accepting(self) -> bool:
        return self._task is not None and not self._stopping

    @property
    def busy(self) -> bool:
        """Rows waiting, a model run in flight or a request announced."""
        return bool(self._pending) or self._runs > 0 or self._incoming > 0

    @property
    def idle(self) -> bool:
        """Nothing waiting, nothing running and at most one request (the caller) announced."""
        return self.accepting and not self._pending and not self._runs and self._incoming <= 1

    @contextlib.contextmanager
    def incoming(self) -> Iterator[Announcement]:
        """Announce one request whose rows are on their way (upload read, image decoding).

        While any request is announced, a partial batch waits (at most
        ``max_queue_delay_ms``) for it; the announcement ends when the block exits, or
        earlier with :meth:`Announcement.end` (before the request submits its own rows).
        """
        announcement = Announcement(self)
        self._incoming += 1
        try:
            yield announcement
        finally:
            announcement.end()

    def _announcement_ended(self) -> None:
        self._incoming -= 1
        self._wakeup.set()

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{self.name}")
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"batcher-{self.name}"
            )

    async def run_alone(
        self, prepare: Callable[[], np.ndarray], holds_bulk: bool = True
    ) -> dict[str, np.ndarray]:
        """``prepare()`` (decoding an upload into rows) and the model run on those rows, in one
        hop to the inference thread; for callers that found the batcher :attr:`idle`.
        ``holds_bulk``: as in :meth:`submit`.

        Exceptions from ``prepare`` (an undecodable image) reach the caller as they are; a
        failing model run is a :class:`ModelRunError`, as in a batch. Rows submitted meanwhile
        are batched as usual and run after this.
        """
        if not self.accepting:
            self._observer.rejected("stopping")
            raise BatcherStopped(f"{self.name} is not accepting requests (shutting down)")
        loop = asyncio.get_running_loop()
        if holds_bulk:
            self._last_interactive = loop.time()
        self._observer.queue_delay(0.0)  # it waits for no batch
        self._runs += 1
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                rows, outputs, seconds = await loop.run_in_executor(
                    self._executor, self._prepare_and_execute, prepare
                )
        except TimeoutError:
            self._observer.rejected("timeout")
            raise RequestTimeout(
                f"no model run within {self.config.request_timeout_s:g} s"
            ) from None
        finally:
            self._runs -= 1
            self._wakeup.set()
        self._count_batch(rows, seconds)
        return outputs

    async def on_inference_thread(self, function: Callable[[], T]) -> T:
        """``function()`` on the inference thread, counted as no batch (warm-up runs)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def _prepare_and_execute(
        self, prepare: Callable[[], np.ndarray]
    ) -> tuple[int, dict[str, np.ndarray], float]:
        """Runs on the inference thread: the caller's rows, then the model run on them."""
        rows = prepare()
        if rows.ndim < 1 or len(rows) == 0:
            raise ValueError("a submission needs at least one row")
        try:
            outputs, seconds = self._execute([rows], self._run_lone)
        except Exception as exc:
            raise self._model_failed(exc) from exc
        return len(rows), outputs, seconds

    def _model_failed(self, exc: Exception) -> ModelRunError:
        """A failed model run, logged, as the error its submissions get."""
        logger.error("model run for %s failed: %s", self.name, exc)
        return ModelRunError(f"model {self.name} failed: {exc}")

    async def submit(
        self, rows: np.ndarray, bulk: bool = False, holds_bulk: bool = True
    ) -> dict[str, np.ndarray]:
        """Outputs for the ``k`` rows of ``rows`` (each output's first axis has length ``k``).

        ``bulk`` submissions yield to interactive ones: they are batched only with rows that
        no interactive request is waiting for. An interactive submission keeps bulk runs at
        ``bulk_batch_size`` for the next ``bulk_quiet_s`` unless ``holds_bulk`` is false (a
        prediction whose own request submits bulk rows next, as LIME's does).
        """
        if not self.accepting:
            self._observer.rejected("stopping")
            raise BatcherStopped(f"{self.name} is not accepting requests (shutting down)")
        if rows.ndim < 1 or len(rows) == 0:
            raise ValueError("a submission needs at least one row")
        if len(rows) > self.config.max_queue_size:
            raise TooManyRows(
                f"{len(rows)} rows in one request; at most {self.config.max_queue_size}"
            )
        if self._pending_rows + len(rows) > self.config.max_queue_size:
            self._observer.rejected("queue_full")
            raise QueueFull(
                f"{self.name} has {self._pending_rows} rows waiting "
                f"(limit {self.config.max_queue_size}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        item = _Submission(rows=rows, future=loop.create_future(), enqueued=loop.time(), bulk=bulk)
        if bulk:
            self._pending.append(item)
        else:  # ahead of the first bulk submission, behind earlier interactive ones
            self._pending.insert(self._first_bulk(), item)
            if holds_bulk:
                self._last_interactive = item.enqueued
            if self._bulk_stop is not None:  # a grown bulk run is in the way: stop it
                self._bulk_stop.stop()
        self._pending_rows += len(rows)
        self._observer.queue_depth(self._pending_rows)
        self._wakeup.set()
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                return await item.future
        except TimeoutError:
            self._observer.rejected("timeout")
            raise RequestTimeout(
                f"no model run within {self.config.request_timeout_s:g} s "
                f"({self._pending_rows} rows waiting)"
            ) from None
        finally:
            if not item.future.done():
                item.future.cancel()
            self._discard(item)

    async def stop(self, drain: bool = True) -> None:
        """Refuse new work; with ``drain`` finish everything queued, else fail it."""
        self._stopping = True
        self._wakeup.set()
        if not drain:
            for item in self._pending:
                if not item.future.done():
                    item.future.set_exception(BatcherStopped(f"{self.name} stopped"))
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _first_bulk(self) -> int:
        """Where the bulk submissions start in the queue."""
        return next(
            (index for index, queued in enumerate(self._pending) if queued.bulk),
            len(self._pending),
        )

    def _bulk_rows_per_run(self) -> int:
        """``bulk_batch_size``, or ``quiet_bulk_batch_size`` (``max_batch_size`` when not
        chosen) once predictions have been quiet."""
        config = self.config
        if self._run_stoppable is None or config.bulk_quiet_s == 0:
            return config.bulk_batch_size
        if asyncio.get_running_loop().time() - self._last_interactive < config.bulk_quiet_s:
            return config.bulk_batch_size
        return config.quiet_bulk_batch_size or config.max_batch_size

    def _discard(self, item: _Submission) -> None:
        """Drop a finished or abandoned submission's rows that never reached a batch."""
        if item.remaining and item in self._pending:
            self._pending.remove(item)
            self._pending_rows -= item.remaining
            item.taken = len(item.rows)
            self._observer.queue_depth(self._pending_rows)

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_rows()
            slices = self._take_batch()
            if slices:
                try:
                    await self._run_batch(slices)
                except Exception:  # never let one bad batch stop the batcher
                    logger.exception("batch for %s failed unexpectedly", self.name)

    async def _wait_for_rows(self) -> None:
        """Wait until a full batch is waiting, no announced request is still on its way, or
        the oldest row has waited ``max_queue_delay_ms``."""
        loop = asyncio.get_running_loop()
        deadline = self._pending[0].enqueued + self.config.max_queue_delay_ms / 1000.0
        while self._pending_rows < self.config.max_batch_size and not self._stopping:
            if self._incoming == 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return

    def _take_batch(self) -> list[tuple[_Submission, int, int]]:
        """Up to ``max_batch_size`` rows from the oldest submissions: (item, start, stop).
        Interactive rows, queued first, run without bulk rows; bulk rows run at most
        ``bulk_batch_size`` at a time (``quiet_bulk_batch_size`` once predictions are quiet)."""
        slices: list[tuple[_Submission, int, int]] = []
        total = 0
        bulk_rows = self._bulk_rows_per_run()
        while self._pending and total < self.config.max_batch_size:
            item = self._pending[0]
            if item.future.done():  # timed out, cancelled or failed meanwhile
                self._pending.popleft()
                self._pending_rows -= item.remaining
                item.taken = len(item.rows)
                continue
            count = min(item.remaining, self.config.max_batch_size - total)
            if item.bulk:
                if slices and not slices[0][0].bulk:  # interactive rows run without bulk rows
                    break
                count = min(count, bulk_rows - total)
                if count == 0:
                    break
            slices.append((item, item.taken, item.taken + count))
            item.taken += count
            total += count
            self._pending_rows -= count
            if item.remaining == 0:
                self._pending.popleft()
        self._observer.queue_depth(self._pending_rows)
        return slices

    async def _run_batch(self, slices: list[tuple[_Submission, int, int]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for item, start, _ in slices:
            if start == 0:
                self._observer.queue_delay(started - item.enqueued)
        arrays = [item.rows[start:stop] for item, start, stop in slices]
        rows = sum(len(array) for array in arrays)
        run: RunBatch | None = None
        if slices[0][0].bulk and rows > self.config.bulk_batch_size and self._run_stoppable:
            stop_signal = self._bulk_stop = StopSignal()
            run = functools.partial(self._run_stoppable, stop=stop_signal)
        self._runs += 1
        try:
            outputs, seconds = await loop.run_in_executor(
                self._executor, self._execute, arrays, run
            )
        except RunStopped:
            self._requeue(slices)
            self.stats.stopped_runs += 1
            self._observer.bulk_run_stopped()
            return
        except Exception as exc:
            error = self._model_failed(exc)
            for item, _, _ in slices:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        finally:
            self._runs -= 1
            self._bulk_stop = None
        self._count_batch(rows, seconds)
        offset = 0
        for item, start, stop in slices:
            count = stop - start
            if not item.future.done():
                item.parts.append({k: v[offset : offset + count] for k, v in outputs.items()})
                if stop == len(item.rows):
                    item.future.set_result(_join(item.parts))
            offset += count

    def _requeue(self, slices: list[tuple[_Submission, int, int]]) -> None:
        """A stopped bulk run's rows, back at the head of the bulk queue in their order
        (submissions abandoned meanwhile are left out)."""
        for item, start, stop in reversed(slices):
            if item.future.done():
                continue
            item.taken = start
            self._pending_rows += stop - start
            if item not in self._pending:
                self._pending.insert(self._first_bulk(), item)
        self._observer.queue_depth(self._pending_rows)

    def _count_batch(self, rows: int, seconds: float) -> None:
        self.stats.batches += 1
        self.stats.rows += rows
        self.stats.largest_batch = max(self.stats.largest_batch, rows)
        self._observer.batch_done(rows, seconds)

    def _execute(
        self, arrays: list[np.ndarray], run: RunBatch | None = None
    ) -> tuple[dict[str, np.ndarray], float]:
        """Runs on the inference thread: concatenate, run (``run``, default the batch one),
        check every output has N rows."""
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        start = time.perf_counter()
        outputs = (run or self._run)(np.ascontiguousarray(batch, dtype=np.float32))
        seconds = time.perf_counter() - start
        for name, value in outputs.items():
            if len(value) != len(batch):
                raise ModelRunError(f"output {name} has {len(value)} rows for {len(batch)} inputs")
        return outputs, seconds


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
