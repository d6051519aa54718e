"""HTTP API of docs/CONTRACTS.md, in process (httpx + ASGI transport, lifespan run)."""

from __future__ import annotations

import base64
import io

import numpy as np
import onnxruntime as ort
import pytest
from helpers import (
    expected_probability,
    jpeg_image,
    noise_rgb,
    pixel_bomb_png,
    png_image,
    serving_client,
    status_when_client_leaves,
    test_config,
    truncated,
)
from helpers.faces import left_half_face
from PIL import Image

from core.decision import calibrate, decide
from core.preprocessing import PreprocessConfig, encode_png, preprocess_bytes
from serving.errors import SECURITY_HEADERS

pytestmark = pytest.mark.asyncio


def expected(data: bytes, size: int = 32, threshold: float = 0.5, temperature: float = 1.0):
    """What /v1/predict must answer, computed independently with core + the model formula."""
    p = expected_probability(preprocess_bytes(data, PreprocessConfig(size=size)))
    p_cal = float(calibrate(np.float64(p), temperature))
    label, confidence = decide(p_cal, threshold)
    return label, p_cal, confidence


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# --- predict ---------------------------------------------------------------------------------


async def test_predict_multipart_matches_independent_computation(tiny_repo):
    image = png_image(3, mean=170.0)
    async with serving_client(test_config(tiny_repo)) as (client, _):
        response = await client.post("/v1/predict", files={"file": ("face.png", image)})
    assert response.status_code == 200
    body = response.json()
    label, probability, confidence = expected(image)
    assert body["label"] == label == "FAKE"
    assert body["probability_fake"] == pytest.approx(probability, abs=1e-6)
    assert body["confidence"] == pytest.approx(confidence, abs=1e-6)
    assert body["threshold"] == 0.5 and body["model"] == "cnn" and body["version"] == 1
    assert body["latency_ms"] > 0


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
async def test_predict_raw_body(tiny_repo, content_type):
    image = jpeg_image(4, 48, 40, mean=60.0)
    async with serving_client(test_config(tiny_repo)) as (client, _):
        response = await client.post(
            "/v1/predict", content=image, headers={"content-type": content_type}
        )
    assert response.status_code == 200
    label, probability, _ = expected(image)
    assert response.json()["label"] == label == "REAL"
    assert response.json()["probability_fake"] == pytest.approx(probability, abs=1e-6)


async def test_predict_applies_temperature_and_threshold(model_entry_writer):
    root = model_entry_writer("cnn", 1, threshold=0.3, temperature=2.5)
    image = png_image(5, mean=100.0)  # raw p ~ 0.2: REAL at 0.5, calibrated ~0.37: over 0.3
    async with serving_client(test_config(root)) as (client, _):
        body = (await client.post("/v1/predict", files={"file": ("a.png", image)})).json()
    label, probability, confidence = expected(image, threshold=0.3, temperature=2.5)
    assert 0.3 < probability < 0.5  # over the fitted threshold, yet more likely REAL than FAKE:
    assert body["label"] == label == "UNCERTAIN"  # never FAKE below 0.5
    assert body["probability_fake"] == pytest.approx(probability, abs=1e-6)
    assert body["confidence"] == pytest.approx(1 - probability, abs=1e-6)
    assert body["threshold"] == 0.3
    assert body["decision"] == {"real_below": 0.3, "fake_from": 0.5}


async def test_model_and_version_selection(model_entry_writer):
    model_entry_writer("alpha", 1)  # texture is preferred as the default (the detector)
    model_entry_writer("texture", 1, scale=0.05)
    root = model_entry_writer("texture", 2, scale=-0.05)  # version 2 flips the decision
    image = png_image(6, mean=200.0)
    async with serving_client(test_config(root)) as (client, _):

        async def ask(query: str) -> dict:
            response = await client.post(f"/v1/predict{query}", files={"file": ("a", image)})
            return response.json()

        latest, first, alpha = await ask(""), await ask("?version=1"), await ask("?model=alpha")
        listing = (await client.get("/v1/models")).json()
    assert (latest["model"], latest["version"], latest["label"]) == ("texture", 2, "REAL")
    assert (first["version"], first["label"]) == (1, "FAKE")
    assert (alpha["model"], alpha["label"]) == ("alpha", "FAKE")
    assert listing["default"] == "texture"
    assert [(m["name"], m["version"]) for m in listing["models"]] == [
        ("alpha", 1), ("texture", 1), ("texture", 2),
    ]  # fmt: skip
    assert all(
        m["ready"] and m["providers"][-1] == "CPUExecutionProvider" for m in listing["models"]
    )
    assert {"inputs", "outputs", "threshold", "temperature", "metrics"} <= set(listing["models"][0])


async def test_default_model_is_first_without_a_preferred_one(model_entry_writer):
    model_entry_writer("zeta", 1)
    root = model_entry_writer("beta", 1)
    async with serving_client(test_config(root)) as (client, _):
        assert (await client.get("/v1/models")).json()["default"] == "beta"


async def test_224_model_end_to_end(model_entry_writer):
    root = model_entry_writer("cnn", 1, size=224, cam_size=7)
    image = jpeg_image(7, 300, 260, mean=150.0)
    async with serving_client(test_config(root)) as (client, _):
        body = (await client.post("/v1/predict", files={"file": ("a.jpg", image)})).json()
        cam = await client.post("/v1/explain", files={"file": ("a.jpg", image)})
    assert body["probability_fake"] == pytest.approx(expected(image, size=224)[1], abs=1e-6)
    assert cam.status_code == 200 and cam.json()["cam"]["shape"] == [7, 7]
    assert (cam.json()["width"], cam.json()["height"]) == (260, 300)


# --- batch -----------------------------------------------------------------------------------


async def test_batch_answers_every_file_in_order_with_errors_inline(tiny_repo):
    images = [png_image(10, mean=40.0), b"not an image", png_image(11, mean=210.0)]
    files = [("files", (f"f{i}.png", data)) for i, data in enumerate(images)]
    files.append(("file", ("last.jpg", jpeg_image(12, mean=128.0))))
    async with serving_client(test_config(tiny_repo)) as (client, _):
        response = await client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"]) == ("cnn", 1)
    results = body["results"]
    assert [r["filename"] for r in results] == ["f0.png", "f1.png", "f2.png", "last.jpg"]
    assert results[1]["error"]["code"] == "bad_image"
    for index in (0, 2, 3):
        data = images[index] if index < 3 else jpeg_image(12, mean=128.0)
        assert results[index]["probability_fake"] == pytest.approx(expected(data)[1], abs=1e-6)
    assert results[0]["label"] == "REAL" and results[2]["label"] == "FAKE"


async def test_batch_bad_requests(tiny_repo):
    config = test_config(tiny_repo, max_batch_files=3)
    async with serving_client(config) as (client, _):
        too_many = [("files", (f"{i}.png", png_image(i))) for i in range(4)]
        error = assert_error(await client.post("/v1/predict/batch", files=too_many), 422)
        assert "3" in error["message"]
        no_files = await client.post("/v1/predict/batch", files={"other": ("a.png", b"x")})
        assert_error(no_files, 400, "bad_parameter")
        raw = await client.post(
            "/v1/predict/batch", content=png_image(1), headers={"content-type": "image/png"}
        )
        assert_error(raw, 415, "unsupported_media_type")


# --- explain ---------------------------------------------------------------------------------


async def test_explain_cam_overlay_has_image_size_and_follows_the_cam(tiny_repo):
    rgb = np.full((60, 90, 3), 30, np.uint8)
    rgb[:, 45:] = 230  # bright right half: the tiny model's cam is high (FAKE) there
    image = encode_png(rgb)
    async with serving_client(test_config(tiny_repo)) as (client, _):
        response = await client.post("/v1/explain", files={"file": ("a.png", image)})
        predicted = (await client.post("/v1/predict", files={"file": ("a.png", image)})).json()
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "cam" and (body["width"], body["height"]) == (90, 60)
    predicted.pop("latency_ms")
    assert predicted.pop("evidence") == []  # /v1/explain has no evidence section
    assert body["prediction"] == predicted
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"]))))
    assert overlay.shape == (60, 90, 3)
    left, right = overlay[:, :20].astype(int), overlay[:, -20:].astype(int)
    # JET: high values are red, low ones blue
    assert (right[..., 0] - right[..., 2]).mean() > 50
    assert (left[..., 2] - left[..., 0]).mean() > 50
    assert body["cam"]["max"] > body["cam"]["min"]


async def test_explain_parameters_are_validated(tiny_repo):
    config = test_config(tiny_repo, lime_max_samples=500)
    image = {"file": ("a.png", png_image(1))}
    async with serving_client(config) as (client, _):
        query = "/v1/explain?method=lime&num_samples=32&segmentation=slic"
        lime = await client.post(query, files=image)
        if lime.status_code == 200:  # serving/explain_lime.py is plugged in
            assert lime.json()["method"] == "lime" and "regions" in lime.json()
        else:
            assert "lime" in assert_error(lime, 501, "not_implemented")["message"]
        assert_error(await client.post("/v1/explain?method=gradcam", files=image), 400)
        over = await client.post("/v1/explain?method=lime&num_samples=501", files=image)
        assert "500" in assert_error(over, 422, "parameter_out_of_range")["message"]
        assert_error(await client.post("/v1/explain?num_samples=many", files=image), 400)
        assert_error(await client.post("/v1/explain?num_features=0", files=image), 422)
        assert_error(await client.post("/v1/explain?segmentation=watershed", files=image), 400)
        bmp = assert_error(await client.post("/v1/explain?overlay=bmp", files=image), 400)
        assert "overlay must be one of png, jpeg" in bmp["message"]
        assert_error(await client.post("/v1/explain?face_crop=true", files=image), 400)


async def test_explain_overlay_as_jpeg_is_the_same_picture_smaller(tiny_repo):
    """``overlay=jpeg`` (what the web page asks for): the PNG's picture within JPEG's loss,
    under the ``overlay_jpeg_base64`` key, in fewer bytes."""
    rng = np.random.default_rng(5)
    rgb = np.clip(rng.normal(128, 20, (120, 160, 3)), 0, 255).astype(np.uint8)
    rgb[:, 80:] = 230
    image = {"file": ("a.png", encode_png(rgb))}
    async with serving_client(test_config(tiny_repo)) as (client, _):
        png = (await client.post("/v1/explain", files=image)).json()
        jpeg = (await client.post("/v1/explain?overlay=JPEG", files=image)).json()
    assert "overlay_png_base64" not in jpeg and "overlay_jpeg_base64" not in png
    encoded = base64.b64decode(jpeg["overlay_jpeg_base64"])
    assert encoded[:3] == b"\xff\xd8\xff"  # a JPEG stream
    lossless = np.asarray(Image.open(io.BytesIO(base64.b64decode(png["overlay_png_base64"]))))
    lossy = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
    assert lossy.shape == lossless.shape == (120, 160, 3)
    assert np.abs(lossy.astype(int) - lossless.astype(int)).mean() < 4.0
    assert len(jpeg["overlay_jpeg_base64"]) < len(png["overlay_png_base64"]) / 2
    assert jpeg["prediction"] == png["prediction"]


async def test_explain_cam_needs_a_cam_output(model_entry_writer):
    root = model_entry_writer("cnn", 1, with_cam=False)
    async with serving_client(test_config(root)) as (client, _):
        response = await client.post("/v1/explain", files={"file": ("a.png", png_image(1))})
        assert_error(response, 501, "cam_unavailable")
        assert (await client.post("/v1/predict", files={"file": ("a", png_image(1))})).is_success


# --- health, metadata, KServe v2, metrics ----------------------------------------------------


async def test_health_and_v2_metadata(model_entry_writer):
    model_entry_writer("cnn", 1)
    root = model_entry_writer("cnn", 3)
    async with serving_client(test_config(root)) as (client, _):
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/v2/health/ready")).json()["ready"] is True
        meta = (await client.get("/v2/models/cnn")).json()
        assert meta["name"] == "cnn" and meta["versions"] == ["1", "3"]
        assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 32, 32, 3]}]
        assert [o["name"] for o in meta["outputs"]] == ["probability_fake", "cam"]
        assert (await client.get("/v2/models/cnn/versions/3")).json()["versions"] == ["3"]
        assert (await client.get("/v2/models/cnn/versions/1/ready")).json()["ready"] is True
        assert (await client.get("/v2/models/cnn/ready")).json() == {"name": "cnn", "ready": True}
        assert_error(await client.get("/v2/models/gone/ready"), 404, "model_not_found")
        assert (await client.get("/v2")).json()["name"] == "deepfake-detect"
        assert_error(await client.get("/v2/models/cnn/versions/2"), 404, "model_not_found")
        assert_error(await client.get("/v2/models/cnn/versions/x"), 400, "invalid_model_name")
        assert_error(await client.get("/v2/models/nope"), 404, "model_not_found")


async def test_v2_infer_matches_a_direct_onnxruntime_run(tiny_repo):
    batch = np.stack([noise_rgb(i, mean=60.0 + 40 * i) for i in range(3)]).astype(np.float32)
    request = {
        "id": "req-1",
        "inputs": [{"name": "image", "shape": [3, 32, 32, 3], "datatype": "FP32",
                    "data": batch.reshape(-1).tolist()}],
        "outputs": [{"name": "probability_fake"}, {"name": "cam"}],
    }  # fmt: skip
    session = ort.InferenceSession(str(tiny_repo / "cnn/1/model.onnx"))
    direct_p, direct_cam = session.run(["probability_fake", "cam"], {"image": batch})
    async with serving_client(test_config(tiny_repo)) as (client, _):
        body = (await client.post("/v2/models/cnn/infer", json=request)).json()
        versioned = await client.post("/v2/models/cnn/versions/1/infer", json=request)
    assert body["model_name"] == "cnn" and body["model_version"] == "1" and body["id"] == "req-1"
    p, cam = body["outputs"]
    assert p["name"] == "probability_fake" and p["shape"] == [3, 1] and p["datatype"] == "FP32"
    np.testing.assert_allclose(p["data"], direct_p.reshape(-1), atol=1e-6)
    assert cam["shape"] == [3, 4, 4]
    np.testing.assert_allclose(cam["data"], direct_cam.reshape(-1), atol=1e-6)
    assert versioned.json()["outputs"] == body["outputs"]


async def test_v2_infer_bad_requests(tiny_repo):
    good = {"name": "image", "shape": [1, 32, 32, 3], "datatype": "FP32", "data": [0.0] * 3072}
    async with serving_client(test_config(tiny_repo)) as (client, _):

        async def infer(body, **kwargs):
            return await client.post("/v2/models/cnn/infer", **({"json": body} | kwargs))

        malformed = await infer(
            None, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_error(malformed, 400, "malformed_json")
        assert_error(await infer({"inputs": []}), 400, "bad_parameter")
        assert_error(await infer({"inputs": [good | {"shape": [1, 16, 16, 3]}]}), 400)
        assert_error(await infer({"inputs": [good | {"datatype": "INT8"}]}), 400)
        assert_error(await infer({"inputs": [good | {"data": [1.0, 2.0]}]}), 400)
        assert_error(await infer({"inputs": [good | {"data": ["a"] * 3072}]}), 400)
        assert_error(await infer({"inputs": [good], "outputs": [{"name": "logits"}]}), 400)
        as_text = await infer(None, content=b"{}", headers={"content-type": "text/plain"})
        assert_error(as_text, 415, "unsupported_media_type")
        assert_error(await client.post("/v2/models/other/infer", json={"inputs": [good]}), 404)
        assert (await infer({"inputs": [good]})).status_code == 200


async def test_metrics_are_per_app(tiny_repo):
    async with (
        serving_client(test_config(tiny_repo)) as (first, _),
        serving_client(test_config(tiny_repo)) as (second, _),
    ):
        for _ in range(3):
            await first.post("/v1/predict", files={"file": ("a", png_image(1))})
        text_first = (await first.get("/metrics")).text
        text_second = (await second.get("/metrics")).text
    assert 'dfd_batch_size_count{model="cnn",version="1"} 3.0' in text_first
    assert 'dfd_http_requests_total{method="POST",route="predict",status="200"} 3.0' in text_first
    assert "dfd_model_run_seconds_bucket" in text_first and "dfd_queue_delay_seconds" in text_first
    assert "dfd_queue_depth_rows" in text_first and "dfd_ready 1.0" in text_first
    assert 'dfd_batch_size_count{model="cnn",version="1"} 0.0' in text_second


# --- bad input: clear JSON errors, and the server keeps serving -----------------------------


def _ppm() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PPM")
    return buffer.getvalue()


BAD_UPLOADS = [
    (b"hello, I am text", "image/png", 400, "bad_image"),
    (truncated(png_image(1, 64, 64)), "image/png", 400, "bad_image"),
    (b"", "image/png", 400, "bad_image"),
    (pixel_bomb_png(8000, 8000), "image/png", 413, "image_too_large"),
    (_ppm(), "image/x-portable-pixmap", 415, "unsupported_image_format"),
    (png_image(1), "text/plain", 415, "unsupported_media_type"),
    (png_image(1), "application/json", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("data, content_type, status, code", BAD_UPLOADS)
async def test_bad_uploads_get_json_errors_and_the_server_keeps_serving(
    tiny_repo, data, content_type, status, code
):
    async with serving_client(test_config(tiny_repo)) as (client, _):
        for route in ("/v1/predict", "/v1/explain"):
            raw = await client.post(route, content=data, headers={"content-type": content_type})
            assert_error(raw, status, code)
            if content_type.startswith("image/"):
                multipart = await client.post(route, files={"file": ("x", data, content_type)})
                assert_error(multipart, status, code)
        after = await client.post("/v1/predict", files={"file": ("ok.png", png_image(2))})
        assert after.status_code == 200


async def test_bad_parameters_names_routes_and_methods(tiny_repo):
    image = {"file": ("a.png", png_image(1))}
    async with serving_client(test_config(tiny_repo)) as (client, _):
        assert_error(
            await client.post("/v1/predict?model=nope", files=image), 404, "model_not_found"
        )
        assert_error(
            await client.post("/v1/predict?version=9", files=image), 404, "model_not_found"
        )
        traversal = await client.post("/v1/predict?model=../x", files=image)
        assert_error(traversal, 400, "invalid_model_name")
        assert_error(await client.post("/v1/predict?version=0", files=image), 400)
        assert_error(await client.post("/v1/predict?face_crop=maybe", files=image), 400)
        assert_error(await client.post("/v1/predict", files={"image": ("a", b"x")}), 400)
        text_field = await client.post(
            "/v1/predict", data={"file": "not a file"}, files={"x": ("a", b"")}
        )
        assert_error(text_field, 400, "bad_parameter")
        broken = await client.post(
            "/v1/predict",
            content=b"--zz\r\ngarbage",
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )
        assert_error(broken, 400)
        wrong_method = await client.get("/v1/predict")
        assert_error(wrong_method, 405, "method_not_allowed")
        assert "POST" in wrong_method.headers["allow"]
        assert_error(await client.delete("/v1/models"), 405)
        assert_error(await client.get("/v1/nothing-here"), 404, "not_found")
        assert (await client.post("/v1/predict", files=image)).status_code == 200


async def test_face_crop_is_passed_to_core_preprocessing(tiny_repo, monkeypatch):
    import core.facecrop

    monkeypatch.setattr(core.facecrop, "detect_faces", left_half_face)
    rgb = np.full((40, 80, 3), 20, np.uint8)
    rgb[:, 40:] = 240  # the "face" (left half) is dark, the whole image mid-grey
    image = {"file": ("a.png", encode_png(rgb))}
    async with serving_client(test_config(tiny_repo)) as (client, _):
        cropped = (await client.post("/v1/predict?face_crop=true", files=image)).json()
        whole = (await client.post("/v1/predict?face_crop=false", files=image)).json()
    assert cropped["probability_fake"] == pytest.approx(expected_probability(rgb[:, :40]), abs=1e-6)
    assert whole["probability_fake"] == pytest.approx(expected(encode_png(rgb))[1], abs=1e-6)


async def test_model_trained_on_face_crops_is_cropped_by_default(tiny_face_repo, monkeypatch):
    import json

    import core.facecrop

    monkeypatch.setattr(core.facecrop, "detect_faces", left_half_face)
    rgb = np.full((40, 80, 3), 20, np.uint8)
    rgb[:, 40:] = 240
    image = {"file": ("a.png", encode_png(rgb))}
    async with serving_client(test_config(tiny_face_repo)) as (client, _):
        default = (await client.post("/v1/predict", files=image)).json()
        whole = (await client.post("/v1/predict?face_crop=false", files=image)).json()
        models = (await client.get("/v1/models")).json()
        explained = await client.post("/v1/explain?face_crop=false", files=image)
        cam = (await client.post("/v1/explain?method=cam", files=image)).json()
    assert (cam["width"], cam["height"]) == (40, 40)  # the overlay covers the face crop only
    assert cam["prediction"]["probability_fake"] == default["probability_fake"]
    assert default["probability_fake"] == pytest.approx(expected_probability(rgb[:, :40]), abs=1e-6)
    assert whole["probability_fake"] == pytest.approx(expected(encode_png(rgb))[1], abs=1e-6)
    assert "face_crop=true" in assert_error(explained, 400)["message"]
    assert json.dumps(models).count('"face_crop": true') == 1


async def test_preprocessing_failure_is_a_json_500_and_serving_goes_on(tiny_repo, monkeypatch):
    import core.facecrop

    def broken(rgb, min_size=None):
        raise RuntimeError("face detector unavailable")

    monkeypatch.setattr(core.facecrop, "detect_faces", broken)
    image = {"file": ("a.png", png_image(1))}
    async with serving_client(test_config(tiny_repo)) as (client, _):
        failed = await client.post("/v1/predict?face_crop=true", files=image)
        assert "face detector" in assert_error(failed, 500, "preprocessing_failed")["message"]
        assert (await client.post("/v1/predict", files=image)).status_code == 200


async def test_client_disconnect_mid_upload_is_not_a_server_error(tiny_repo):
    from serving.app import create_app

    app = create_app(test_config(tiny_repo))
    status = await status_when_client_leaves(app, "/v1/predict", "image/png", b"\x89PNG")
    assert status == 400


# --- body limit ------------------------------------------------------------------------------


async def test_body_over_the_limit_by_content_length_is_refused_up_front(tiny_repo):
    async with serving_client(test_config(tiny_repo, max_body_bytes=2000)) as (client, _):
        response = await client.post(
            "/v1/predict", content=b"\xff" * 5000, headers={"content-type": "image/jpeg"}
        )
        assert_error(response, 413, "payload_too_large")
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_streamed_body_is_cut_off_as_soon_as_it_is_over_the_limit(tiny_repo):
    sent = []

    async def chunks():
        for index in range(200):
            sent.append(index)
            yield b"\x00" * 1000

    async with serving_client(test_config(tiny_repo, max_body_bytes=5000)) as (client, _):
        raw = await client.post(
            "/v1/predict", content=chunks(), headers={"content-type": "image/png"}
        )
        assert "content-length" not in raw.request.headers
        assert_error(raw, 413, "payload_too_large")
        assert len(sent) < 20  # stopped reading right after the limit, not at the end
        sent.clear()
        boundary = "b0undary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'

        async def multipart():
            yield head.encode()
            async for chunk in chunks():
                yield chunk

        form = await client.post(
            "/v1/predict", content=multipart(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert_error(form, 413, "payload_too_large")
        assert len(sent) < 20
        assert (await client.post("/v1/predict", files={"file": ("a", png_image(1))})).is_success


# --- web UI and security headers -------------------------------------------------------------


async def test_web_ui_is_served_with_security_headers(tiny_repo, tmp_path):
    webui = tmp_path / "webui"
    webui.mkdir()
    (webui / "index.html").write_text("<!doctype html><title>UI</title>")
    (webui / "app.js").write_text("console.log('hi');")
    async with serving_client(test_config(tiny_repo, webui_dir=webui)) as (client, _):
        page, script = await client.get("/"), await client.get("/static/app.js")
        missing = await client.get("/static/none.js")
        api = await client.get("/v1/models")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>UI</title>" in page.text
    assert script.status_code == 200 and "console.log" in script.text
    assert_error(missing, 404)
    for response in (page, script, missing, api):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data: blob:" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


async def test_without_web_ui_root_is_a_json_404(tiny_repo):
    async with serving_client(test_config(tiny_repo, webui_dir=None)) as (client, _):
        assert_error(await client.get("/"), 404, "webui_missing")
        assert_error(await client.get("/static/app.js"), 404)


# --- empty repository ------------------------------------------------------------------------


async def test_empty_repository_is_live_but_not_ready(tmp_path):
    async with serving_client(test_config(tmp_path / "missing")) as (client, _):
        assert (await client.get("/v2/health/live")).status_code == 200
        error = assert_error(await client.get("/v2/health/ready"), 503, "not_ready")
        assert "no servable model" in error["message"]
        predict = await client.post("/v1/predict", files={"file": ("a", png_image(1))})
        assert_error(predict, 503, "not_ready")
        assert (await client.get("/v1/models")).json() == {"default": None, "models": []}
        assert "dfd_ready 0.0" in (await client.get("/metrics")).text


async def test_every_decoding_thread_runs_each_contract_once_before_ready(
    tiny_face_repo, monkeypatch
):
    """OpenCV's import and each thread's face detector are paid at start, not by first uploads."""
    import threading

    import serving.state

    seen: list[tuple[str, bool]] = []
    real = serving.state.preprocess_bytes

    def recording(data, config):
        seen.append((threading.current_thread().name, config.face_crop))
        return real(data, config)

    monkeypatch.setattr(serving.state, "preprocess_bytes", recording)
    config = test_config(tiny_face_repo).replace(decode_threads=3)
    async with serving_client(config) as (client, _):
        assert (await client.get("/v2/health/ready")).status_code == 200
    threads = {name for name, _ in seen}
    decode = {name for name in threads if name.startswith("decode")}
    assert len(decode) == 3  # and the model's inference thread, which decodes lone requests
    assert threads - decode == {"infer-cnn:1_0"}
    assert all(face_crop for _, face_crop in seen)


async def test_idle_models_are_kept_warm_and_busy_ones_are_not(tiny_repo):
    import asyncio

    async with serving_client(test_config(tiny_repo, keep_warm_s=0.05)) as (client, app):
        state = app.state.serving
        await asyncio.sleep(0.3)
        idle_runs = state.keep_warm_runs
        assert idle_runs >= 2
        loop = asyncio.get_running_loop()
        busy_until = loop.time() + 0.3
        while loop.time() < busy_until:  # a request at least every 0.05 s
            response = await client.post("/v1/predict", files={"file": ("a.png", png_image(1))})
            assert response.status_code == 200
        assert state.keep_warm_runs <= idle_runs + 1  # at most a tick already under way
    async with serving_client(test_config(tiny_repo, keep_warm_s=0)) as (client, app):
        await asyncio.sleep(0.2)
        assert app.state.serving.keep_warm_runs == 0


async def test_keep_warm_waits_while_a_model_has_work_no_request_touched(tiny_repo):
    """A LIME explanation's rows reach the batcher from a background thread, not through a
    request hop: keep-warm must not run beside them."""
    import asyncio

    async with serving_client(test_config(tiny_repo, keep_warm_s=0.05)) as (client, app):
        state = app.state.serving
        model = next(iter(state.pool))
        await asyncio.sleep(0.2)
        assert state.keep_warm_runs >= 1
        with model.batcher.incoming():  # rows on their way, as between two LIME chunks
            runs = state.keep_warm_runs
            await asyncio.sleep(0.3)
            assert state.keep_warm_runs <= runs + 1  # at most a tick already under way
        await asyncio.sleep(0.3)
        assert state.keep_warm_runs >= runs + 2  # idle again


async def test_entry_served_from_its_int8_file_by_default(tiny_repo):
    """``--precision auto``: the entry's ``serve_precision`` file answers, ``/v1/models``
    names it with the export's measurements, and ``--precision fp32`` still picks FP32."""
    from helpers import add_int8_variant

    measured = {"images": 3000, "roc_auc": 0.98, "roc_auc_fp32": 0.99, "accuracy": 0.9}
    int8_path = add_int8_variant(tiny_repo / "cnn" / "1", measured)
    image = png_image(3, mean=170.0)
    rows = preprocess_bytes(image, PreprocessConfig(size=32))[None]
    int8 = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    expected_int8 = float(int8.run(["probability_fake"], {"image": rows})[0][0, 0])
    async with serving_client(test_config(tiny_repo)) as (client, _):
        [model] = (await client.get("/v1/models")).json()["models"]
        body = (await client.post("/v1/predict", files={"file": ("f.png", image)})).json()
    assert (model["model_file"], model["precision"]) == ("model.int8.onnx", "int8")
    assert model["precision_metrics"] == measured
    assert body["probability_fake"] == pytest.approx(expected_int8, abs=1e-6)
    async with serving_client(test_config(tiny_repo, precision="fp32")) as (client, _):
        [model] = (await client.get("/v1/models")).json()["models"]
        body = (await client.post("/v1/predict", files={"file": ("f.png", image)})).json()
    assert (model["model_file"], model["precision"]) == ("model.onnx", "fp32")
    assert model["precision_metrics"] is None
    assert body["probability_fake"] == pytest.approx(expected(image)[1], abs=1e-6)


async def test_face_detectors_for_photo_shapes_are_loaded_before_ready(tiny_face_repo, monkeypatch):
    """One detector per input size (OpenCV's are not resized): every decode thread has one
    for the usual photo shapes before the first upload, not only for the square sample."""

    from core import facecrop

    monkeypatch.setattr(facecrop, "_IDLE_DETECTORS", {})
    async with serving_client(test_config(tiny_face_repo, decode_threads=2)) as (_, app):
        threads = app.state.serving.config.worker_decode_threads
        idle = {size: pool.qsize() for size, pool in facecrop._IDLE_DETECTORS.items()}
    assert all(idle.get(size, 0) >= threads for size in facecrop.PHOTO_DETECT_SIZES), idle


async def test_numpy_blas_runs_on_the_calling_thread_once_the_server_starts(tiny_repo):
    """LIME's ridge fit stays on its lower-priority thread: no BLAS pool beside it."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        async with serving_client(test_config(tiny_repo)):
            blas = threadpoolctl.threadpool_info()
    assert blas and all(info["num_threads"] == 1 for info in blas if info["user_api"] == "blas")
