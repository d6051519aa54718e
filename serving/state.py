"""Everything one app instance owns: config, metrics, loaded models, thread pools, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import threadpoolctl

from core.facecrop import import_cv2, warm_detectors
from core.modelrepo import ModelEntry, ModelRepository
from core.preprocessing import encode_jpeg, preprocess_bytes
from core.provenance import EvidenceConfig, EvidenceReader
from serving.batcher import BatcherConfig, DynamicBatcher
from serving.config import ServerConfig
from serving.errors import unavailable
from serving.explain import find_explainer
from serving.metrics import ServingMetrics
from serving.models import LoadedModel, ModelPool, find_entries
from serving.runtime import ModelRuntime, fastest_batch_size

logger = logging.getLogger("serving")
T = TypeVar("T")


def batcher_config(config: ServerConfig, entry: ModelEntry) -> BatcherConfig:
    """The server's batching settings, overridden by the model's own (``metadata.json``
    ``batching``); a name the batcher does not have, or a bad value, is a ValueError."""
    own = entry.batching
    unknown = set(own) - {item.name for item in dataclasses.fields(BatcherConfig)}
    if unknown:
        raise ValueError(f"metadata.json batching has unknown settings {sorted(unknown)}")
    return dataclasses.replace(config.pick(BatcherConfig), **own)


def choose_quiet_bulk_size(runtime: ModelRuntime, batching: BatcherConfig) -> BatcherConfig:
    """``batching`` with ``quiet_bulk_batch_size`` 0 replaced by the candidate size the model
    runs fastest per row (the growth of bulk runs, ``serving/batcher.py``)."""
    if batching.bulk_quiet_s == 0 or batching.quiet_bulk_batch_size:
        return batching
    size, per_row = fastest_batch_size(
        runtime.run, batching.quiet_bulk_candidates(), runtime.input_size
    )
    logger.info(
        "%s:%s bulk runs once predictions are quiet: %d rows (%s ms per row)",
        runtime.entry.name, runtime.entry.version, size,
        ", ".join(f"{n}: {t * 1000:.2f}" for n, t in per_row.items()),
    )  # fmt: skip
    return dataclasses.replace(batching, quiet_bulk_batch_size=size)


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread; elsewhere a no-op,
    since there it would lower the whole process)."""
    if nice and sys.platform == "linux":
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)


WARM_SAMPLE_SIDE = 320  # about the size of a face upload


@functools.cache
def warm_sample(side: int = WARM_SAMPLE_SIDE) -> bytes:
    """The JPEG that warms decode threads and keeps idle models warm: a drawn face (skin
    ellipse, dark eyes and brows, nose, mouth) that the face detector finds, so the crop
    and resize run as for a real face. (With the Haar cascade used before YuNet, a flat
    grey image left the cascade's later stages cold: after 30 s idle a real face's
    preprocessing took 26-28 ms against 17-18 ms with this one, 10 ms warm.)"""
    cv2 = import_cv2()
    image = np.full((side, side, 3), 90, np.uint8)
    centre = side // 2

    def at(fraction: float) -> int:
        return int(side * fraction)

    cv2.ellipse(image, (centre, centre), (at(0.3), at(0.4)), 0, 0, 360, (200, 170, 150), -1)
    for side_sign in (-1, 1):
        eye = (centre + side_sign * at(0.12), at(0.40))
        cv2.ellipse(image, eye, (at(0.07), at(0.035)), 0, 0, 360, (40, 30, 30), -1)
        brow = ((centre + side_sign * at(0.05), at(0.32)), (centre + side_sign * at(0.2), at(0.31)))
        cv2.line(image, *brow, (60, 40, 30), max(1, side // 50))
    cv2.line(image, (centre, at(0.45)), (centre, at(0.6)), (150, 110, 100), max(1, side // 80))
    cv2.ellipse(image, (centre, at(0.7)), (at(0.12), at(0.04)), 0, 0, 360, (90, 40, 40), -1)
    return encode_jpeg(cv2.GaussianBlur(image, (5, 5), 0))


def _warm_run(model: LoadedModel, sample: bytes, config) -> None:
    """One tiny image through the model's preprocessing and the session that answers the
    first request after idle, the lone one (no metrics, no batcher)."""
    model.runtime.run(preprocess_bytes(sample, config)[None], lone=True)


class ServingState:
    """Lives in ``app.state.serving``; started and stopped by the app's lifespan."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServingMetrics()
        self.pool = ModelPool([])
        self.ready = False
        self.draining = False
        self.problem: str | None = "starting"
        self._cpu_pool: ThreadPoolExecutor | None = None
        self._background_pool: ThreadPoolExecutor | None = None
        self.lime_slots: asyncio.Semaphore | None = None
        self.video_slots = asyncio.Semaphore(config.video_concurrency)  # serving/video.py
        self._last_work = 0.0  # loop time of the last CPU work handed to the pool
        self._keep_warm: asyncio.Task | None = None
        self.keep_warm_runs = 0
        self.evidence = (  # provenance reader (core.provenance); None with --no-evidence
            EvidenceReader(EvidenceConfig(trust_anchors=config.c2pa_trust_anchors))
            if config.evidence
            else None
        )

    async def start(self) -> None:
        """Load every entry, warm it up, start its batcher; ready if at least one loaded."""
        self._cpu_pool = ThreadPoolExecutor(
            self.config.worker_decode_threads, thread_name_prefix="decode"
        )
        self._background_pool = ThreadPoolExecutor(
            self.config.lime_concurrency,
            thread_name_prefix="background",
            initializer=lower_thread_priority,
            initargs=(self.config.background_nice,),
        )
        self.lime_slots = asyncio.Semaphore(self.config.lime_concurrency)
        if self.evidence is not None:  # warns when C2PA manifests cannot be verified
            (logger.info if self.evidence.c2pa else logger.warning)(self.evidence.describe())
        root = self.config.models_dir
        entries = find_entries(ModelRepository(root), self.config.latest_only)
        if not entries:
            self.problem = f"no servable model in repository {root}"
            logger.error("%s: expected %s/<name>/<version>/{model.onnx,metadata.json}", root, root)
            return
        import onnxruntime as ort

        logger.info(
            "execution providers: preference %s, available %s",
            ",".join(self.config.providers), ",".join(ort.get_available_providers()),
        )  # fmt: skip
        loaded = [model for model in [await self._load(e) for e in entries] if model is not None]
        self.pool = ModelPool(loaded, self.config.default_model)
        if not loaded:
            self.problem = f"no model in {root} could be loaded; see the log"
            return
        await self.warm_decode_threads()
        if self.config.lime_concurrency > 0:
            # lime and scikit-image take 1-3 s to import: pay that before ready, not on the
            # first explanation request.
            try:
                await asyncio.to_thread(find_explainer, "lime")
            except Exception as exc:  # explain?method=lime will answer with the error
                logger.warning("LIME is not available: %s", exc)
        if self.config.keep_warm_s > 0:
            self._keep_warm = asyncio.get_running_loop().create_task(self._keep_warm_loop())
        # BLAS (LIME's perturbed images and ridge fit; numpy's and scipy's, both loaded by
        # now) on the calling thread only: a BLAS pool's threads would run beside predictions
        # at normal priority, outside --background-nice, on the cores the sessions use
        threadpoolctl.threadpool_limits(1, user_api="blas")
        self.ready, self.problem = True, None
        self.metrics.ready.set(1)
        names = ", ".join(f"{m.name}:{m.version}" for m in loaded)
        logger.info("ready: %s (default %s)", names, self.pool.default_name)

    async def _load(self, entry: ModelEntry) -> LoadedModel | None:
        """One entry's session, warmed up, with its batcher started; None (logged) if it
        cannot be loaded."""
        try:
            batching = batcher_config(self.config, entry)
            runtime = await asyncio.to_thread(ModelRuntime, entry, self.config.runtime_config())
            await asyncio.to_thread(runtime.warmup, self.config.warmup_sizes)
            batching = await asyncio.to_thread(choose_quiet_bulk_size, runtime, batching)
        except Exception as exc:
            logger.error("could not load %s:%s: %s", entry.name, entry.version, exc)
            return None
        batcher = DynamicBatcher(
            runtime.run,
            batching,
            self.metrics.observer(entry.name, entry.version),
            name=f"{entry.name}:{entry.version}",
            run_lone=functools.partial(runtime.run, lone=True),
            run_stoppable=runtime.run,
        )
        batcher.start()
        return LoadedModel(entry, runtime, batcher)

    async def warm_decode_threads(self) -> None:
        """Every model's preprocessing once on every decode thread and on its own inference
        thread (which decodes lone requests, ``DynamicBatcher.run_alone``) before ready:
        OpenCV's import (about 0.3 s) and face detectors for each of these threads (they
        run at once, so each takes its own from ``core.facecrop``'s pool), and as many for
        each usual photo shape (one per input size), are paid here, not by the first
        uploads."""
        configs = {model.preprocess_config(self.config.max_pixels) for model in self.pool}
        sample = warm_sample()
        threads = self.config.worker_decode_threads
        barrier = threading.Barrier(threads)  # each task holds its thread until all have one

        def warm() -> None:
            for config in configs:
                preprocess_bytes(sample, config)
            barrier.wait(timeout=60)

        inference_threads = (
            model.batcher.on_inference_thread(
                functools.partial(
                    _warm_run, model, sample, model.preprocess_config(self.config.max_pixels)
                )
            )
            for model in self.pool
        )
        try:
            await asyncio.gather(
                *(self.run_blocking(warm) for _ in range(threads)), *inference_threads
            )
            if any(config.face_crop for config in configs):  # the sample is square
                await self.run_blocking(warm_detectors, threads + len(self.pool))
        except Exception as exc:  # a slow or broken warm-up costs the first uploads, no more
            logger.warning("decode threads not warmed up: %s", exc)

    async def _keep_warm_loop(self) -> None:
        """While no request comes, run every model once on a tiny image every ``keep_warm_s``.
        A model with work in its batcher (a long explanation's rows, which go through no
        request hop that :meth:`touch` sees) counts as a request.

        Measured on this project's 2-core VM: after 10 s idle the first upload took about 130 ms
        in the server (20 ms warm), and the same decode + model run in a bare Python process
        was as slow, so it is the machine (the host reclaims an idle guest's memory), not the
        server; touching the decode path and the weights every 0.5 s cut it to about 45 ms
        for about 2 % of one core while idle, and nothing under load."""
        loop = asyncio.get_running_loop()
        sample = warm_sample()
        period = self.config.keep_warm_s
        while True:
            await asyncio.sleep(period)
            if self.draining or loop.time() - self._last_work < period:
                continue
            if any(model.batcher.busy for model in self.pool):
                self.touch()
                continue
            for model in self.pool:
                config = model.preprocess_config(self.config.max_pixels)
                try:  # on the model's inference thread: lone requests decode there too
                    await model.batcher.on_inference_thread(
                        functools.partial(_warm_run, model, sample, config)
                    )
                except Exception as exc:  # never let keeping warm hurt serving
                    logger.warning("keep-warm run of %s failed: %s", model.name, exc)
            self.keep_warm_runs += 1

    async def stop(self) -> None:
        """Refuse new work, let queued work finish, release the threads."""
        if self._keep_warm is not None:
            self._keep_warm.cancel()
        self.draining, self.ready = True, False
        self.problem = "shutting down"
        self.metrics.ready.set(0)
        await asyncio.gather(*(model.batcher.stop(drain=True) for model in self.pool))
        for pool in (self._cpu_pool, self._background_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        logger.info("stopped")
        if self.evidence is not None:
            self.evidence.close()

    @contextlib.asynccontextmanager
    async def slot(self, slots: asyncio.Semaphore, code: str, message: str) -> AsyncIterator[None]:
        """Hold one of ``slots`` (LIME, video) meanwhile; 503 ``code`` when none is free."""
        if slots.locked():
            raise unavailable(code, message, self.config.retry_after_s)
        async with slots:
            yield

    def require_serving(self) -> None:
        """Raise 503 unless models are loaded and the server is not shutting down."""
        if self.draining:
            raise unavailable(
                "shutting_down", "the server is shutting down", self.config.retry_after_s
            )
        if not self.ready:
            raise unavailable("not_ready", f"not ready: {self.problem}", self.config.retry_after_s)

    def model(self, name: str | None, version: str | None) -> LoadedModel:
        self.require_serving()
        return self.pool.resolve(name, version)

    def touch(self) -> None:
        """Note that a request's CPU work starts now (keep-warm runs only while none comes)."""
        self._last_work = asyncio.get_running_loop().time()

    async def run_blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU work (decode, resize, overlays) on the app's thread pool, off the loop."""
        loop = asyncio.get_running_loop()
        self.touch()
        return await loop.run_in_executor(
            self._cpu_pool, functools.partial(function, *args, **kwargs)
        )

    async def run_background(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run long CPU work (a LIME explanation) on the lower-priority background threads."""
        self.touch()
        return await asyncio.get_running_loop().run_in_executor(
            self._background_pool, functools.partial(function, *args, **kwargs)
        )
