"""/v1/explain end to end, in process: LIME through the batcher, and the fast CAM.

Besides the tiny brightness model of ``helpers``, these tests use a *texture* model built
here with ``onnx.helper``: its CAM is the local high-frequency energy ``|grey - blur(grey)|``
per block, so a checkerboard "fake cue" pasted into one corner of a smooth image is what
makes it say FAKE, and both explanations must point at that corner.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import (
    TinyModelSpec,
    png_image,
    serving_client,
    slow_fields,
    test_config,
    write_model_entry,
)
from onnx import helper
from PIL import Image

from core.preprocessing import PreprocessConfig, encode_png, preprocess_bytes
from drills.soak.standin import cam_head, detector_model
from serving.explain_lime import DEFAULT_SETTINGS, segment

pytestmark = pytest.mark.asyncio

TEXTURE_SIZE = 64  # model input side
TEXTURE_CAM = 4  # cam is 4 x 4 (16 x 16 pixel blocks)
LIME_FAST = "method=lime&segmentation=slic&num_samples=200"


# --- the texture model and cue images ------------------------------------------------------


def texture_model(size: int = TEXTURE_SIZE, cam_size: int = TEXTURE_CAM) -> onnx.ModelProto:
    """cam = 0.25 * (block mean of |grey - 3x3 box blur(grey)| - 2); p = sigmoid(mean cam)."""
    const, head = cam_head("energy", size, cam_size, centre=2.0, scale=0.25)
    detail = [
        helper.make_node(
            "AveragePool",
            ["grey"],
            ["blur"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=0,
        ),  # fmt: skip
        helper.make_node("Sub", ["grey", "blur"], ["detail"]),
        helper.make_node("Abs", ["detail"], ["energy"]),
    ]
    return detector_model("texture_detector", size, cam_size, const, [*detail, *head])


def write_texture_entry(root: Path, name: str = "cnn") -> Path:
    """A repository entry (contract metadata from ``helpers``) serving the texture model."""
    folder = write_model_entry(root, name, 1, TinyModelSpec(size=TEXTURE_SIZE, cam_size=4))
    onnx.save(texture_model(), folder / "model.onnx")
    return root


def cue_image(height: int, width: int, corner: str = "top-right", seed: int = 0) -> np.ndarray:
    """Smooth colour gradient; a coarse checkerboard over one third of it in ``corner``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    mix = (yy / height + xx / width)[..., None] / 2.0
    low, high = rng.uniform(60, 190, (2, 3))
    rgb = low * (1.0 - mix) + high * mix
    patch_h, patch_w = height // 3, width // 3
    cell = max(2, round(2 * max(height, width) / TEXTURE_SIZE))  # ~2 model pixels per cell
    top = 0 if corner.startswith("top") else height - patch_h
    left = 0 if corner.endswith("left") else width - patch_w
    py, px = np.mgrid[0:patch_h, 0:patch_w]
    checker = np.where((py // cell + px // cell) % 2 == 0, 240.0, 15.0)[..., None]
    rgb[top : top + patch_h, left : left + patch_w] = checker
    return np.clip(rgb, 0, 255).astype(np.uint8)


def corner_box(corner: str, height: int, width: int) -> tuple[slice, slice]:
    rows = slice(0, height // 3) if corner.startswith("top") else slice(height - height // 3, None)
    cols = slice(0, width // 3) if corner.endswith("left") else slice(width - width // 3, None)
    return rows, cols


def decode_overlay(body: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"]))))


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return error["message"]


async def explain(client, data: bytes, query: str = ""):
    return await client.post(f"/v1/explain?{query}", files={"file": ("image.png", data)})


# --- LIME ----------------------------------------------------------------------------------


async def test_lime_same_seed_gives_the_same_explanation(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    data = encode_png(cue_image(120, 200, "bottom-left"))
    async with serving_client(test_config(root)) as (client, _):
        first = await explain(client, data, LIME_FAST + "&random_state=7")
        again = await explain(client, data, LIME_FAST + "&random_state=7")
        other = await explain(client, data, LIME_FAST + "&random_state=8")
    for response in (first, again, other):
        assert response.status_code == 200, response.text
    assert first.json()["regions"] == again.json()["regions"]
    assert first.json()["overlay_png_base64"] == again.json()["overlay_png_base64"]
    assert first.json()["regions"] != other.json()["regions"]  # other masks, other weights


async def test_lime_overlay_is_a_png_of_the_uploaded_size_with_regions_and_prediction(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    data = encode_png(cue_image(170, 300, "top-right"))
    query = LIME_FAST + "&num_features=5"
    async with serving_client(test_config(root)) as (client, _):
        response = await explain(client, data, query)
        predicted = (await client.post("/v1/predict", files={"file": ("a.png", data)})).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "lime" and (body["width"], body["height"]) == (300, 170)
    overlay = decode_overlay(body)
    assert overlay.shape == (170, 300, 3) and overlay.dtype == np.uint8
    predicted.pop("latency_ms")
    assert predicted.pop("evidence") == []  # /v1/explain answers without an evidence section
    assert body["prediction"] == predicted
    regions = body["regions"]
    assert 1 <= len(regions) <= 5 and all(set(r) == {"id", "weight"} for r in regions)
    strengths = [abs(r["weight"]) for r in regions]
    assert strengths == sorted(strengths, reverse=True)
    assert body["lime"]["num_samples"] == 200 and body["latency_ms"] > 0


async def test_lime_points_at_the_fake_cue_corner(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    rgb = cue_image(150, 240, "top-right", seed=3)
    data = encode_png(rgb)
    async with serving_client(test_config(root)) as (client, _):
        response = await explain(client, data, LIME_FAST + "&num_features=3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"]["label"] == "FAKE"
    # the same segmentation the server used, on the same model input
    model_input = preprocess_bytes(data, PreprocessConfig(size=TEXTURE_SIZE)).astype(np.uint8)
    segments = segment(model_input, "slic", 0, DEFAULT_SETTINGS)
    top = body["regions"][0]
    assert top["weight"] > 0
    rows, cols = corner_box("top-right", TEXTURE_SIZE, TEXTURE_SIZE)
    inside = (segments[rows, cols] == top["id"]).sum()
    assert inside / (segments == top["id"]).sum() > 0.5  # the strongest region is the cue
    # and the overlay tints that corner red (towards FAKE), not the opposite one
    overlay = decode_overlay(body).astype(int)
    image_rows, image_cols = corner_box("top-right", 150, 240)
    opposite_rows, opposite_cols = corner_box("bottom-left", 150, 240)
    tinted = overlay - rgb.astype(int)
    assert tinted[image_rows, image_cols, 0].mean() > tinted[opposite_rows, opposite_cols, 0].mean()


async def test_lime_scores_through_the_batcher_in_chunks_of_at_least_64_rows(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    data = encode_png(cue_image(100, 100))
    config = test_config(
        root, max_batch_size=256, max_queue_delay_ms=1, bulk_batch_size=75, bulk_quiet_s=0
    )
    async with serving_client(config) as (client, app):
        model = app.state.serving.pool.resolve("cnn")
        submitted: list[int] = []
        bulk_flags: list[bool] = []
        real_submit = model.batcher.submit

        async def spy(rows, bulk=False, holds_bulk=True):
            submitted.append(len(rows))
            bulk_flags.append(bulk)
            return await real_submit(rows, bulk=bulk, holds_bulk=holds_bulk)

        model.batcher.submit = spy
        before = model.batcher.stats.rows
        response = await explain(client, data, "method=lime&segmentation=slic&num_samples=300")
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 200, response.text
    assert all(bulk_flags), "LIME rows queue as bulk"  # the prediction itself ran alone
    lime_chunks = submitted
    assert sum(lime_chunks) == 300 and min(lime_chunks) >= 64 and max(lime_chunks) < 128
    assert model.batcher.stats.rows - before == 301  # every row went through the batcher
    assert model.batcher.stats.largest_batch == 75, "bulk rows: bulk_batch_size per run"
    lime = response.json()["lime"]
    assert lime["batcher_submissions"] == len(lime_chunks)
    assert lime["rows_per_submission"][0] >= 64
    small = [line for line in metrics.splitlines() if line.startswith("dfd_batch_size_bucket")]
    assert any('le="48.0"' in line and line.endswith(" 1.0") for line in small), small


async def test_a_lime_requests_own_prediction_does_not_hold_its_bulk_runs_small(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    data = encode_png(cue_image(100, 100))
    config = test_config(
        root, max_batch_size=64, max_queue_delay_ms=1, bulk_batch_size=4, bulk_quiet_s=60,
        quiet_bulk_batch_size=32,
    )  # fmt: skip
    lime = "method=lime&segmentation=slic&num_samples=128"
    async with serving_client(config) as (client, app):
        stats = app.state.serving.pool.resolve("cnn").batcher.stats
        assert (await explain(client, data, lime)).status_code == 200
        alone = stats.largest_batch
        predicted = await client.post(
            "/v1/predict", content=data, headers={"content-type": "image/png"}
        )
        assert predicted.status_code == 200
        stats.largest_batch = 0
        assert (await explain(client, data, lime)).status_code == 200
        after_prediction = stats.largest_batch
    assert alone == 32, "no other prediction within bulk_quiet_s: quiet_bulk_batch_size rows"
    assert after_prediction == 4, "a prediction just before: bulk_batch_size rows"


def _thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux only")
async def test_explanations_run_at_a_lower_cpu_priority_than_predictions(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    async with serving_client(test_config(root, background_nice=7)) as (_, app):
        state = app.state.serving
        background = await state.run_background(_thread_nice)
        decode = await state.run_blocking(_thread_nice)
    assert background == min(19, decode + 7), "background threads yield to decode threads"
    assert _thread_nice() == decode, "the process itself keeps its priority"


async def test_lime_parameter_bounds_answer_422_stating_the_bound(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    data = encode_png(cue_image(64, 64))
    config = test_config(root, lime_max_samples=400, explain_max_features=20)
    async with serving_client(config) as (client, _):
        samples = await explain(client, data, "method=lime&num_samples=401")
        features = await explain(client, data, "method=lime&num_features=21")
        zero = await explain(client, data, "method=lime&num_samples=0")
        seed = await explain(client, data, "method=lime&random_state=-1")
        word = await explain(client, data, "method=lime&num_samples=lots")
    assert "400" in assert_error(samples, 422, "parameter_out_of_range")
    assert "20" in assert_error(features, 422, "parameter_out_of_range")
    assert_error(zero, 422, "parameter_out_of_range")
    assert_error(seed, 422, "parameter_out_of_range")
    assert_error(word, 400, "bad_parameter")


async def test_lime_concurrency_limit_answers_503_and_predictions_still_run(model_entry_writer):
    root = model_entry_writer("cnn", 1, **slow_fields(0.025, slow_dim=512))  # 25 ms a run, timed
    config = test_config(root, lime_concurrency=1, max_batch_size=64, retry_after_s=3)
    data = png_image(1, 48, 80)
    async with serving_client(config) as (client, app):
        state = app.state.serving
        running = asyncio.create_task(explain(client, data, "method=lime&num_samples=640"))
        for _ in range(500):  # until the first LIME request holds the only slot
            if state.lime_slots.locked():
                break
            await asyncio.sleep(0.01)
        assert state.lime_slots.locked()
        refused = await explain(client, data, "method=lime&num_samples=64")
        predicted = await client.post("/v1/predict", files={"file": ("a.png", data)})
        cam = await explain(client, data)  # the fast map has no LIME slot to wait for
        assert not running.done()
        finished = await running
    assert "LIME" in assert_error(refused, 503, "explain_busy")
    assert refused.headers["Retry-After"] == "3"
    assert predicted.status_code == 200 and cam.status_code == 200
    assert finished.status_code == 200, finished.text


async def test_a_cancelled_lime_request_stops_scoring_and_frees_its_slot(model_entry_writer):
    root = model_entry_writer("cnn", 1, **slow_fields(0.025, slow_dim=512))  # 25 ms a run, timed
    config = test_config(root, lime_concurrency=1, max_batch_size=64)
    async with serving_client(config) as (client, app):
        state, model = app.state.serving, app.state.serving.pool.resolve("cnn")
        request = asyncio.create_task(
            explain(client, png_image(3, 48, 80), "method=lime&num_samples=1000")
        )
        for _ in range(500):  # until LIME rows have started to run
            if model.batcher.stats.rows > 64:
                break
            await asyncio.sleep(0.01)
        assert not request.done() and model.batcher.stats.rows > 64
        request.cancel()  # what a client disconnect does to the route
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not state.lime_slots.locked()
        await asyncio.sleep(1.5)  # the worker finishes its chunk in flight, then stops
        settled = model.batcher.stats.rows
        await asyncio.sleep(0.5)
        assert model.batcher.stats.rows == settled < 1 + 1000 // 2  # no more LIME rows


async def test_lime_on_a_flat_image_has_one_region_and_no_crash(tiny_repo):
    data = encode_png(np.full((40, 70, 3), 128, np.uint8))
    async with serving_client(test_config(tiny_repo)) as (client, _):
        response = await explain(client, data, "method=lime&num_samples=64")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lime"]["segments"] >= 1 and len(body["regions"]) <= body["lime"]["segments"]
    assert decode_overlay(body).shape == (40, 70, 3)


# --- CAM -----------------------------------------------------------------------------------


@pytest.mark.parametrize("corner", ["top-left", "bottom-right"])
async def test_cam_overlay_peaks_in_the_fake_cue_corner(tmp_path, corner):
    root = write_texture_entry(tmp_path / "models")
    rgb = cue_image(140, 210, corner, seed=1)
    async with serving_client(test_config(root)) as (client, _):
        response = await explain(client, encode_png(rgb))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "cam" and body["prediction"]["label"] == "FAKE"
    overlay = decode_overlay(body).astype(int)
    assert overlay.shape == (140, 210, 3)
    redness = overlay[..., 0] - overlay[..., 2]  # JET: red = high CAM, blue = low
    rows, cols = corner_box(corner, 140, 210)
    peak = np.unravel_index(np.argmax(redness), redness.shape)
    assert rows.indices(140)[0] <= peak[0] < rows.indices(140)[1]
    assert cols.indices(210)[0] <= peak[1] < cols.indices(210)[1]
    assert redness[rows, cols].mean() > redness.mean() + 40


async def test_cam_costs_one_forward_pass(tmp_path):
    root = write_texture_entry(tmp_path / "models")
    async with serving_client(test_config(root)) as (client, app):
        model = app.state.serving.pool.resolve("cnn")
        before = model.batcher.stats.rows
        response = await explain(client, encode_png(cue_image(90, 90)))
    assert response.status_code == 200
    assert model.batcher.stats.rows - before == 1  # the prediction's own run gives the map


async def test_cam_on_a_model_without_cam_output_is_a_clear_error_and_lime_still_works(
    model_entry_writer,
):
    root = model_entry_writer("cnn", 1, with_cam=False)
    async with serving_client(test_config(root)) as (client, _):
        cam = await explain(client, png_image(2))
        lime = await explain(client, png_image(2), "method=lime&num_samples=64")
    message = assert_error(cam, 501, "cam_unavailable")
    assert "cam" in message and "lime" in message
    assert lime.status_code == 200  # LIME needs only probability_fake


async def test_cam_overlay_of_a_large_jpeg_has_the_upload_size_and_predicts_like_predict(
    tmp_path,
):
    from core.preprocessing import encode_jpeg

    root = write_texture_entry(tmp_path / "models")
    data = encode_jpeg(cue_image(600, 520, "top-right"), quality=92)  # drafted for the model
    async with serving_client(test_config(root)) as (client, _):
        response = await explain(client, data, "method=cam")
        predicted = (await client.post("/v1/predict", files={"file": ("a.jpg", data)})).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (520, 600)
    assert decode_overlay(body).shape == (600, 520, 3)
    predicted.pop("latency_ms")
    assert predicted.pop("evidence") == []  # /v1/explain answers without an evidence section
    assert body["prediction"] == predicted


async def test_lime_is_imported_before_the_server_reports_ready(tmp_path):
    """The first LIME request must not pay lime's import; checked in a fresh process."""
    root = write_texture_entry(tmp_path / "models")
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from serving.app import create_app\n"
        "from serving.config import ServerConfig\n"
        f"app = create_app(ServerConfig(models_dir=Path({str(root)!r})))\n"
        "async def main():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        assert app.state.serving.ready\n"
        "        assert 'lime.lime_image' in sys.modules\n"
        "asyncio.run(main())\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
