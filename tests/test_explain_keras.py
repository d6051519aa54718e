"""The fast explanation with a real trained model: a tiny Keras CNN (``train.models``) learns a
fake cue that always sits in the top-left corner, is exported with ``export`` (CAM output
included) and served; ``/v1/explain?method=cam`` must light up that corner."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from helpers import serving_client, test_config
from PIL import Image

from core.preprocessing import PreprocessConfig, encode_png, preprocess_bytes

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

SIZE = 64  # model input side: small enough to train in seconds on a CPU


def corner_cue_image(rng: np.random.Generator, fake: bool, height: int, width: int) -> np.ndarray:
    """A smooth random gradient with noise; ``fake`` adds a checkerboard in the top-left third."""
    yy, xx = np.mgrid[0:height, 0:width]
    mix = (yy / height * rng.uniform(0.3, 1) + xx / width * rng.uniform(0.3, 1))[..., None] / 2
    low, high = rng.uniform(40, 210, (2, 3))
    rgb = low * (1 - mix) + high * mix + rng.normal(0, 5, (height, width, 3))
    if fake:
        patch_h, patch_w = height // 3, width // 3
        cell = max(2, round(2 * max(height, width) / SIZE))
        py, px = np.mgrid[0:patch_h, 0:patch_w]
        rgb[:patch_h, :patch_w] = np.where((py // cell + px // cell) % 2 == 0, 235, 20)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def corner_model_repo(tmp_path_factory) -> Path:
    import keras

    from export.config import ExportConfig
    from export.pipeline import export_model
    from train.models import build_cnn

    workdir = tmp_path_factory.mktemp("cam_corner")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(192) % 2
    images = np.stack([corner_cue_image(rng, bool(y), SIZE, SIZE) for y in labels])
    model = build_cnn(SIZE, filters=(8, 16, 32), dropout=0.0)
    for layer in model.layers:  # few steps: let BatchNorm's moving statistics catch up
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(
        images.astype(np.float32), labels.astype(np.float32), epochs=8, batch_size=16, verbose=0
    )
    path = workdir / "corner.keras"
    model.save(path)
    export_model(
        ExportConfig(
            model_path=path,
            name="cnn",
            repo=workdir / "models",
            parity_count=4,
            training_data="synthetic corner-cue images (test)",
            progress=False,
        )
    )
    return workdir / "models"


async def test_cam_of_a_trained_exported_cnn_peaks_in_the_cue_corner(corner_model_repo):
    rng = np.random.default_rng(42)
    height, width = 120, 200  # not square, not the model size
    fake = corner_cue_image(rng, True, height, width)
    real = corner_cue_image(rng, False, height, width)
    async with serving_client(test_config(corner_model_repo)) as (client, _):
        answer = await client.post("/v1/explain", files={"file": ("f.png", encode_png(fake))})
        real_answer = await client.post("/v1/predict", files={"file": ("r.png", encode_png(real))})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prediction"]["label"] == "FAKE" and real_answer.json()["label"] == "REAL"
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"]))))
    assert overlay.shape == (height, width, 3)
    redness = overlay[..., 0].astype(int) - overlay[..., 2].astype(int)  # JET: red = high
    peak_row, peak_col = np.unravel_index(np.argmax(redness), redness.shape)
    assert peak_row < height // 2 and peak_col < width // 2  # the cue's quadrant
    corner = redness[: height // 3, : width // 3].mean()  # where the cue is
    for rows, cols in (
        (slice(height // 2, None), slice(None)),
        (slice(None), slice(width // 2, None)),
    ):
        assert corner > redness[rows, cols].mean() + 60  # far redder than the other halves

    # the model's raw map agrees: its largest cell is in the top-left quadrant
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(corner_model_repo / "cnn" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    model_input = preprocess_bytes(encode_png(fake), PreprocessConfig(size=SIZE))[None]
    names = [output.name for output in session.get_outputs()]
    cam = dict(zip(names, session.run(None, {"image": model_input}), strict=True))["cam"][0]
    cell = np.unravel_index(np.argmax(cam), cam.shape)
    assert cell[0] < cam.shape[0] // 2 and cell[1] < cam.shape[1] // 2
