"""``export_model(config)``: Keras file -> checked, optimised, parity-tested repository entry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.decision import to_logit
from core.preprocessing import PreprocessConfig

from .config import GATE_MIN_IMAGES, ExportConfig, ExportError
from .metadata import FILES, Calibration, EntryFacts, build_metadata, read_report, sha256_of
from .onnx_tools import check_model, optimize, to_fp16, to_int8
from .parity import ParityImages, check_parity, compare_variant, folder_images, synthetic_images
from .repository import resolve_target, staged_entry, write_json_atomic

PROGRESS_STEPS = 7  # load, Keras reference, convert, optimise, parity, variants, write
CAM_LOGIT_RELATIVE_TOLERANCE = 1e-3
UNSATURATED = 1e-4  # the logit of p is only well defined in float32 away from 0 and 1


@dataclass(frozen=True)
class ExportResult:
    """Where the entry went and what its metadata says."""

    path: Path
    version: int
    metadata: dict


def preflight(config: ExportConfig) -> None:
    """Cheap checks before TensorFlow is even imported."""
    if not Path(config.model_path).is_file():
        raise ExportError(f"Keras model {config.model_path} does not exist (or is not a file)")
    if config.parity_images is not None and not Path(config.parity_images).is_dir():
        raise ExportError(f"--parity-images folder {config.parity_images} does not exist")


def cam_logit_gap(probability: np.ndarray, cam: np.ndarray) -> float:
    """Largest |mean(cam) - logit(p)| relative to max(1, |logit|), over unsaturated p."""
    p = probability[:, 0].astype(np.float64)
    usable = (p > UNSATURATED) & (p < 1.0 - UNSATURATED)
    if not usable.any():
        return 0.0
    logit = to_logit(p[usable])
    mean = cam[usable].astype(np.float64).mean(axis=(1, 2))
    return float(np.max(np.abs(mean - logit) / np.maximum(1.0, np.abs(logit))))


def _parity_images(config: ExportConfig, preprocess: PreprocessConfig) -> ParityImages:
    if config.parity_images is not None:
        return folder_images(Path(config.parity_images), config.parity_count, preprocess)
    return synthetic_images(config.parity_count, preprocess.size, config.seed)


def _calibration_images(config: ExportConfig, reference: KerasReference) -> np.ndarray:
    """INT8 calibration inputs: ``--calib-images`` through the contract, else the parity
    images."""
    if config.calib_images is None:
        return reference.images.images[: config.calib_count]
    folder = Path(config.calib_images)
    return folder_images(folder, config.calib_count, reference.preprocess).images


def serve_precision(parity: dict, config: ExportConfig) -> str | None:
    """``int8`` when, on enough labelled parity images, the INT8 file's ROC-AUC is within
    ``--int8-max-auc-drop`` of FP32's **and** it agrees with FP32 image by image (at least
    ``--int8-min-agreement`` of the verdicts equal, the 99th percentile of |Δp| at most
    ``--int8-max-p99-diff``); otherwise None (the server then serves FP32)."""
    int8 = parity.get("int8") or {}
    delta = int8.get("roc_auc_delta")
    if delta is None or int8.get("images", 0) < GATE_MIN_IMAGES:
        return None
    agrees = (
        int8.get("verdict_agreement", 0.0) >= config.int8_min_agreement
        and int8.get("calibrated_abs_diff_p99", 1.0) <= config.int8_max_p99_diff
    )
    return "int8" if agrees and delta >= -config.int8_max_auc_drop else None


@dataclass(frozen=True)
class KerasReference:
    """The Keras model, its export graph, and what it answers on the parity images."""

    model: Any  # keras.Model (TensorFlow is imported only once the cheap checks passed)
    export_graph: Any
    preprocess: PreprocessConfig  # the contract the parity images were read with
    images: ParityImages
    probability: np.ndarray
    cam: np.ndarray
    cam_logit_gap: float


def export_model(config: ExportConfig) -> ExportResult:
    """Run the whole export; raise :class:`ExportError` (nothing published) on any failure."""
    preflight(config)
    calibration = read_report(config.report_path)
    target, version = resolve_target(config.repo, config.name, config.version, config.force)
    with tqdm(total=PROGRESS_STEPS, desc="export", unit="step", disable=not config.progress) as bar:
        with _step(bar, "load and Keras reference", count=2):
            reference = keras_reference(config, calibration)
        with _step(bar, "convert"):
            proto = to_onnx_proto(reference, config)
        with staged_entry(target, config.force) as staging:
            portable, optimised = staging / FILES["onnx_portable"], staging / FILES["onnx"]
            with _step(bar, "optimise"):
                write_onnx_files(proto, portable, optimised, config)
            with _step(bar, "parity"):
                parity = parity_report(reference, portable, optimised, config)
            with _step(bar, "variants"):
                files = write_variants(reference, portable, optimised, staging, parity, config,
                                       calibration)  # fmt: skip
            with _step(bar, "write"):
                facts = entry_facts(config, version, reference, files, parity)
                metadata = build_metadata(facts, calibration)
                write_json_atomic(staging / "metadata.json", metadata)
    return ExportResult(path=target, version=version, metadata=metadata)


@contextmanager
def _step(progress: tqdm, name: str, count: int = 1) -> Iterator[None]:
    """Show ``name`` while the step runs; advance the bar by ``count`` when it is done."""
    progress.set_postfix_str(name)
    yield
    progress.update(count)


def keras_reference(config: ExportConfig, calibration: Calibration | None = None) -> KerasReference:
    """Load the Keras model, build its export graph (probability + CAM) and run it on the
    parity images (read as the contract says); the CAM must average to the logit, or it is
    not an exact CAM."""
    from . import graph  # TensorFlow is imported here, after the cheap checks

    model = graph.load_keras_model(Path(config.model_path))
    size = graph.input_size_of(model)
    export_graph = graph.build_export_model(model)
    preprocess = (calibration or Calibration()).preprocess_config(size)
    images = _parity_images(config, preprocess)
    probability, cam = graph.keras_outputs(export_graph, images.images)
    gap = cam_logit_gap(probability, cam)
    if gap > CAM_LOGIT_RELATIVE_TOLERANCE:
        raise ExportError(
            f"the CAM's spatial mean differs from the logit by {gap:.3g} (relative): the head "
            "between 'features' and 'classifier' is not GAP -> Dense, so the CAM is not exact"
        )
    return KerasReference(model, export_graph, preprocess, images, probability, cam, gap)


def to_onnx_proto(reference: KerasReference, config: ExportConfig) -> Any:
    from . import graph

    return graph.to_onnx(reference.export_graph, reference.preprocess.size, config.opset)


def write_onnx_files(proto: Any, portable: Path, optimised: Path, config: ExportConfig) -> None:
    """The portable graph as converted, and the graph onnxruntime optimised; both checked."""
    import onnx

    onnx.save(proto, str(portable))
    check_model(portable)
    optimize(portable, optimised, config.optimization)
    check_model(optimised)


def parity_report(
    reference: KerasReference, portable: Path, optimised: Path, config: ExportConfig
) -> dict:
    """Both ONNX files against Keras at batch 1 and ``parity_batch`` (raises on a gap)."""
    args = (reference.images, reference.probability, reference.cam, _batch_sizes(config))
    portable_report = check_parity(portable, *args, config.tolerance)
    parity = check_parity(optimised, *args, config.tolerance).as_metadata()
    parity["portable_fp32_max_abs_diff"] = portable_report.probability_max_abs_diff
    parity["cam_logit_max_rel_diff"] = reference.cam_logit_gap
    return parity


def write_variants(
    reference: KerasReference,
    portable: Path,
    optimised: Path,
    staging: Path,
    parity: dict,
    config: ExportConfig,
    calibration: Calibration,
) -> dict[str, str]:
    """FP16 / INT8 files where asked, each compared with FP32 (added to ``parity``);
    returns every ONNX file of the entry."""
    files = {"onnx": FILES["onnx"], "onnx_portable": FILES["onnx_portable"]}
    variants: list[tuple[str, Callable[[Path, Path], None]]] = [("fp16", to_fp16)] * config.fp16
    if config.int8:
        images = _calibration_images(config, reference)
        variants.append(("int8", lambda source, path: to_int8(source, path, images)))
    for key, convert in variants:
        path = staging / FILES[f"onnx_{key}"]
        convert(portable, path)
        parity[key] = compare_variant(
            path, optimised, reference.images, calibration.threshold, calibration.temperature,
            _batch_sizes(config),
        )  # fmt: skip
        files[f"onnx_{key}"] = FILES[f"onnx_{key}"]
    return files


def entry_facts(
    config: ExportConfig, version: int, reference: KerasReference, files: dict, parity: dict
) -> EntryFacts:
    from . import graph

    return EntryFacts(
        name=config.name,
        version=version,
        model_kind=reference.model.name,
        input_size=reference.preprocess.size,
        cam_shape=tuple(int(v) for v in reference.cam.shape[1:]),
        files=files,
        keras_model=str(config.model_path),
        keras_sha256=sha256_of(Path(config.model_path)),
        report_path=str(config.report_path) if config.report_path else None,
        training_data=config.training_data,
        opset=config.opset,
        optimization=config.optimization,
        parity=parity,
        converter_versions=graph.tool_versions(),
        serve_precision=serve_precision(parity, config),
    )


def _batch_sizes(config: ExportConfig) -> list[int]:
    return [1, config.parity_batch]
