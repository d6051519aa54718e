"""Parity images and the Keras-vs-ONNX comparison that gates every export.

Images come from a folder (decoded and resized by ``core.preprocessing``, labelled when
they sit in ``real/`` and ``fake/`` sub-folders) or, without one, are seeded synthetic
images encoded as PNG and sent through the same preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.decision import CLASS_NAMES, DecisionRule, calibrate, decide
from core.preprocessing import ImageError, PreprocessConfig, encode_png, preprocess_bytes

from .config import ExportError, ParityError
from .onnx_tools import plain_cpu_session, run_batches

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
LABEL_FOLDERS = {name.lower(): index for index, name in enumerate(CLASS_NAMES)}


@dataclass
class ParityImages:
    """Model inputs for the parity check, with labels when the folder had them."""

    images: np.ndarray
    labels: np.ndarray | None
    source: str


def synthetic_images(count: int, size: int, seed: int = 0) -> ParityImages:
    """Seeded images (smooth colour fields plus noise, varied sizes) via the PNG path."""
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(count):
        height, width = (int(v) for v in rng.integers(size // 2, 2 * size, 2))
        coarse = rng.uniform(0, 255, (4, 4, 3))
        rows = np.linspace(0, 3, height)[:, None].astype(int)
        cols = np.linspace(0, 3, width)[None, :].astype(int)
        field = coarse[rows, cols] + rng.normal(0, 40, (height, width, 3))
        rgb = np.clip(field, 0, 255).astype(np.uint8)
        batch.append(preprocess_bytes(encode_png(rgb), PreprocessConfig(size=size)))
    return ParityImages(np.stack(batch), None, f"synthetic (seed {seed})")


def _label_of(path: Path, root: Path) -> int | None:
    parts = path.relative_to(root).parts
    return LABEL_FOLDERS.get(parts[0].lower()) if len(parts) > 1 else None


def _interleave(first: list[Path], second: list[Path]) -> list[Path]:
    """first[0], second[0], first[1], ... then the longer list's remainder."""
    paired = [path for pair in zip(first, second, strict=False) for path in pair]
    shorter = min(len(first), len(second))
    return paired + first[shorter:] + second[shorter:]


def folder_images(root: Path, count: int, preprocess: PreprocessConfig) -> ParityImages:
    """Up to ``count`` images under ``root`` (sorted, balanced over real/ and fake/ if present),
    read through ``preprocess`` (the model's contract, face crop included)."""
    if not root.is_dir():
        raise ExportError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    labels = [_label_of(path, root) for path in files]
    if files and all(label is not None for label in labels):
        real = [path for path in files if _label_of(path, root) == 0]
        fake = [path for path in files if _label_of(path, root) == 1]
        files = _interleave(real, fake)[:count]
        labels = [_label_of(path, root) for path in files]
    else:
        files, labels = files[:count], None
    images, kept = [], []
    for index, path in enumerate(files):
        try:
            images.append(preprocess_bytes(path.read_bytes(), preprocess))
            kept.append(index)
        except ImageError:
            continue  # unreadable files are skipped, not fatal
    if not images:
        raise ExportError(f"no readable images found under {root}")
    label_array = None if labels is None else np.array([labels[i] for i in kept])
    return ParityImages(np.stack(images), label_array, str(root))


@dataclass
class ParityReport:
    """Largest differences between Keras and ONNX Runtime over all batch sizes tried."""

    probability_max_abs_diff: float
    cam_max_abs_diff: float | None
    cam_tolerance: float | None
    images: int
    batch_sizes: list[int]
    tolerance: float
    source: str
    failures: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {
            "fp32_max_abs_diff": self.probability_max_abs_diff,
            "cam_max_abs_diff": self.cam_max_abs_diff,
            "tolerance": self.tolerance,
            "cam_tolerance": self.cam_tolerance,
            "images": self.images,
            "batch_sizes": self.batch_sizes,
            "images_source": self.source,
        }


def check_parity(
    onnx_path: Path,
    images: ParityImages,
    keras_probability: np.ndarray,
    keras_cam: np.ndarray | None,
    batch_sizes: list[int],
    tolerance: float,
) -> ParityReport:
    """Compare ONNX Runtime with Keras at each batch size; raise :class:`ParityError` if off.

    The CAM is a logit-scale map, so its tolerance scales with its magnitude:
    ``tolerance * max(1, max|cam|)``.
    """
    session = plain_cpu_session(onnx_path)
    worst_p, worst_cam, failures = 0.0, None, []
    cam_tolerance = None
    if keras_cam is not None:
        cam_tolerance = tolerance * max(1.0, float(np.abs(keras_cam).max()))
    for batch_size in batch_sizes:
        probability, cam = run_batches(session, images.images, batch_size)
        if probability.shape != keras_probability.shape:
            raise ParityError(
                f"ONNX probability_fake has shape {probability.shape}, "
                f"Keras {keras_probability.shape} (batch size {batch_size})"
            )
        diff = float(np.abs(probability - keras_probability).max())
        worst_p = max(worst_p, diff)
        if diff > tolerance or not np.isfinite(diff):
            failures.append(f"probability |Δ| {diff:.3g} > {tolerance:g} at batch {batch_size}")
        if keras_cam is not None:
            if cam is None or cam.shape != keras_cam.shape:
                raise ParityError(f"ONNX cam output missing or misshapen at batch {batch_size}")
            cam_diff = float(np.abs(cam - keras_cam).max())
            worst_cam = max(worst_cam or 0.0, cam_diff)
            if cam_diff > cam_tolerance or not np.isfinite(cam_diff):
                failures.append(
                    f"cam |Δ| {cam_diff:.3g} > {cam_tolerance:.3g} at batch {batch_size}"
                )
    report = ParityReport(
        probability_max_abs_diff=worst_p,
        cam_max_abs_diff=worst_cam,
        cam_tolerance=cam_tolerance,
        images=len(images.images),
        batch_sizes=list(batch_sizes),
        tolerance=tolerance,
        source=images.source,
        failures=failures,
    )
    if failures:
        raise ParityError(
            f"Keras and ONNX Runtime disagree on {onnx_path.name}: " + "; ".join(failures)
        )
    return report


def compare_variant(
    variant_path: Path,
    fp32_path: Path,
    images: ParityImages,
    threshold: float,
    temperature: float,
    batch_sizes: list[int],
) -> dict:
    """Max |Δp| of a reduced-precision model vs the FP32 ONNX model, at every batch size
    (+ accuracy and ROC-AUC deltas where the images are labelled)."""
    reference_probability, _ = run_batches(plain_cpu_session(fp32_path), images.images, 1)
    session = plain_cpu_session(variant_path)
    worst, probability = 0.0, None
    for batch_size in batch_sizes:
        probability, _ = run_batches(session, images.images, batch_size)
        worst = max(worst, float(np.abs(probability - reference_probability).max()))
    result = {
        "max_abs_diff_vs_fp32": worst,
        "mean_abs_diff_vs_fp32": float(np.abs(probability - reference_probability).mean()),
        "images": len(images.images),
        "batch_sizes": list(batch_sizes),
        **verdict_agreement(reference_probability[:, 0], probability[:, 0], threshold, temperature),
    }
    if images.labels is not None:
        result.update(_labelled_deltas(images.labels, reference_probability[:, 0],
                                       probability[:, 0], threshold, temperature))  # fmt: skip
    return result


def verdict_agreement(
    fp32: np.ndarray, variant: np.ndarray, threshold: float, temperature: float
) -> dict:
    """Per image, on calibrated probabilities: the share of verdicts (REAL / UNCERTAIN /
    FAKE at the entry's threshold) the variant gives as FP32 does, and the 99th percentile
    and maximum of |Δp|."""
    rule = DecisionRule.from_threshold(threshold)
    p32, pv = calibrate(fp32, temperature), calibrate(variant, temperature)
    same = [decide(a, rule)[0] == decide(b, rule)[0] for a, b in zip(p32, pv, strict=True)]
    diff = np.abs(np.asarray(pv) - np.asarray(p32))
    return {
        "verdict_agreement": float(np.mean(same)),
        "calibrated_abs_diff_p99": float(np.percentile(diff, 99)),
        "calibrated_abs_diff_max": float(diff.max()),
    }


def _labelled_deltas(
    labels: np.ndarray, fp32: np.ndarray, variant: np.ndarray, threshold: float, temperature: float
) -> dict:
    """Accuracy at the entry's threshold and ROC-AUC (both classes present) of the variant
    against FP32 on the same labelled images."""
    from sklearn.metrics import roc_auc_score

    def accuracy(p: np.ndarray) -> float:
        return float(np.mean((calibrate(p, temperature) >= threshold).astype(int) == labels))

    result = {"accuracy_fp32": accuracy(fp32), "accuracy": accuracy(variant)}
    result["accuracy_delta"] = result["accuracy"] - result["accuracy_fp32"]
    if len(set(labels.tolist())) == 2:
        result["roc_auc_fp32"] = float(roc_auc_score(labels, fp32))
        result["roc_auc"] = float(roc_auc_score(labels, variant))
        result["roc_auc_delta"] = result["roc_auc"] - result["roc_auc_fp32"]
    return result
