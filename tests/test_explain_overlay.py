"""LIME building blocks without a server: overlay drawing, chunking, sampling fidelity to
lime's own loop, the thread -> event-loop bridge, and the no-TensorFlow rule."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from lime import lime_image

from serving import explain_lime
from serving import lime_overlay as overlay_module
from serving.errors import APIError
from serving.explain_lime import (
    BatchedLimeImageExplainer,
    BatcherClassifier,
    LimeCancelled,
    LimeSettings,
    PerturbedImages,
    chunk_bounds,
    mean_colours,
)
from serving.lime_overlay import LimeOverlayStyle, lime_overlay, source_index


def quarter_segments(grid: int = 8) -> np.ndarray:
    """Four regions: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right."""
    half = grid // 2
    rows, cols = np.indices((grid, grid))
    return ((rows >= half) * 2 + (cols >= half)).astype(np.int32)


def test_overlay_tints_positive_red_negative_blue_and_leaves_other_regions_alone():
    rgb = np.full((30, 50, 3), 128, np.uint8)  # not square, not the grid size
    out = lime_overlay(rgb, quarter_segments(), {0: 0.5, 1: -0.25, 2: 0.05})
    assert out.shape == rgb.shape and out.dtype == np.uint8
    style = LimeOverlayStyle()
    top_left, top_right = out[2:10, 2:20].astype(int), out[2:10, 30:48].astype(int)
    assert (top_left[..., 0] - top_left[..., 2]).min() > 50  # red: towards FAKE
    assert (top_right[..., 2] - top_right[..., 0]).min() > 20  # blue: towards REAL
    assert np.abs(top_left - 128).mean() > np.abs(top_right - 128).mean()  # stronger weight
    assert np.array_equal(out[20:, 30:], rgb[20:, 30:])  # region 3 has no weight: untouched
    yellow = np.all(out == style.boundary, axis=-1)
    assert yellow[:15, 24:26].any() and yellow[14:16, :25].any()  # outlines between regions
    assert not yellow[:, :20].all(axis=0).any()  # outlines are lines, not filled areas


def test_overlay_stripes_join_seamlessly_on_a_large_image(monkeypatch):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1100, 700, 3), dtype=np.uint8)
    segments = rng.integers(0, 12, (16, 16)).astype(np.int32)
    weights = {1: 0.3, 4: -0.2, 7: 0.1}
    striped = lime_overlay(rgb, segments, weights)
    monkeypatch.setattr(overlay_module, "STRIPE_ROWS", 10_000)
    assert np.array_equal(striped, lime_overlay(rgb, segments, weights))


def test_source_index_maps_image_pixels_to_model_pixels_like_the_resize():
    assert source_index(448, 224).tolist() == np.repeat(np.arange(224), 2).tolist()
    small = source_index(100, 224)
    assert small[0] == 1 and small[-1] == 222 and np.all(np.diff(small) > 0)
    assert source_index(224, 224).tolist() == list(range(224))


@pytest.mark.parametrize("total", [1, 63, 64, 65, 127, 128, 129, 300, 1000, 4999])
def test_chunks_are_large_contiguous_and_cover_every_sample(total):
    chunks = chunk_bounds(total, 64)
    assert chunks[0][0] == 0 and chunks[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    sizes = [stop - start for start, stop in chunks]
    assert min(sizes) >= min(total, 64) and max(sizes) < 128


def test_settings_refuse_small_chunks():
    with pytest.raises(ValueError, match="64"):
        LimeSettings(chunk_rows=16)


def test_vectorised_sampling_equals_limes_own_loop():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    segments = np.repeat(np.repeat(np.arange(9).reshape(3, 3), 4, 0), 4, 1).astype(np.int32)
    fudged = (image // 3).astype(np.uint8)
    seen: list[np.ndarray] = []

    def classifier(rows: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(rows, np.float64))
        p = np.asarray(rows, np.float64).reshape(len(rows), -1).mean(axis=1) / 255.0
        return np.column_stack([1 - p, p])

    expected_data, expected_labels = lime_image.LimeImageExplainer(random_state=5).data_labels(
        image, fudged, segments, classifier, 150, batch_size=10
    )
    expected_rows = np.concatenate(seen)
    seen.clear()
    data, labels = BatchedLimeImageExplainer(random_state=5).data_labels(
        image, fudged, segments, classifier, 150, batch_size=64
    )
    assert np.array_equal(data, expected_data)
    assert np.array_equal(np.concatenate(seen), expected_rows)  # the very same images
    np.testing.assert_allclose(labels, expected_labels, rtol=0, atol=1e-12)
    assert [len(rows) for rows in seen] == [75, 75]


@pytest.mark.parametrize("masked_regions", [256, 1])  # masked copies / a gather per row
def test_perturbed_images_switch_whole_regions(monkeypatch, masked_regions):
    monkeypatch.setattr(explain_lime, "MAX_MASKED_REGIONS", masked_regions)
    image = np.full((4, 4, 3), 200, np.uint8)
    fudged = np.full((4, 4, 3), 10, np.uint8)
    segments = np.array([[0, 0, 1, 1]] * 4, np.int32)
    rows = PerturbedImages(image, fudged, segments)(np.array([[1, 0], [0, 1]]))
    assert rows.dtype == np.float32 and rows.shape == (2, 4, 4, 3)
    assert np.all(rows[0, :, :2] == 200) and np.all(rows[0, :, 2:] == 10)
    assert np.all(rows[1, :, :2] == 10) and np.all(rows[1, :, 2:] == 200)


def test_perturbed_images_by_masked_copies_and_by_gather_are_lime_s_exactly(monkeypatch):
    """Random images, 256 irregular regions (the most a uint8 lookup table maps): the masked
    copies and the per-row gather give lime's own ``fudged`` / ``image`` pixels, bit for
    bit."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (23, 31, 3), np.uint8)
    fudged = rng.integers(0, 256, (23, 31, 3), np.uint8)
    segments = rng.permutation(np.arange(23 * 31) % 256).reshape(23, 31).astype(np.int32)
    masks = rng.integers(0, 2, (9, 256))
    expected = np.where(masks[:, segments][..., None] == 1, image, fudged).astype(np.float32)
    assert explain_lime.MAX_MASKED_REGIONS == 256
    assert np.array_equal(PerturbedImages(image, fudged, segments)(masks), expected)
    monkeypatch.setattr(explain_lime, "MAX_MASKED_REGIONS", 255)
    assert np.array_equal(PerturbedImages(image, fudged, segments)(masks), expected)


def test_mean_colours_are_the_image_lime_fudges_with():
    """lime's own loop (``hide_color=None``): each region's mean colour, truncated."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (23, 31, 3), np.uint8)
    segments = rng.permutation(np.arange(23 * 31) % 40).reshape(23, 31).astype(np.int32)
    expected = image.copy()
    for region in np.unique(segments):
        inside = segments == region
        expected[inside] = [np.mean(image[inside][:, c]) for c in range(3)]
    assert np.array_equal(mean_colours(image, segments), expected)
    fudged: list[np.ndarray] = []

    class Recording(BatchedLimeImageExplainer):
        def data_labels(self, image, fudged_image, *args, **kwargs):
            fudged.append(fudged_image.copy())
            return super().data_labels(image, fudged_image, *args, **kwargs)

    Recording(random_state=0).explain_instance(
        image, lambda rows: np.tile([0.5, 0.5], (len(rows), 1)), hide_color=None,
        num_samples=10, segmentation_fn=lambda _: segments,
    )  # fmt: skip
    Recording(random_state=0).explain_instance(
        image, lambda rows: np.tile([0.5, 0.5], (len(rows), 1)),
        hide_color=mean_colours(image, segments), num_samples=10,
        segmentation_fn=lambda _: segments,
    )  # fmt: skip
    assert np.array_equal(fudged[0], expected) and np.array_equal(fudged[1], expected)


def test_chunks_in_flight_are_not_overwritten_before_they_are_scored():
    """Rows are built into reused buffers: a chunk queued with ``submit`` is scored only when
    waited for (as a slow batcher would), and still holds lime's images then."""
    import concurrent.futures

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (12, 12, 3), np.uint8)
    segments = np.repeat(np.repeat(np.arange(9).reshape(3, 3), 4, 0), 4, 1).astype(np.int32)
    fudged = (image // 3).astype(np.uint8)

    def score(rows: np.ndarray) -> np.ndarray:
        seen.append(np.array(rows, np.float64))
        p = seen[-1].reshape(len(rows), -1).mean(axis=1) / 255.0
        return np.column_stack([1 - p, p])

    class Deferred:
        """Scores a chunk only when it is waited for."""

        def __init__(self) -> None:
            self.queued: dict[int, np.ndarray] = {}

        def submit(self, rows: np.ndarray) -> concurrent.futures.Future:
            future: concurrent.futures.Future = concurrent.futures.Future()
            self.queued[id(future)] = rows
            return future

        def wait(self, future: concurrent.futures.Future) -> np.ndarray:
            return score(self.queued.pop(id(future)))

    seen: list[np.ndarray] = []
    lime_image.LimeImageExplainer(random_state=5).data_labels(
        image, fudged, segments, score, 400, batch_size=10
    )
    expected_rows = np.concatenate(seen)
    for in_flight in (1, 2, 3):
        seen.clear()
        BatchedLimeImageExplainer(chunks_in_flight=in_flight, random_state=5).data_labels(
            image, fudged, segments, Deferred(), 400, batch_size=64
        )
        assert np.array_equal(np.concatenate(seen), expected_rows), in_flight


class LoopThread:
    """An event loop running in a background thread (the server's loop, in miniature)."""

    def __enter__(self) -> asyncio.AbstractEventLoop:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self.loop

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_classifier_bridge_returns_calibrated_two_columns_from_the_loop():
    async def infer(rows: np.ndarray) -> dict[str, np.ndarray]:
        assert threading.current_thread() is not threading.main_thread()  # on the loop
        return {"probability_fake": np.full((len(rows), 1), 0.8, np.float32)}

    with LoopThread() as loop:
        classifier = BatcherClassifier(infer, loop, temperature=2.0, timeout_s=5.0)
        scores = classifier(np.zeros((70, 4, 4, 3), np.float32))
    logit = np.log(0.8 / 0.2)
    expected = 1 / (1 + np.exp(-logit / 2.0))
    assert scores.shape == (70, 2)
    np.testing.assert_allclose(scores[:, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert classifier.submissions == [70]


def test_classifier_bridge_times_out_with_504_and_stops_when_cancelled():
    async def never(rows: np.ndarray) -> dict[str, np.ndarray]:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    cancelled = threading.Event()
    with LoopThread() as loop:
        classifier = BatcherClassifier(never, loop, 1.0, timeout_s=0.2, cancelled=cancelled)
        with pytest.raises(APIError) as error:
            classifier(np.zeros((64, 2, 2, 3), np.float32))
        cancelled.set()
        with pytest.raises(LimeCancelled):
            classifier.submit(np.zeros((64, 2, 2, 3), np.float32))
    assert error.value.status == 504 and "0.2 s" in error.value.message


def test_serving_with_lime_never_imports_tensorflow():
    code = (
        "import sys, serving.app, serving.explain_lime, serving.lime_overlay;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (1, 9), (9, 1), (64, 64)])
def test_overlay_png_is_lossless(shape):
    import base64
    import io

    from PIL import Image

    from serving.overlay import png_base64

    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    smooth = np.broadcast_to(np.arange(shape[1], dtype=np.uint8)[None, :, None], noise.shape)
    for rgb in (noise, smooth, np.asfortranarray(noise)):
        decoded = Image.open(io.BytesIO(base64.b64decode(png_base64(rgb))))
        decoded.load()  # checks every chunk's CRC and the deflate stream's checksum
        assert decoded.format == "PNG" and decoded.mode == "RGB"
        assert np.array_equal(np.asarray(decoded), rgb)


def test_overlay_png_compresses_a_smooth_overlay():
    from serving.overlay import cam_overlay, png_bytes

    rgb = np.full((200, 300, 3), 120, np.uint8)
    overlay = cam_overlay(rgb, np.arange(49, dtype=np.float32).reshape(7, 7))
    assert len(png_bytes(overlay)) < overlay.nbytes / 4


def test_large_jpeg_overlay_keeps_every_pixel_while_the_model_input_is_drafted():
    from core.preprocessing import decode_rgb, encode_jpeg

    rgb = np.random.default_rng(1).integers(0, 255, (600, 500, 3), dtype=np.uint8)
    data = encode_jpeg(rgb)
    assert decode_rgb(data).shape == (300, 250, 3)  # the contract's draft reduction
    assert decode_rgb(data, full_size=True).shape == (600, 500, 3)
