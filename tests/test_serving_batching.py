"""Dynamic batching through the HTTP API: coalescing, correctness per request, queue-full
503 + Retry-After and recovery, 504 timeouts, and draining on shutdown."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from helpers import (
    distinct_pngs,
    noise_rgb,
    png_image,
    serving_client,
    slow_fields,
    test_config,
)

from core.decision import calibrate, decide
from core.preprocessing import PreprocessConfig, preprocess_bytes

pytestmark = pytest.mark.asyncio


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


async def post_image(client: httpx.AsyncClient, data: bytes, route: str = "/v1/predict"):
    return await client.post(route, files={"file": ("image.png", data, "image/png")})


async def test_32_concurrent_requests_share_model_runs_and_each_gets_its_own_answer(
    model_entry_writer,
):
    root = model_entry_writer("cnn", 1, threshold=0.45, temperature=1.5, slow_matmuls=3)
    images = distinct_pngs(32)
    config = test_config(root, max_batch_size=32, max_queue_delay_ms=30)
    async with serving_client(config) as (client, _):
        responses = await asyncio.gather(*(post_image(client, data) for data in images))
        text = (await client.get("/metrics")).text
    session = ort.InferenceSession(str(root / "cnn/1/model.onnx"))
    runs = metric(text, 'dfd_batch_size_count{model="cnn",version="1"}')
    assert metric(text, 'dfd_batch_size_sum{model="cnn",version="1"}') == 32
    assert runs < 32, "requests were not batched"
    probabilities = set()
    for data, response in zip(images, responses, strict=True):
        assert response.status_code == 200
        model_input = preprocess_bytes(data, PreprocessConfig(size=32))[None]
        (raw,) = session.run(["probability_fake"], {"image": model_input})
        p_cal = float(calibrate(np.float64(raw[0, 0]), 1.5))
        label, confidence = decide(p_cal, 0.45)
        body = response.json()
        assert body["label"] == label
        assert body["probability_fake"] == pytest.approx(p_cal, abs=1e-6)
        assert body["confidence"] == pytest.approx(confidence, abs=1e-6)
        probabilities.add(round(body["probability_fake"], 6))
    assert len(probabilities) == 32  # distinct images, distinct answers: no mix-ups
    labels = {r.json()["label"] for r in responses}
    assert labels == {"REAL", "UNCERTAIN", "FAKE"}  # threshold 0.45: UNCERTAIN in [0.45, 0.5)


async def test_one_request_at_a_time_skips_the_queue_with_the_same_answers(tiny_repo, monkeypatch):
    """Sequential requests take the lone path (decode and model run in one hop on the
    inference thread) with the batched path's answers, and bad uploads still get 400."""
    import threading

    import serving.inference

    decoded_on: list[str] = []
    real = serving.inference.preprocess_upload

    def recording(data, config, full_size=False):
        decoded_on.append(threading.current_thread().name)
        return real(data, config, full_size)

    monkeypatch.setattr(serving.inference, "preprocess_upload", recording)
    images = distinct_pngs(6)
    config = test_config(tiny_repo, max_batch_size=8, max_queue_delay_ms=2000)
    async with serving_client(config) as (client, app):
        batcher = app.state.serving.pool.resolve("cnn").batcher
        lone = [(await post_image(client, data)).json() for data in images]
        assert batcher.stats.batches == len(images)  # no 2 s queue delay was paid either
        assert decoded_on == ["infer-cnn:1_0"] * len(images)
        bad = await post_image(client, b"not an image")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_image"
        batched = [r.json() for r in await asyncio.gather(*(post_image(client, d) for d in images))]
        text = (await client.get("/metrics")).text
    assert batcher.stats.largest_batch > 1
    assert metric(text, 'dfd_batch_size_sum{model="cnn",version="1"}') == 2 * len(images)
    for alone, together in zip(lone, batched, strict=True):
        assert alone["probability_fake"] == pytest.approx(together["probability_fake"], abs=1e-6)
        assert alone["label"] == together["label"]


async def test_large_submission_is_split_over_batches(tiny_repo):
    batch = np.stack([noise_rgb(i, mean=30.0 + 2.5 * i) for i in range(70)]).astype(np.float32)
    request = {
        "inputs": [{"name": "image", "shape": [70, 32, 32, 3], "datatype": "FP32",
                    "data": batch.reshape(-1).tolist()}]
    }  # fmt: skip
    async with serving_client(test_config(tiny_repo, max_batch_size=16)) as (client, _):
        response = await client.post("/v2/models/cnn/infer", json=request)
        text = (await client.get("/metrics")).text
    (direct,) = ort.InferenceSession(str(tiny_repo / "cnn/1/model.onnx")).run(
        ["probability_fake"], {"image": batch}
    )
    np.testing.assert_allclose(response.json()["outputs"][0]["data"], direct.reshape(-1), atol=1e-6)
    assert metric(text, 'dfd_batch_size_count{model="cnn",version="1"}') == 5  # 16*4 + 6
    assert metric(text, 'dfd_batch_size_bucket{le="16.0",model="cnn",version="1"}') == 5


async def test_queue_full_gives_503_with_retry_after_then_recovers(model_entry_writer):
    root = model_entry_writer("cnn", 1, **slow_fields(0.1))
    config = test_config(root, max_batch_size=1, max_queue_size=2, max_queue_delay_ms=0)
    async with serving_client(config) as (client, _):
        responses = await asyncio.gather(*(post_image(client, png_image(i)) for i in range(8)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) >= 2 and statuses.count(503) >= 3, statuses
        assert set(statuses) == {200, 503}
        for response in responses:
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "queue_full"
                assert response.headers["retry-after"] == "1"
        later = await post_image(client, png_image(99))
        assert later.status_code == 200
        text = (await client.get("/metrics")).text
    rejected = 'dfd_batcher_rejections_total{model="cnn",reason="queue_full",version="1"}'
    assert metric(text, rejected) == statuses.count(503)


async def test_request_timeout_gives_504_and_the_server_stays_up(model_entry_writer):
    root = model_entry_writer("cnn", 1, **slow_fields(0.1))
    config = test_config(root, request_timeout_s=0.05, max_batch_size=1, max_queue_delay_ms=0)
    async with serving_client(config) as (client, _):
        responses = await asyncio.gather(*(post_image(client, png_image(i)) for i in range(3)))
        for response in responses:
            assert response.status_code == 504
            assert response.json()["error"]["code"] == "timeout"
        assert (await client.get("/v2/health/ready")).status_code == 200


async def test_shutdown_drains_in_flight_requests_and_refuses_new_ones(model_entry_writer):
    from serving.app import create_app

    root = model_entry_writer("cnn", 1, **slow_fields(0.1))
    app = create_app(test_config(root, max_batch_size=1, max_queue_delay_ms=0))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as client:
        in_flight = [asyncio.create_task(post_image(client, png_image(i))) for i in range(3)]
        state = app.state.serving
        labels = {"model": "cnn", "version": "1"}

        def all_submitted() -> bool:  # every request's row is queued or has reached a run
            started = state.metrics.registry.get_sample_value(
                "dfd_queue_delay_seconds_count", labels
            )
            return started + state.pool.resolve().batcher.depth == 3

        async with asyncio.timeout(30):
            while not all_submitted():
                await asyncio.sleep(0.005)
        stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
        await asyncio.sleep(0.01)
        refused = await post_image(client, png_image(9))
        not_ready = await client.get("/v2/health/ready")
        finished = await asyncio.gather(*in_flight)
        await stopping
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    assert refused.headers["retry-after"] == "1"
    assert not_ready.status_code == 503
    assert [r.status_code for r in finished] == [200, 200, 200]


def _set_batching(root, name: str, batching: dict) -> None:
    import json

    path = root / name / "1" / "metadata.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"batching": batching}))


async def test_a_models_own_batching_settings_override_the_servers(model_entry_writer, caplog):
    root = model_entry_writer("cnn", 1)
    own = {
        "small": {"max_batch_size": 4, "bulk_batch_size": 2},
        "zero": {"max_batch_size": 0},
        "odd": {"colour": "blue"},
    }
    for name, batching in own.items():
        model_entry_writer(name, 1)
        _set_batching(root, name, batching)
    config = test_config(root, max_batch_size=16, max_queue_delay_ms=30)
    async with serving_client(config) as (client, app):
        listed = {m["name"]: m for m in (await client.get("/v1/models")).json()["models"]}
        small = app.state.serving.pool.resolve("small")
        answers = await asyncio.gather(
            *(post_image(client, data, "/v1/predict?model=small") for data in distinct_pngs(12))
        )
    assert sorted(listed) == ["cnn", "small"], "a model with bad batching settings is not loaded"
    assert listed["small"]["batching"]["max_batch_size"] == 4
    assert listed["small"]["batching"]["bulk_batch_size"] == 2
    assert listed["cnn"]["batching"]["max_batch_size"] == 16, "the server's settings otherwise"
    assert all(answer.status_code == 200 for answer in answers)
    assert small.batcher.stats.rows == 12 and small.batcher.stats.largest_batch <= 4
    assert "BatcherConfig.max_batch_size must be at least 1, got 0" in caplog.text
    assert "unknown settings ['colour']" in caplog.text


async def test_quiet_bulk_size_is_timed_at_load_unless_given_or_growth_is_off(model_entry_writer):
    root = model_entry_writer("cnn", 1)
    for name, batching in {
        "given": {"quiet_bulk_batch_size": 8},
        "off": {"bulk_quiet_s": 0},
    }.items():
        model_entry_writer(name, 1)
        _set_batching(root, name, batching)
    config = test_config(root, max_batch_size=16, bulk_batch_size=2)
    async with serving_client(config) as (client, _):
        listed = {
            m["name"]: m["batching"] for m in (await client.get("/v1/models")).json()["models"]
        }
    assert listed["cnn"]["quiet_bulk_batch_size"] in (2, 4, 8, 16), "timed: one of the candidates"
    assert listed["given"]["quiet_bulk_batch_size"] == 8
    assert listed["off"]["quiet_bulk_batch_size"] == 0
