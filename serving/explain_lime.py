"""``method=lime``: LIME over superpixels, scored through the model's dynamic batcher.

Per request:

1. the ``S x S`` model input (``core.preprocessing``) is segmented ONCE (quickshift or slic);
2. ``lime``'s :class:`~lime.lime_image.LimeImageExplainer` draws ``num_samples`` on/off
   masks over the regions (seeded by ``random_state``); the perturbed images are built
   (:class:`PerturbedImages`) and scored in chunks of 64 to 127 rows, each chunk ONE submission
   to the same :class:`~serving.batcher.DynamicBatcher` that serves predictions (the next
   chunk is built while the previous one runs);
3. the classifier function answers ``[p_real, p_fake]`` with the calibrated probability
   (``core.decision``), and lime's weighted ridge regression gives one weight per region
   (positive = towards FAKE);
4. the top ``num_features`` regions are drawn over the uploaded image (:mod:`lime_overlay`).

lime is synchronous, so all of this runs in one of the server's background threads (at a
lower CPU priority than predictions, ``--background-nice``); the batcher lives on the event
loop and each chunk crosses over with :func:`asyncio.run_coroutine_threadsafe`.
The route holds one of ``lime_concurrency`` slots meanwhile (503 when none is free).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from lime import lime_image

from core.decision import CLASS_NAMES, calibrate
from serving.errors import APIError
from serving.explain import ExplainParams, ExplainRequest, ExplainResult, render_overlay
from serving.inference import probabilities
from serving.lime_overlay import lime_overlay

MIN_CHUNK_ROWS = 64
MAX_MASKED_REGIONS = 256  # perturbed images by masked copies up to this many regions
FAKE_LABEL = 1  # column of p_fake in the classifier output (core.decision.CLASS_NAMES)


@dataclass(frozen=True)
class LimeSettings:
    """How LIME segments, samples and scores (the request chooses the rest)."""

    chunk_rows: int = 64  # rows per batcher submission: at least this, under twice this
    chunks_in_flight: int = 2  # submissions queued ahead while the next chunk is built
    quickshift_kernel_size: float = 4.0  # lime's defaults
    quickshift_max_dist: float = 200.0
    quickshift_ratio: float = 0.2
    slic_segments: int = 50
    slic_compactness: float = 10.0
    kernel_width: float = 0.25  # lime's exponential kernel over cosine distance
    feature_selection: str = "highest_weights"  # one ridge fit; lime's "auto" may do dozens
    hide_color: float | None = None  # None: a switched-off region takes its mean colour
    timeout_slack_s: float = 5.0  # waited beyond the batcher's own request timeout

    def __post_init__(self) -> None:
        if self.chunk_rows < MIN_CHUNK_ROWS:
            raise ValueError(f"chunk_rows must be at least {MIN_CHUNK_ROWS}")
        if self.chunks_in_flight < 1:
            raise ValueError("chunks_in_flight must be at least 1")


DEFAULT_SETTINGS = LimeSettings()


class LimeCancelled(Exception):
    """The request went away; the worker thread stops before its next chunk."""


def segment(image: np.ndarray, method: str, seed: int, settings: LimeSettings) -> np.ndarray:
    """Region id ``0..n-1`` per pixel of a ``uint8`` RGB model input."""
    from skimage.segmentation import quickshift, slic

    if method == "quickshift":
        raw = quickshift(
            image,
            kernel_size=settings.quickshift_kernel_size,
            max_dist=settings.quickshift_max_dist,
            ratio=settings.quickshift_ratio,
            rng=seed,
        )
    elif method == "slic":
        raw = slic(
            image,
            n_segments=settings.slic_segments,
            compactness=settings.slic_compactness,
            start_label=0,
        )
    else:
        raise ValueError(f"unknown segmentation {method!r}: use quickshift or slic")
    _, labels = np.unique(raw, return_inverse=True)
    return labels.reshape(raw.shape).astype(np.int32)


def mean_colours(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each region of a ``uint8`` RGB image filled with its mean colour, truncated to
    ``uint8``: the image lime's ``explain_instance`` fudges with when ``hide_color`` is
    None, by one ``np.bincount`` per channel (about 1 ms for 224 x 224) instead of its
    masks and means per region (15-20 ms for 30-40 regions)."""
    labels = segments.reshape(-1)
    counts = np.bincount(labels)
    sums = [np.bincount(labels, weights=image[..., c].reshape(-1)) for c in range(3)]
    means = np.stack(sums, axis=1) / np.maximum(counts, 1)[:, None]
    return means.astype(np.uint8)[segments]


def chunk_bounds(total: int, least: int) -> list[tuple[int, int]]:
    """``total`` rows in near-equal chunks of ``least`` to ``2 * least - 1`` rows (one chunk
    when ``total < least``): every batcher submission is large, none is a small leftover."""
    count = max(1, total // least)
    edges = np.linspace(0, total, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


class PerturbedImages:
    """LIME's perturbed images of one ``uint8`` image: region ``r`` of row ``i`` from
    ``image`` if ``masks[i, r]`` else from ``fudged`` (exactly what lime's own
    ``data_labels`` builds, without its loops), as ``float32`` rows.

    With up to :data:`MAX_MASKED_REGIONS` regions, each row is two masked copies through
    OpenCV (``cv2.LUT`` maps region ids to a pixel mask, ``cv2.copyTo`` copies ``image``
    where it is set and ``fudged`` where it is not): 0.09 ms a row for a 224 x 224 image,
    any chunk size, against 0.24 ms (0.53 in chunks of 4) for the matrix product over all
    regions it replaced (``masks @ by_region + fudged``; one thread, 40 regions). Past that
    many regions each row is gathered per value instead (0.3 ms).

    The rows live in ``buffers`` reused buffers, taken in turn: a chunk's rows are valid
    until ``buffers`` more chunks are built.
    """

    def __init__(
        self, image: np.ndarray, fudged: np.ndarray, segments: np.ndarray, buffers: int = 1
    ) -> None:
        self._shape = image.shape
        self._image = np.ascontiguousarray(image, np.float32)
        self._fudged = np.ascontiguousarray(fudged, np.float32)
        self._regions = int(segments.max()) + 1
        self._segments: np.ndarray | None = None  # region id per pixel, for cv2.LUT
        self._region_of_value: np.ndarray | None = None  # region id per value, past that
        if self._regions <= MAX_MASKED_REGIONS:
            self._segments = np.ascontiguousarray(segments, np.uint8)
        else:
            self._region_of_value = np.repeat(segments.reshape(-1), image.shape[-1])
        self._buffers = [np.empty((0, *image.shape), np.float32) for _ in range(buffers)]
        self._built = 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        slot = self._built % len(self._buffers)
        self._built += 1
        if len(self._buffers[slot]) < len(masks):
            self._buffers[slot] = np.empty((len(masks), *self._shape), np.float32)
        rows = self._buffers[slot][: len(masks)]
        if self._region_of_value is None:
            self._masked_copies(masks, rows)
        else:
            image, fudged = self._image.reshape(-1), self._fudged.reshape(-1)
            for keep, row in zip(masks.astype(bool), rows.reshape(len(masks), -1), strict=True):
                np.copyto(row, fudged)
                np.copyto(row, image, where=keep[self._region_of_value])
        return rows

    def _masked_copies(self, masks: np.ndarray, rows: np.ndarray) -> None:
        shown = np.zeros((len(masks), 256), np.uint8)  # a 0/255 lookup table per row
        shown[:, : self._regions] = np.where(masks.astype(bool), 255, 0)
        for table, row in zip(shown, rows, strict=True):
            region_shown = cv2.LUT(self._segments, table)
            cv2.copyTo(self._image, region_shown, row)
            cv2.copyTo(self._fudged, cv2.bitwise_not(region_shown), row)


class BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
    """lime's image explainer with a vectorised, chunked ``data_labels``.

    It draws the same masks from the same random state as lime's loop (same seed, same
    samples), builds each chunk at once and, when the classifier function has a
    ``submit(rows) -> Future`` method, keeps ``chunks_in_flight`` chunks queued. A chunk's
    rows are reused for a later chunk once it is scored: a classifier must not keep them.
    """

    def __init__(self, chunks_in_flight: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chunks_in_flight = chunks_in_flight
        self.scoring_seconds = 0.0

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
        started = time.perf_counter()
        n_features = np.unique(segments).shape[0]
        if segments.min() != 0 or segments.max() != n_features - 1:
            raise ValueError("segments must be numbered 0..n-1")
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
            (num_samples, n_features)
        )
        data[0, :] = 1
        submit = getattr(classifier_fn, "submit", None)
        # chunk i is built once chunk i - chunks_in_flight is scored: its buffer is free
        build = PerturbedImages(image, fudged_image, segments, buffers=self.chunks_in_flight)
        labels: list[np.ndarray] = []
        pending: deque = deque()
        try:
            for start, stop in chunk_bounds(num_samples, batch_size):
                rows = build(data[start:stop])
                if submit is None:
                    labels.append(np.asarray(classifier_fn(rows)))
                    continue
                pending.append(submit(rows))
                if len(pending) >= self.chunks_in_flight:
                    labels.append(classifier_fn.wait(pending.popleft()))
            while pending:
                labels.append(classifier_fn.wait(pending.popleft()))
        finally:
            for future in pending:
                future.cancel()
        self.scoring_seconds = time.perf_counter() - started
        return data, np.concatenate(labels)


class BatcherClassifier:
    """lime's ``classifier_fn``: rows -> ``[p_real, p_fake]`` (calibrated) via the batcher.

    Called from a worker thread; ``submit`` hands a chunk to the event loop and returns a
    :class:`concurrent.futures.Future`, ``wait`` collects it (bounded by ``timeout_s``).
    """

    def __init__(
        self,
        infer: Callable,
        loop: asyncio.AbstractEventLoop,
        temperature: float,
        timeout_s: float,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._infer = infer
        self._loop = loop
        self._temperature = temperature
        self._timeout_s = timeout_s
        self._cancelled = cancelled or threading.Event()
        self.submissions: list[int] = []  # rows per batcher submission, in order

    async def _score(self, rows: np.ndarray) -> np.ndarray:
        p_fake = calibrate(probabilities(await self._infer(rows)), self._temperature)
        return np.column_stack([1.0 - p_fake, p_fake])

    def submit(self, rows: np.ndarray) -> concurrent.futures.Future:
        if self._cancelled.is_set():
            raise LimeCancelled("the explain request was cancelled")
        self.submissions.append(len(rows))
        return asyncio.run_coroutine_threadsafe(self._score(rows), self._loop)

    def wait(self, future: concurrent.futures.Future) -> np.ndarray:
        try:
            return future.result(timeout=self._timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise APIError(
                504, "timeout", f"LIME scoring got no model run within {self._timeout_s:g} s"
            ) from None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return self.wait(self.submit(rows))


@dataclass
class LimeExplanation:
    """What :func:`run_lime` found, before drawing."""

    segments: np.ndarray  # region id per model-input pixel
    regions: list[dict]  # [{"id", "weight"}], strongest first
    intercept: float
    score: float  # R^2 of lime's local linear model
    local_prediction: float
    submissions: list[int]
    seconds: dict[str, float]


def run_lime(
    model_input: np.ndarray,
    classifier: BatcherClassifier | Callable[[np.ndarray], np.ndarray],
    params: ExplainParams,
    settings: LimeSettings = DEFAULT_SETTINGS,
) -> LimeExplanation:
    """Segment once, sample, score, fit (blocking; run it in a worker thread)."""
    image = np.clip(np.asarray(model_input), 0, 255).round().astype(np.uint8)
    started = time.perf_counter()
    segments = segment(image, params.segmentation, params.random_state, settings)
    segmented = time.perf_counter()
    hidden = settings.hide_color
    if hidden is None:  # lime fills with hide_color by broadcasting: the image it would build
        hidden = mean_colours(image, segments)
    explainer = BatchedLimeImageExplainer(
        chunks_in_flight=settings.chunks_in_flight,
        kernel_width=settings.kernel_width,
        feature_selection=settings.feature_selection,
        random_state=params.random_state,
    )
    explanation = explainer.explain_instance(
        image,
        classifier,
        labels=(FAKE_LABEL,),
        hide_color=hidden,
        top_labels=None,
        num_features=params.num_features,
        num_samples=params.num_samples,
        batch_size=settings.chunk_rows,
        segmentation_fn=lambda _: segments,
        random_seed=params.random_state,
    )
    finished = time.perf_counter()
    regions = [
        {"id": int(region), "weight": float(weight)}
        for region, weight in explanation.local_exp[FAKE_LABEL]
    ]
    return LimeExplanation(
        segments=segments,
        regions=regions,
        intercept=float(explanation.intercept[FAKE_LABEL]),
        score=float(explanation.score),
        local_prediction=float(np.ravel(explanation.local_pred)[0]),
        submissions=list(getattr(classifier, "submissions", [])),
        seconds={
            "segmentation": segmented - started,
            "sampling_and_scoring": explainer.scoring_seconds,
            "fit": finished - segmented - explainer.scoring_seconds,
        },
    )


def _explain_blocking(
    request: ExplainRequest, classifier: BatcherClassifier, settings: LimeSettings
) -> ExplainResult:
    found = run_lime(request.model_input, classifier, request.params, settings)
    started = time.perf_counter()
    weights = {region["id"]: region["weight"] for region in found.regions}
    encoded, width, height = render_overlay(
        request, lambda rgb: lime_overlay(rgb, found.segments, weights)
    )
    found.seconds["overlay"] = time.perf_counter() - started
    params = request.params
    return ExplainResult(
        encoded,
        width,
        height,
        regions=found.regions,
        extra={
            "lime": {
                "label": CLASS_NAMES[FAKE_LABEL],
                "segmentation": params.segmentation,
                "segments": int(found.segments.max()) + 1,
                "num_samples": params.num_samples,
                "num_features": params.num_features,
                "random_state": params.random_state,
                "intercept": found.intercept,
                "score": found.score,
                "local_prediction": found.local_prediction,
                "batcher_submissions": len(found.submissions),
                "rows_per_submission": [min(found.submissions), max(found.submissions)],
                "timings_ms": {k: round(v * 1000.0, 3) for k, v in found.seconds.items()},
            }
        },
    )


async def explain_lime(
    request: ExplainRequest, settings: LimeSettings = DEFAULT_SETTINGS
) -> ExplainResult:
    """The ``lime`` explainer of ``/v1/explain`` (see the module docstring)."""
    cancelled = threading.Event()
    classifier = BatcherClassifier(
        request.infer,
        request.loop,
        temperature=request.model.entry.temperature,
        timeout_s=request.model.batcher.config.request_timeout_s + settings.timeout_slack_s,
        cancelled=cancelled,
    )
    try:
        return await request.run_background(_explain_blocking, request, classifier, settings)
    except asyncio.CancelledError:
        cancelled.set()  # the worker stops before its next chunk
        raise
