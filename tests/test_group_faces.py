"""Every face of a group photo: one model row per face, one batch, listed left to right."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import TinyModelSpec, serving_client, test_config, write_model_entry

import core.facecrop
from core.decision import calibrate
from core.facecrop import Face
from core.preprocessing import PreprocessConfig, encode_png, preprocess_upload

LEVELS = [60, 200, 120, 90, 230, 30]  # brightness of each 100 px tile, 3 columns x 2 rows
LEFT_TO_RIGHT = [60, 90, 200, 230, 120, 30]  # the same faces by x, then y
SIZE = 32


def group_photo() -> tuple[bytes, list[Face]]:
    """A 300 x 200 "group photo": six uniform tiles, one known 60 px face in each (its crop,
    box plus margin, stays inside its tile, so the tiny model sees the tile's brightness)."""
    canvas = np.zeros((200, 300, 3), np.uint8)
    faces = []
    for index, level in enumerate(LEVELS):
        row, col = divmod(index, 3)
        canvas[row * 100 : (row + 1) * 100, col * 100 : (col + 1) * 100] = level
        x, y = col * 100 + 20, row * 100 + 20
        landmarks = np.array([[20, 25], [40, 25], [30, 35], [22, 45], [38, 45]]) + [x, y]
        faces.append(Face((x, y, 60, 60), landmarks.astype(float), 0.9))
    return encode_png(canvas), faces


@pytest.fixture
def group(monkeypatch) -> bytes:
    """The group photo, with YuNet replaced by a detector that finds its six known faces."""
    data, faces = group_photo()

    def detect(rgb: np.ndarray, min_size: float | None = None) -> list[Face]:
        found = [f for f in faces if f.box[2] >= (min_size or 0)]
        return sorted(found, key=lambda f: (-f.box[2], f.box[0], f.box[1]))

    monkeypatch.setattr(core.facecrop, "detect_faces", detect)
    return data


@pytest.fixture
def face_repo(tmp_path):
    """The tiny model, as a face-crop model (the server searches uploads for faces)."""
    write_model_entry(tmp_path / "models", "cnn", 1, TinyModelSpec(size=SIZE), face_crop=True)
    return tmp_path / "models"


def probability(level: float) -> float:
    logit = TinyModelSpec.scale * (level - 127.5)
    return float(calibrate(np.float64(1.0 / (1.0 + np.exp(-logit))), 1.0))


def test_every_face_is_a_row_in_left_to_right_order(group):
    upload = preprocess_upload(group, PreprocessConfig(size=SIZE, face_crop=True, max_faces=16))
    rows = upload.model_rows()
    assert rows.shape == (6, SIZE, SIZE, 3)
    np.testing.assert_allclose(rows.mean(axis=(1, 2, 3)), LEFT_TO_RIGHT, atol=0.01)
    assert [face.box[:2] for face in upload.faces] == [
        (20, 20), (20, 120), (120, 20), (120, 120), (220, 20), (220, 120)
    ]  # fmt: skip
    single = preprocess_upload(group, PreprocessConfig(size=SIZE, face_crop=True))
    assert single.model_rows().shape == (1, SIZE, SIZE, 3)  # max_faces=1: the largest only
    assert single.face.box[:2] == (20, 20)  # ties: the leftmost, as before


@pytest.mark.asyncio
async def test_the_answer_lists_each_face_and_the_most_suspicious_one_decides(group, face_repo):
    async with serving_client(test_config(face_repo)) as (client, _):
        body = (await client.post("/v1/predict", files={"file": ("group.png", group)})).json()
        metrics = (await client.get("/metrics")).text
    assert [round(f["probability_fake"], 6) for f in body["faces"]] == [
        round(probability(level), 6) for level in LEFT_TO_RIGHT
    ]
    worst = LEFT_TO_RIGHT.index(max(LEFT_TO_RIGHT))
    assert body["overall"]["face"] == worst and "most suspicious" in body["overall"]["rule"]
    assert body["probability_fake"] == body["faces"][worst]["probability_fake"]
    assert body["label"] == body["faces"][worst]["label"] == "FAKE"
    assert body["face"] == body["faces"][worst]["face"]
    assert body["face"]["box"] == [120, 120, 60, 60] and body["face"]["image_size"] == [300, 200]
    # the six faces cost one model run of six rows, not six requests
    assert re.search(r'dfd_batch_size_count\{model="cnn",version="1"\} 1\.0', metrics)
    assert re.search(r'dfd_batch_size_sum\{model="cnn",version="1"\} 6\.0', metrics)


@pytest.mark.asyncio
async def test_max_faces_and_the_batch_route(group, face_repo):
    async with serving_client(test_config(face_repo, max_faces=4)) as (client, _):
        four = (await client.post("/v1/predict", files={"file": ("g.png", group)})).json()
        batch = await client.post(
            "/v1/predict/batch",
            files=[("files", ("g.png", group)), ("files", ("t.txt", b"no")),
                   ("files", ("g2.png", group))],
        )  # fmt: skip
    assert [f["face"]["box"][:2] for f in four["faces"]] == [[20, 20], [20, 120], [120, 20],
                                                             [120, 120]]  # fmt: skip
    first, refused, second = batch.json()["results"]
    assert refused["error"]["code"] == "bad_image"
    for result in (first, second):  # each file's rows come back to it
        assert [f["probability_fake"] for f in result["faces"]] == [
            f["probability_fake"] for f in four["faces"]
        ]


def test_bulk_writes_one_row_per_file_with_every_face(group, face_repo, tmp_path):
    from bulk.__main__ import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "group.png").write_bytes(group)
    out = tmp_path / "scores.jsonl"
    args = [str(tmp_path / "in"), "--models", str(face_repo), "--out", str(out), "--workers", "1"]
    assert main(args) == 0  # in this process, where the stand-in detector is
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    faces = json.loads(row["faces"]) if isinstance(row["faces"], str) else row["faces"]
    assert [round(f["probability_fake"], 6) for f in faces] == [
        round(probability(level), 6) for level in LEFT_TO_RIGHT
    ]
    assert row["probability_fake"] == max(f["probability_fake"] for f in faces)
    face = json.loads(row["face"]) if isinstance(row["face"], str) else row["face"]
    assert face["box"] == [120, 120, 60, 60]
