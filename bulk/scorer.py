"""Score a batch of files with one model: the server's preprocessing contract and calibrated
decision (``core``), one onnxruntime session, and the server's provenance evidence
(``core.provenance``); a file that cannot be read or decoded gets an error row instead of a
result. Video files (by suffix, :data:`core.video.VIDEO_SUFFIXES`) are sampled and aggregated
as ``/v1/predict/video`` does; their row carries the per-frame results under
``frame_results`` (written to a per-frame file by :mod:`bulk.outputs`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.decision import NO_FACE, calibrate, judge_faces
from core.modelrepo import ModelEntry, ModelRepository
from core.options import check_at_least, option, parse_optional_int, parse_optional_str
from core.preprocessing import DEFAULT_MAX_PIXELS, ImageError, preprocess_upload
from core.provenance import EvidenceConfig, EvidenceReader
from core.video import (
    VIDEO_SUFFIXES,
    Sampling,
    VideoError,
    VideoLimits,
    VideoReader,
    judged,
)


@dataclass(frozen=True)
class ModelChoice:
    """Which model scores, how its session is built, and how evidence is read (None: not)."""

    models: Path = option(Path("models"), "model repository", Path)
    name: str | None = option(  # None: the server's default (serving.models.preferred_default)
        None, "model name (default: the server's default model)", parse_optional_str,
        flag="--model",
    )  # fmt: skip
    version: int | None = option(None, "model version (default: latest)", parse_optional_int)
    intra_op_threads: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_faces: int = option(16, "faces judged per image, largest first (the server's)", int)
    evidence: EvidenceConfig | None = EvidenceConfig()
    video_sampling: Sampling = Sampling()
    video_limits: VideoLimits = VideoLimits()

    def __post_init__(self) -> None:
        check_at_least(self, 0, "intra_op_threads")
        check_at_least(self, 1, "version", "max_pixels", "max_faces")

    def entry(self) -> ModelEntry:
        from serving.models import preferred_default

        repository = ModelRepository(self.models)
        name = self.name or preferred_default(repository.names())
        if name is None:
            raise ValueError(f"no model in {self.models}")
        return repository.entry(name, self.version)


class Scorer:
    """One model session; :meth:`score` turns paths into result rows."""

    def __init__(self, choice: ModelChoice) -> None:
        from serving.runtime import ModelRuntime, RuntimeConfig

        self.choice = choice
        self.entry = choice.entry()
        self.config = self.entry.preprocess_config(choice.max_pixels, max_faces=choice.max_faces)
        self.runtime = ModelRuntime(
            self.entry,
            RuntimeConfig(
                providers=("cpu",), intra_op_threads=choice.intra_op_threads, lone_spin=False
            ),
        )
        self.evidence = EvidenceReader(choice.evidence) if choice.evidence else None

    def _row(self, path: str) -> dict:
        return {"path": path, "model": self.entry.name, "version": self.entry.version}

    def _read(self, path: str) -> tuple[dict, np.ndarray | None]:
        """The row so far and the model input (None: an error, or no face to judge)."""
        row = self._row(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return row | {"error_code": "unreadable", "error_message": str(exc)}, None
        row["sha256"] = hashlib.sha256(data).hexdigest()
        try:
            upload = preprocess_upload(data, self.config)
        except ImageError as exc:
            return row | {"error_code": exc.code, "error_message": str(exc)}, None
        if self.evidence is not None:
            row["evidence"] = self.evidence.read(data)
        row["face"] = upload.face_json()
        if upload.no_face:  # as the server answers: no verdict, no probability
            return row | {"label": NO_FACE, "faces": []}, None
        row["faces"] = upload.faces_json()
        return row, upload.model_rows()

    def _calibrated(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of FAKE for model input rows, in one session run."""
        outputs = self.runtime.run(rows)
        raw = np.asarray(outputs["probability_fake"], dtype=np.float64).reshape(-1)
        return calibrate(raw, self.entry.temperature)

    def score_video(self, path: str) -> dict:
        """One row for a video: its verdict, the number of frames scored and, under
        ``frame_results``, every sampled frame (as the server's ``frames``)."""
        row = self._row(path)
        try:
            with open(path, "rb") as handle:
                row["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            return row | {"error_code": "unreadable", "error_message": str(exc)}
        limits = self.choice.video_limits
        frames, calibrated = [], []
        try:
            with VideoReader(Path(path), limits) as reader:
                indices = reader.sample(self.choice.video_sampling)
                for chunk in reader.chunks(indices, self.config):
                    frames += chunk
                    calibrated.append(
                        self._calibrated(np.stack([frame.model_input for frame in chunk]))
                    )
        except VideoError as exc:
            return row | {"error_code": exc.code, "error_message": str(exc)}
        probabilities = np.concatenate(calibrated)
        verdict, results = judged(frames, probabilities, self.entry.decision, self.config.face_crop)
        keep = ("label", "probability_fake", "confidence")
        return (
            row
            | {key: verdict[key] for key in keep}
            | {
                "frames": len(frames),
                "frame_results": results,
            }
        )

    def score(self, paths: list[str]) -> list[dict]:
        """One row per path, in order (videos one by one, images in one session run)."""
        read = [
            (self.score_video(path), None) if is_video(path) else self._read(path) for path in paths
        ]
        inputs = [face_rows for _, face_rows in read if face_rows is not None]
        probabilities = self._calibrated(np.concatenate(inputs)) if inputs else np.zeros(0)
        rows, start = [], 0
        for row, face_rows in read:
            if face_rows is not None:
                faces = probabilities[start : start + len(face_rows)]
                start += len(face_rows)
                row |= judge_faces(faces, self.entry.decision, row.get("faces") or [])
            rows.append(row)
        return rows


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
