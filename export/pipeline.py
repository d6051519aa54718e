"""``export_model(config)``: Keras file -> checked, optimised, parity-tested repository entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.decision import to_logit

from .config import ExportConfig, ExportError
from .metadata import FILES, Calibration, EntryFacts, build_metadata, read_report, sha256_of
from .onnx_tools import check_model, optimize, to_fp16, to_int8
from .parity import ParityImages, check_parity, compare_variant, folder_images, synthetic_images
from .repository import resolve_target, staged_entry, write_json_atomic

STEPS = ("load", "Keras reference", "convert", "optimise", "parity", "variants", "write")
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


def _parity_images(config: ExportConfig, size: int) -> ParityImages:
    if config.parity_images is not None:
        return folder_images(Path(config.parity_images), config.parity_count, size)
    return synthetic_images(config.parity_count, size, config.seed)


def export_model(config: ExportConfig) -> ExportResult:
    """Run the whole export; raise :class:`ExportError` (nothing published) on any failure."""
    preflight(config)
    calibration = read_report(config.report_path)
    target, version = resolve_target(config.repo, config.name, config.version, config.force)
    with tqdm(total=len(STEPS), desc="export", unit="step", disable=not config.progress) as bar:
        return _export(config, calibration, target, version, bar)


def _export(
    config: ExportConfig, calibration: Calibration, target: Path, version: int, progress: tqdm
) -> ExportResult:
    def step(name: str) -> None:
        progress.set_postfix_str(name)

    step(STEPS[0])
    from . import graph  # TensorFlow is imported here, after the cheap checks

    model = graph.load_keras_model(Path(config.model_path))
    size = graph.input_size_of(model)
    export_graph = graph.build_export_model(model)
    progress.update()

    step(STEPS[1])
    images = _parity_images(config, size)
    keras_probability, keras_cam = graph.keras_outputs(export_graph, images.images)
    gap = cam_logit_gap(keras_probability, keras_cam)
    if gap > CAM_LOGIT_RELATIVE_TOLERANCE:
        raise ExportError(
            f"the CAM's spatial mean differs from the logit by {gap:.3g} (relative): the head "
            "between 'features' and 'classifier' is not GAP -> Dense, so the CAM is not exact"
        )
    progress.update()

    step(STEPS[2])
    proto = graph.to_onnx(export_graph, size, config.opset)
    progress.update()

    batch_sizes = [1, config.parity_batch]
    files = {"onnx": FILES["onnx"], "onnx_portable": FILES["onnx_portable"]}
    with staged_entry(target, config.force) as staging:
        import onnx

        portable, optimised = staging / FILES["onnx_portable"], staging / FILES["onnx"]
        onnx.save(proto, str(portable))
        check_model(portable)
        step(STEPS[3])
        optimize(portable, optimised, config.optimization)
        check_model(optimised)
        progress.update()

        step(STEPS[4])
        parity_args = (images, keras_probability, keras_cam, batch_sizes, config.tolerance)
        portable_report = check_parity(portable, *parity_args)
        report = check_parity(optimised, *parity_args)
        parity = report.as_metadata()
        parity["portable_fp32_max_abs_diff"] = portable_report.probability_max_abs_diff
        parity["cam_logit_max_rel_diff"] = gap
        progress.update()

        step(STEPS[5])
        variants = [("fp16", to_fp16)] * config.fp16 + [("int8", to_int8)] * config.int8
        for key, convert in variants:
            path = staging / FILES[f"onnx_{key}"]
            convert(portable, path)
            parity[key] = compare_variant(
                path,
                optimised,
                images,
                calibration.threshold,
                calibration.temperature,
                batch_sizes,
            )
            files[f"onnx_{key}"] = FILES[f"onnx_{key}"]
        progress.update()

        step(STEPS[6])
        facts = EntryFacts(
            name=config.name,
            version=version,
            model_kind=model.name,
            input_size=size,
            cam_shape=tuple(int(v) for v in keras_cam.shape[1:]),
            files=files,
            keras_model=str(config.model_path),
            keras_sha256=sha256_of(Path(config.model_path)),
            report_path=str(config.report_path) if config.report_path else None,
            training_data=config.training_data,
            opset=config.opset,
            optimization=config.optimization,
            parity=parity,
            converter_versions=graph.tool_versions(),
        )
        metadata = build_metadata(facts, calibration)
        write_json_atomic(staging / "metadata.json", metadata)
        progress.update()
    return ExportResult(path=target, version=version, metadata=metadata)
