"""The seed-style Flask + Keras baseline server of the benchmark suite."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from benchmarks.baseline_flask import resolve_keras_source
from core.preprocessing import PreprocessConfig, encode_jpeg, preprocess_bytes


def _entry(root: Path, source: dict | None) -> Path:
    entry = root / "cnn" / "1"
    entry.mkdir(parents=True)
    metadata = {"name": "cnn", "version": 1}
    if source is not None:
        metadata["source"] = source
    (entry / "metadata.json").write_text(json.dumps(metadata))
    return entry


def test_keras_source_comes_from_flag_then_metadata(tmp_path: Path):
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"zip")
    entry = _entry(tmp_path / "repo", {"keras_model": str(keras_file)})
    assert resolve_keras_source(entry, None) == (
        keras_file,
        f"source.keras_model of {entry}/metadata.json",
    )
    other = tmp_path / "other.keras"
    other.write_bytes(b"zip")
    assert resolve_keras_source(entry, other)[0] == other
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_keras_source(entry, tmp_path / "missing.keras")


def test_missing_keras_source_is_said_not_guessed(tmp_path: Path):
    entry = _entry(tmp_path / "a", None)
    assert resolve_keras_source(entry, None) == (
        None,
        f"{entry}/metadata.json has no source.keras_model",
    )
    gone = _entry(tmp_path / "b", {"keras_model": "runs/nowhere/model.keras"})
    path, reason = resolve_keras_source(gone, None)
    assert path is None and "does not exist" in reason


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": "image/jpeg"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_baseline_serves_keras_predictions_per_request(tiny_repo: Path, tmp_path: Path):
    import keras

    from benchmarks.servers import RunningServer, ServerSpec
    from train.models import build_cnn

    keras.utils.set_random_seed(3)
    model = build_cnn(input_size=32, filters=(4, 8))
    keras_path = tmp_path / "tiny.keras"
    model.save(keras_path)
    image = encode_jpeg(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    expected = float(model.predict(preprocess_bytes(image, PreprocessConfig(size=32))[None])[0, 0])

    spec = ServerSpec(
        name="baseline",
        argv=(
            sys.executable,
            "-m",
            "benchmarks.baseline_flask",
            "--entry",
            str(tiny_repo / "cnn" / "1"),
            "--keras",
            str(keras_path),
            "--host",
            "{host}",
            "--port",
            "{port}",
        ),
        has_metrics=False,
        startup_timeout_s=120.0,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    with RunningServer(spec) as server:
        status, answer = _post(server.base_url + "/v1/predict", image)
        bad_status, bad = _post(server.base_url + "/v1/predict", b"not an image")
        with urllib.request.urlopen(server.base_url + "/v1/info", timeout=10) as reply:
            info = json.loads(reply.read())
    assert status == 200 and answer["label"] in ("REAL", "FAKE")
    assert answer["probability_fake"] == pytest.approx(expected, abs=1e-5)
    assert bad_status == 400 and bad["error"]["code"] == "bad_image"
    assert info["weights_match_onnx"] is True and info["keras_model"] == str(keras_path)


@pytest.mark.slow
def test_baseline_crops_faces_when_the_contract_says_so():
    """A face-crop model's baseline answers for the same crop as our server, not the whole
    image."""
    import keras

    from benchmarks.baseline_flask import create_app
    from train.models import build_cnn

    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    keras.utils.set_random_seed(3)
    model = build_cnn(input_size=32, filters=(4, 8))
    image = encode_jpeg(data.astronaut()[:300, 100:400])  # the face is found
    rows = {crop: preprocess_bytes(image, PreprocessConfig(32, face_crop=crop)) for crop in (0, 1)}
    expected = {crop: float(model.predict(x[None], verbose=0)[0, 0]) for crop, x in rows.items()}
    assert abs(expected[1] - expected[0]) > 1e-6  # the crop changes the answer
    for crop in (0, 1):
        client = create_app(model, {}, config=PreprocessConfig(32, face_crop=bool(crop)))
        client = client.test_client()
        answer = client.post("/v1/predict", data=image, content_type="image/jpeg").get_json()
        assert answer["probability_fake"] == pytest.approx(expected[crop], abs=1e-5)
