"""Verdicts a person can trust: the face object in every answer, and NO_FACE (no verdict,
no probability) for an image without a face, through /v1/predict, /v1/predict/batch,
/v1/explain, the bulk command and videos. The face detector is the real YuNet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import expected_probability, serving_client, test_config
from PIL import Image

from core.decision import calibrate
from core.facecrop import detect_faces
from core.preprocessing import PreprocessConfig, encode_png, frame_face, resize_rgb


def beige() -> bytes:
    """A plain 640x480 image: no face anywhere."""
    return encode_png(np.full((480, 640, 3), (222, 203, 170), np.uint8))


def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    return data.astronaut()[20:260, 120:360]  # one frontal face of about half the side


def assert_face_object(face: dict, rgb: np.ndarray) -> None:
    """The schema, and the very face YuNet finds in ``rgb`` (in the upload's pixels)."""
    assert set(face) == {"box", "landmarks", "score", "image_size"}
    assert face["image_size"] == [rgb.shape[1], rgb.shape[0]]
    [found] = detect_faces(rgb)
    assert face["box"] == [int(v) for v in found.box]
    assert np.allclose(face["landmarks"], found.landmarks, atol=0.06)
    assert len(face["landmarks"]) == 5 and all(len(point) == 2 for point in face["landmarks"])
    assert 0.6 <= face["score"] <= 1.0


@pytest.mark.asyncio
async def test_no_face_gets_no_verdict_and_a_face_gets_its_face_object(tiny_face_repo):
    rgb = astronaut()
    files = {"file": ("plain.png", beige())}
    async with serving_client(test_config(tiny_face_repo)) as (client, _):
        none = await client.post("/v1/predict", files=files)
        whole = (await client.post("/v1/predict?face_crop=false", files=files)).json()
        face = (await client.post("/v1/predict", files={"file": ("a.png", encode_png(rgb))})).json()
        explained = await client.post("/v1/explain", files=files)
        metrics = (await client.get("/metrics")).text
    assert none.status_code == 200
    body = none.json()
    assert body["label"] == "NO_FACE" and body["probability_fake"] is None
    assert body["confidence"] is None and body["face"] is None
    assert "No face found" in body["message"]
    assert whole["label"] in ("REAL", "UNCERTAIN", "FAKE") and whole["face"] is None  # on request
    assert face["label"] in ("REAL", "UNCERTAIN", "FAKE")
    assert_face_object(face["face"], rgb)
    crop = resize_rgb(frame_face(rgb).rgb, 32)
    assert face["probability_fake"] == pytest.approx(float(expected_probability(crop)), abs=1e-6)
    assert explained.status_code == 200
    assert explained.json()["prediction"]["label"] == "NO_FACE"
    assert "overlay_png_base64" not in explained.json()
    assert 'dfd_predictions_total{label="NO_FACE",model="cnn",version="1"} 2.0' in metrics


@pytest.mark.asyncio
async def test_batch_rows_are_judged_one_by_one_and_no_face_rows_run_no_model(tiny_face_repo):
    rgb = astronaut()
    files = [
        ("files", ("plain.png", beige())),
        ("files", ("face.png", encode_png(rgb))),
        ("files", ("also-plain.png", beige())),
    ]
    async with serving_client(test_config(tiny_face_repo)) as (client, state):
        body = (await client.post("/v1/predict/batch", files=files)).json()
    labels = [row["label"] for row in body["results"]]
    assert labels[0] == labels[2] == "NO_FACE" and labels[1] != "NO_FACE"
    assert [row["filename"] for row in body["results"]] == [
        "plain.png",
        "face.png",
        "also-plain.png",
    ]
    assert body["results"][0]["probability_fake"] is None
    assert_face_object(body["results"][1]["face"], rgb)


@pytest.mark.asyncio
async def test_a_face_in_a_reduced_jpeg_is_reported_in_the_uploads_own_pixels(tiny_face_repo):
    """A large JPEG is draft-decoded at a quarter of its size: the face object is scaled back
    to the upload's pixels."""
    rgb = np.asarray(Image.fromarray(astronaut()).resize((1920, 1920)))
    buffer = __import__("io").BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92)
    async with serving_client(test_config(tiny_face_repo)) as (client, _):
        face = (
            await client.post("/v1/predict", files={"file": ("a.jpg", buffer.getvalue())})
        ).json()
    assert face["face"]["image_size"] == [1920, 1920]
    [found] = detect_faces(rgb)
    assert np.allclose(face["face"]["box"], found.box, atol=0.03 * found.box[2])  # 480 px decode


def test_bulk_writes_no_face_rows_and_face_objects(tiny_face_repo, tmp_path: Path):
    from bulk.__main__ import main

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "plain.png").write_bytes(beige())
    (photos / "face.png").write_bytes(encode_png(astronaut()))
    out = tmp_path / "scores.jsonl"
    args = [str(photos), "--models", str(tiny_face_repo), "--out", str(out), "--no-progress"]
    assert main([*args, "--workers", "1"]) == 0
    rows = {Path(row["path"]).name: row for row in map(json.loads, out.read_text().splitlines())}
    assert rows["plain.png"]["label"] == "NO_FACE"
    assert rows["plain.png"]["probability_fake"] is None and rows["plain.png"]["face"] is None
    face = rows["face.png"]["face"]  # JSON Lines keep it an object (CSV: JSON text)
    assert face["image_size"] == [240, 240] and len(face["landmarks"]) == 5
    p = float(
        calibrate(np.float64(expected_probability(resize_rgb(frame_face(astronaut()).rgb, 32))))
    )
    assert rows["face.png"]["probability_fake"] == pytest.approx(p, abs=1e-6)


def test_a_clip_without_a_face_in_any_frame_is_no_face():
    from core.video import Frame, judged

    frames = [Frame(i, i / 10, np.zeros((4, 4, 3), np.float32), None, np.zeros((2, 2, 3), np.uint8))
              for i in range(4)]  # fmt: skip
    verdict, results = judged(frames, np.array([0.9, 0.8, 0.1, 0.2]), 0.5, face_search=True)
    assert verdict["label"] == "NO_FACE" and verdict["probability_fake"] is None
    assert all(row["probability_fake"] is None for row in results)
    whole, _ = judged(frames, np.array([0.9, 0.8, 0.1, 0.2]), 0.5, face_search=False)
    assert whole["label"] == "FAKE"  # the whole frames, on request


def test_preprocessing_config_default_does_not_search_faces():
    from core.preprocessing import preprocess_upload

    found = preprocess_upload(beige(), PreprocessConfig(size=32))
    assert not found.face_searched and not found.no_face and found.face_json() is None
