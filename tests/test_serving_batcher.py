"""The dynamic batcher alone, with plain Python "models" (no ONNX needed)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batcher import (
    BatcherConfig,
    BatcherStopped,
    DynamicBatcher,
    ModelRunError,
    QueueFull,
    RequestTimeout,
    RunStopped,
    StopSignal,
    TooManyRows,
)

pytestmark = pytest.mark.asyncio


class RecordingModel:
    """Returns each row's id (first value) and row sum; records batch sizes and threads."""

    def __init__(self, delay_s: float = 0.0, fail_on: float | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.batch_sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        ids = batch.reshape(len(batch), -1)[:, 0]
        if self.fail_on is not None and np.any(ids == self.fail_on):
            raise ValueError("poisoned row")
        return {"id": ids.copy(), "sum": batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)}


class StoppableModel(RecordingModel):
    """A RecordingModel that takes a StopSignal (as ``ModelRuntime.run`` does). With
    ``hold_first_grown``, the first run over ``bulk`` rows blocks until it is stopped."""

    def __init__(self, bulk: int, hold_first_grown: bool = False) -> None:
        super().__init__()
        self.bulk, self.hold = bulk, hold_first_grown
        self.holding = threading.Event()
        self.stopped: list[int] = []  # sizes of the runs that were stopped

    def __call__(
        self, batch: np.ndarray, *, stop: StopSignal | None = None
    ) -> dict[str, np.ndarray]:
        if self.hold and stop is not None and len(batch) > self.bulk:
            self.hold = False
            released = threading.Event()
            stop.on_stop(released.set)
            self.holding.set()
            assert released.wait(5.0), "the grown bulk run was never stopped"
            self.stopped.append(len(batch))
            raise RunStopped("stopped")
        return super().__call__(batch)


async def growing(model: StoppableModel, **config) -> DynamicBatcher:
    """A batcher whose bulk runs may grow: 8-row runs, 2-row bulk runs beside predictions,
    no queue delay."""
    settings = {"max_batch_size": 8, "max_queue_delay_ms": 0, "bulk_batch_size": 2}
    return await started(model, stoppable=True, **settings, **config)


def rows(first_id: int, count: int) -> np.ndarray:
    data = np.ones((count, 2, 2, 3), np.float32)
    data[:, 0, 0, 0] = np.arange(first_id, first_id + count)
    return data


async def started(model, stoppable: bool = False, **config) -> DynamicBatcher:
    """A running batcher over ``model``; ``stoppable``: the model also takes a StopSignal
    (a StoppableModel), so bulk runs may grow."""
    run_stoppable = model if stoppable else None
    batcher = DynamicBatcher(
        model, BatcherConfig(**config), name="test", run_stoppable=run_stoppable
    )
    batcher.start()
    return batcher


async def test_concurrent_single_rows_share_batches_and_get_their_own_rows():
    model = RecordingModel(delay_s=0.02)
    batcher = await started(model, max_batch_size=8, max_queue_delay_ms=20)
    results = await asyncio.gather(*(batcher.submit(rows(i, 1)) for i in range(20)))
    await batcher.stop()
    for i, result in enumerate(results):
        assert result["id"].tolist() == [i]
        assert result["sum"].shape == (1, 1)
    assert sum(model.batch_sizes) == 20
    assert len(model.batch_sizes) < 20 and max(model.batch_sizes) <= 8
    assert model.threads == {"infer-test_0"}  # one dedicated thread, never the event loop


async def test_big_submission_is_split_across_batches_and_reassembled_in_order():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=1)
    big, small = batcher.submit(rows(1000, 70)), batcher.submit(rows(5, 3))
    big_result, small_result = await asyncio.gather(big, small)
    await batcher.stop()
    assert big_result["id"].tolist() == list(range(1000, 1070))
    assert big_result["sum"].shape == (70, 1)
    assert small_result["id"].tolist() == [5, 6, 7]
    assert model.batch_sizes == [32, 32, 9]  # 70 + 3 rows, never more than 32 at once


async def test_partial_batch_waits_at_most_the_queue_delay_for_announced_requests():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=50)
    start = time.perf_counter()
    with batcher.incoming():  # another request is still decoding and never arrives in time
        await batcher.submit(rows(0, 1))
    waited = time.perf_counter() - start
    await batcher.stop()
    assert 0.04 <= waited < 1.0
    assert model.batch_sizes == [1]


async def test_lone_request_runs_at_once_without_paying_the_delay():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=2000)
    start = time.perf_counter()
    await batcher.submit(rows(0, 1))
    assert time.perf_counter() - start < 1.0
    await batcher.stop()
    assert model.batch_sizes == [1]


async def test_announced_request_joins_the_batch_when_it_arrives():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=2000)

    async def late_request():
        with batcher.incoming():
            await asyncio.sleep(0.05)  # reading and decoding its upload
        return await batcher.submit(rows(1, 1))

    late = asyncio.create_task(late_request())
    await asyncio.sleep(0)  # the late request announces itself first
    start = time.perf_counter()
    first, second = await asyncio.gather(batcher.submit(rows(0, 1)), late)
    assert time.perf_counter() - start < 1.0, "ran when the announced row arrived, not at 2 s"
    assert (first["id"].tolist(), second["id"].tolist()) == ([0], [1])
    assert model.batch_sizes == [2]
    await batcher.stop()


async def test_full_batch_runs_without_waiting_for_the_delay():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=4, max_queue_delay_ms=5000)
    start = time.perf_counter()
    await batcher.submit(rows(0, 4))
    assert time.perf_counter() - start < 2.0
    await batcher.stop()


async def test_queue_full_then_recovers():
    model = RecordingModel(delay_s=0.2)
    batcher = await started(model, max_batch_size=1, max_queue_size=2, max_queue_delay_ms=0)
    outcomes = await asyncio.gather(
        *(batcher.submit(rows(i, 1)) for i in range(6)), return_exceptions=True
    )
    rejected = [o for o in outcomes if isinstance(o, QueueFull)]
    served = [o for o in outcomes if isinstance(o, dict)]
    assert rejected and served and len(rejected) + len(served) == 6
    assert (await batcher.submit(rows(99, 1)))["id"].tolist() == [99]
    await batcher.stop()


async def test_submission_larger_than_the_queue_is_refused():
    batcher = await started(RecordingModel(), max_batch_size=2, max_queue_size=4)
    with pytest.raises(TooManyRows):
        await batcher.submit(rows(0, 5))
    await batcher.stop()


async def test_timeout_raises_and_abandoned_rows_are_skipped():
    model = RecordingModel(delay_s=0.3)
    batcher = await started(model, max_batch_size=1, request_timeout_s=0.1, max_queue_delay_ms=0)
    outcomes = await asyncio.gather(
        batcher.submit(rows(0, 1)), batcher.submit(rows(1, 1)), return_exceptions=True
    )
    assert all(isinstance(o, RequestTimeout) for o in outcomes)
    await batcher.stop()
    assert model.batch_sizes == [1]  # the second row timed out in the queue: never run
    assert batcher.depth == 0


async def test_model_error_fails_its_batch_only():
    model = RecordingModel(fail_on=13)
    batcher = await started(model, max_batch_size=4, max_queue_delay_ms=0)
    with pytest.raises(ModelRunError, match="poisoned"):
        await batcher.submit(rows(13, 1))
    assert (await batcher.submit(rows(1, 2)))["id"].tolist() == [1, 2]
    await batcher.stop()


async def test_wrong_output_length_is_an_error_not_a_misassignment():
    batcher = await started(lambda batch: {"p": np.zeros(len(batch) + 1)}, max_queue_delay_ms=0)
    with pytest.raises(ModelRunError, match="rows"):
        await batcher.submit(rows(0, 2))
    await batcher.stop()


async def test_stop_drains_queued_work_and_refuses_new():
    model = RecordingModel(delay_s=0.05)
    batcher = await started(model, max_batch_size=2, max_queue_delay_ms=0)
    pending = [asyncio.create_task(batcher.submit(rows(i, 1))) for i in range(6)]
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(batcher.stop(drain=True))
    await asyncio.sleep(0)
    with pytest.raises(BatcherStopped):
        await batcher.submit(rows(50, 1))
    results = await asyncio.gather(*pending)
    await stopping
    assert [r["id"].tolist() for r in results] == [[i] for i in range(6)]


async def test_stop_without_drain_fails_queued_work():
    batcher = await started(RecordingModel(delay_s=0.1), max_batch_size=1, max_queue_delay_ms=0)
    pending = [asyncio.create_task(batcher.submit(rows(i, 1))) for i in range(4)]
    await asyncio.sleep(0.02)
    await batcher.stop(drain=False)
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert isinstance(outcomes[0], dict)  # already running: finishes
    assert any(isinstance(o, BatcherStopped) for o in outcomes[1:])


async def test_bulk_rows_run_in_small_batches_beside_predictions():
    model = RecordingModel(delay_s=0.01)
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=0, bulk_batch_size=8)
    assert (await batcher.submit(rows(0, 20), bulk=True))["id"].tolist() == list(range(20))
    assert model.batch_sizes == [8, 8, 4], "bulk rows: at most bulk_batch_size per run"
    model.batch_sizes.clear()
    both = await asyncio.gather(*(batcher.submit(rows(0, 5), bulk=True) for _ in range(2)))
    assert [len(result["id"]) for result in both] == [5, 5]
    assert model.batch_sizes == [8, 2], "two bulk submissions share the cap"
    model.batch_sizes.clear()
    bulk = asyncio.create_task(batcher.submit(rows(100, 200), bulk=True))  # 25 runs
    await asyncio.sleep(0.015)
    singles = await asyncio.gather(*(batcher.submit(rows(i, 1)) for i in range(3)))
    result = await bulk
    assert [single["id"].tolist() for single in singles] == [[0], [1], [2]]
    assert result["id"].tolist() == list(range(100, 300))
    assert 3 in model.batch_sizes, "the three predictions run together, without bulk rows"
    assert max(model.batch_sizes) == 8
    await batcher.stop()


async def test_bulk_runs_grow_to_full_batches_once_predictions_are_quiet():
    model = StoppableModel(bulk=2)
    batcher = await growing(model, bulk_quiet_s=1.0)
    assert (await batcher.submit(rows(0, 20), bulk=True))["id"].tolist() == list(range(20))
    assert model.batch_sizes == [8, 8, 4], "no prediction yet: full batches"
    model.batch_sizes.clear()
    await batcher.submit(rows(100, 1))
    assert (await batcher.submit(rows(0, 6), bulk=True))["id"].tolist() == list(range(6))
    assert model.batch_sizes == [1, 2, 2, 2], "a prediction just now: bulk_batch_size"
    await asyncio.sleep(1.1)
    model.batch_sizes.clear()
    await batcher.submit(rows(0, 6), bulk=True)
    assert model.batch_sizes == [6], "quiet again: full batches"
    await batcher.stop()
    assert batcher.stats.stopped_runs == 0


async def test_a_prediction_that_holds_no_bulk_leaves_bulk_runs_grown():
    model = StoppableModel(bulk=2)
    batcher = await growing(model, bulk_quiet_s=60.0)
    await batcher.submit(rows(100, 1), holds_bulk=False)
    await batcher.run_alone(lambda: rows(101, 1), holds_bulk=False)
    assert (await batcher.submit(rows(0, 16), bulk=True))["id"].tolist() == list(range(16))
    assert model.batch_sizes == [1, 1, 8, 8], "LIME's own prediction: bulk runs stay grown"
    model.batch_sizes.clear()
    await batcher.run_alone(lambda: rows(102, 1))
    await batcher.submit(rows(0, 4), bulk=True)
    assert model.batch_sizes == [1, 2, 2], "any other prediction holds them for bulk_quiet_s"
    await batcher.stop()


async def test_quiet_bulk_runs_take_quiet_bulk_batch_size_rows():
    model = StoppableModel(bulk=2)
    batcher = await growing(model, quiet_bulk_batch_size=6)
    await batcher.submit(rows(0, 20), bulk=True)
    await batcher.stop()
    assert model.batch_sizes == [6, 6, 6, 2]


async def test_quiet_bulk_candidates_double_from_the_bulk_size_to_the_full_batch():
    assert BatcherConfig(bulk_batch_size=4, max_batch_size=32).quiet_bulk_candidates() == [
        4, 8, 16, 32
    ]  # fmt: skip
    assert BatcherConfig(bulk_batch_size=3, max_batch_size=20).quiet_bulk_candidates() == [
        3, 6, 12, 20
    ]  # fmt: skip
    assert BatcherConfig(bulk_batch_size=8, max_batch_size=8).quiet_bulk_candidates() == [8]
    with pytest.raises(ValueError, match="quiet_bulk_batch_size .40. must be at most"):
        BatcherConfig(max_batch_size=32, quiet_bulk_batch_size=40)


async def test_a_prediction_stops_a_grown_bulk_run_and_the_bulk_rows_run_again():
    model = StoppableModel(bulk=2, hold_first_grown=True)
    batcher = await growing(model, bulk_quiet_s=1.0)
    first = asyncio.create_task(batcher.submit(rows(1000, 5), bulk=True))
    second = asyncio.create_task(batcher.submit(rows(2000, 7), bulk=True))
    while not model.holding.is_set():  # the grown run (8 rows: 5 + 3) is on the model
        await asyncio.sleep(0.005)
    single = await batcher.submit(rows(7, 1))
    assert single["id"].tolist() == [7]
    assert (await first)["id"].tolist() == list(range(1000, 1005))
    assert (await second)["id"].tolist() == list(range(2000, 2007))
    assert model.stopped == [8]
    assert model.batch_sizes == [1, 2, 2, 2, 2, 2, 2], "the prediction first, then bulk rows"
    assert batcher.stats.stopped_runs == 1
    assert batcher.depth == 0
    await batcher.stop()


async def test_a_stop_signal_given_before_the_runtime_listens_is_passed_on():
    signal, calls = StopSignal(), []
    signal.stop()
    signal.on_stop(lambda: calls.append("stopped"))
    signal.stop()  # a second stop calls nothing again
    assert signal.requested and calls == ["stopped"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_batch_size", 0), ("max_queue_size", 0), ("bulk_batch_size", 0), ("bulk_quiet_s", -1.0),
     ("quiet_bulk_batch_size", -1),
     ("max_queue_delay_ms", -1.0), ("request_timeout_s", 0.0)],
)  # fmt: skip
async def test_batcher_settings_are_checked_where_built(field, value):
    with pytest.raises(ValueError, match=f"BatcherConfig.{field} .*{value}"):
        BatcherConfig(**{field: value})


async def test_interactive_rows_overtake_queued_bulk_rows():
    model = RecordingModel(delay_s=0.03)
    batcher = await started(model, max_batch_size=8, max_queue_delay_ms=0)
    bulk = asyncio.create_task(batcher.submit(rows(1000, 40), bulk=True))
    await asyncio.sleep(0.01)  # the first bulk batch (4 rows) is running; 36 bulk rows wait
    single = await batcher.submit(rows(7, 1))
    assert single["id"].tolist() == [7]
    assert not bulk.done(), "the interactive row must not wait for the bulk rows to drain"
    bulk_result = await bulk
    assert bulk_result["id"].tolist() == list(range(1000, 1040))
    assert model.batch_sizes[:2] == [4, 1], "the interactive row runs next, on its own"
    await batcher.stop()


async def test_lone_request_decodes_and_runs_in_one_hop_on_the_inference_thread():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=8, max_queue_delay_ms=2000)
    prepared_on: list[str] = []

    def prepare() -> np.ndarray:
        prepared_on.append(threading.current_thread().name)
        return rows(7, 1)

    with batcher.incoming():
        assert batcher.idle  # the caller's own announcement does not count
        result = await batcher.run_alone(prepare)
    await batcher.stop()
    assert result["id"].tolist() == [7]
    assert prepared_on == ["infer-test_0"] and model.threads == {"infer-test_0"}
    assert (batcher.stats.batches, batcher.stats.rows) == (1, 1)


async def test_lone_runs_go_to_the_lone_session_and_batches_to_the_batched_one():
    batched, lone = RecordingModel(delay_s=0.05), RecordingModel()
    batcher = DynamicBatcher(
        batched, BatcherConfig(max_batch_size=8, max_queue_delay_ms=0), name="t", run_lone=lone
    )
    batcher.start()
    assert (await batcher.run_alone(lambda: rows(1, 1)))["id"].tolist() == [1]
    first = asyncio.create_task(batcher.submit(rows(2, 1)))
    while not batched.batch_sizes:  # its run has started: the next two wait and go together
        await asyncio.sleep(0.001)
    together = await asyncio.gather(first, batcher.submit(rows(3, 1)), batcher.submit(rows(4, 1)))
    await batcher.stop()
    assert [r["id"].tolist() for r in together] == [[2], [3], [4]]
    assert lone.batch_sizes == [1] and batched.batch_sizes == [1, 2]


async def test_batcher_is_not_idle_while_rows_wait_run_or_are_announced():
    model = RecordingModel(delay_s=0.1)
    batcher = await started(model, max_batch_size=8, max_queue_delay_ms=0)
    assert batcher.idle
    with batcher.incoming(), batcher.incoming():
        assert not batcher.idle  # another request is on its way
    running = asyncio.create_task(batcher.submit(rows(0, 1)))
    await asyncio.sleep(0.03)
    assert not batcher.idle  # its batch is running
    await running
    lone = asyncio.create_task(batcher.run_alone(lambda: rows(1, 1)))
    await asyncio.sleep(0.03)
    assert not batcher.idle  # a lone run is in flight
    late = batcher.submit(rows(2, 1))  # rows arriving meanwhile are batched after it
    assert [r["id"].tolist() for r in await asyncio.gather(lone, late)] == [[1], [2]]
    assert batcher.idle
    await batcher.stop()
    assert model.batch_sizes == [1, 1, 1]


async def test_lone_run_passes_prepare_errors_through_and_wraps_model_errors():
    model = RecordingModel(fail_on=3)
    batcher = await started(model)

    def undecodable() -> np.ndarray:
        raise OSError("not an image")

    with pytest.raises(OSError, match="not an image"):
        await batcher.run_alone(undecodable)
    with pytest.raises(ModelRunError, match="poisoned row"):
        await batcher.run_alone(lambda: rows(3, 1))
    assert (await batcher.run_alone(lambda: rows(4, 1)))["id"].tolist() == [4]  # still serving
    await batcher.stop()
    with pytest.raises(BatcherStopped):
        await batcher.run_alone(lambda: rows(5, 1))


async def test_announcement_ended_early_stops_the_wait_for_its_rows():
    model = RecordingModel()
    batcher = await started(model, max_batch_size=32, max_queue_delay_ms=2000)
    start = time.perf_counter()
    with batcher.incoming() as announcement:
        announcement.end()
        announcement.end()  # idempotent
        await batcher.submit(rows(0, 1))
    assert time.perf_counter() - start < 1.0, "did not wait for its own announced rows"
    assert batcher.idle
    await batcher.stop()
