"""Reusable test helpers (import as ``from helpers import ...`` from any test in tests/).

* ``onnx_models``: tiny contract-conforming ONNX models without TensorFlow
  (:func:`write_model_entry`, :class:`TinyModelSpec`, :func:`expected_probability`).
* ``images``: encoded test images, truncated files and a pixel-bomb PNG header.
* ``videos``: synthetic clips written with ``cv2.VideoWriter`` (:func:`write_clip`).
* ``server``: :func:`serving_client` (in-process app + lifespan + httpx), :func:`test_config`,
  :class:`ServerProcess` (a real ``python -m serving`` on a free port).
"""

from helpers.images import (
    distinct_pngs,
    jpeg_image,
    noise_rgb,
    pixel_bomb_png,
    png_image,
    truncated,
)
from helpers.onnx_models import (
    TinyModelSpec,
    add_int8_variant,
    build_tiny_model,
    expected_probability,
    slow_fields,
    slow_spec,
    write_model_entry,
)
from helpers.server import (
    ServerProcess,
    free_port,
    serving_client,
    status_when_client_leaves,
    test_config,
)
from helpers.videos import CODECS, avi_with_frames_zeroed, clip_frames, decode_all, write_clip

__all__ = [
    "CODECS",
    "ServerProcess",
    "TinyModelSpec",
    "add_int8_variant",
    "avi_with_frames_zeroed",
    "build_tiny_model",
    "clip_frames",
    "decode_all",
    "distinct_pngs",
    "expected_probability",
    "free_port",
    "jpeg_image",
    "noise_rgb",
    "pixel_bomb_png",
    "png_image",
    "slow_fields",
    "slow_spec",
    "serving_client",
    "status_when_client_leaves",
    "test_config",
    "truncated",
    "write_clip",
    "write_model_entry",
]
