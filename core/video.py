"""Video clips: open with OpenCV's FFmpeg backend, sample frames, preprocess each like an image,
and turn frame scores into one verdict. Shared by the server (``/v1/predict/video``) and
``python -m bulk``.

* **Open**: the container is checked first (:mod:`core.videofile`: not a video -> 400,
  truncated -> 400), then OpenCV opens it (no stream it can decode -> 415). Frame rate, frame
  count and frame size come from the container; the duration is ``frame_count / fps``.
* **Limits** (:class:`VideoLimits`): duration and frame size (413), frames sampled (422),
  all stated in the message.
* **Sampling** (:class:`Sampling`): ``frames=K`` takes the middle frame of K equal stretches
  of the clip (every frame when the clip has at most K); ``fps=F`` takes one frame every
  ``1/F`` seconds from the first. A frame's time is ``index / fps``.
* **Frames**: decoded in order (``grab`` skips the frames not sampled), BGR -> RGB, then
  :func:`core.preprocessing.preprocess_rgb_and_box`: the image path's face crop (when the
  model's contract asks for it) and resize, so a frame scores exactly as the same pixels
  uploaded as a PNG to ``/v1/predict``.
* **Verdict** (:func:`video_verdict`): the mean of the top quarter (at least one) of the
  calibrated frame probabilities, against the model's threshold. Temperature and threshold
  were fitted on single images (frames), not on videos; the answer says so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.decision import NO_FACE, DecisionRule, decide
from core.facecrop import import_cv2
from core.preprocessing import FaceBox, PreprocessConfig, preprocess_rgb_and_box
from core.videofile import CONTAINER_NAMES, inspect_file

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
DEFAULT_FRAMES = 32
TOP_FRACTION = 0.25  # the verdict is the mean of this share of the highest frame scores
THUMBNAIL_SIDE = 160  # longer side of the frame thumbnails, in pixels
TAIL_TOLERANCE = 0.05  # a stream may end this share of its declared frames early (estimates)
CALIBRATION_NOTE = (
    "frame probabilities use the model's temperature and the verdict its threshold, both "
    "fitted on single images (frames), not on whole videos"
)


class VideoError(ValueError):
    """A video upload that cannot be scored; ``status`` and ``code`` are what the server
    answers (400 not a video / truncated / nothing decodable, 413 over a limit, 415 codec)."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_video") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on one clip (the server's flags set them)."""

    max_duration_s: float = 600.0
    max_frame_pixels: int = 3840 * 2160
    max_frames: int = 256  # frames sampled from one clip

    def __post_init__(self) -> None:
        if not self.max_duration_s > 0:
            raise ValueError(f"max_duration_s must be positive, got {self.max_duration_s}")
        for name in ("max_frame_pixels", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Sampling:
    """Which frames to score: ``frames`` spread evenly, or ``fps`` frames per second."""

    frames: int | None = DEFAULT_FRAMES
    fps: float | None = None

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.fps is None):
            raise ValueError("give exactly one of frames and fps")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")

    def summary(self) -> dict:
        return {"frames": self.frames} if self.fps is None else {"fps": self.fps}


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the clip's video stream."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def summary(self) -> dict:
        return {**asdict(self), "duration_s": round(self.duration_s, 3)}


@dataclass
class Frame:
    """One sampled frame, ready for the model."""

    index: int
    time_s: float
    model_input: np.ndarray  # float32 S x S x 3, 0..255
    box: FaceBox | None  # the face crop as fractions of the frame; None: whole frame
    thumbnail: np.ndarray  # uint8 RGB, longer side THUMBNAIL_SIDE


def sample_indices(info: VideoInfo, sampling: Sampling, limits: VideoLimits) -> list[int]:
    """The frame indices ``sampling`` picks from this clip, in order (422 over the limit)."""
    count = info.frame_count
    if sampling.frames is not None:
        if sampling.frames > limits.max_frames:
            raise VideoError(
                f"frames={sampling.frames} is over the limit of {limits.max_frames} sampled "
                "frames per video", 422, "parameter_out_of_range",
            )  # fmt: skip
        if sampling.frames >= count:
            return list(range(count))
        return [int((i + 0.5) * count / sampling.frames) for i in range(sampling.frames)]
    step = max(1.0, info.fps / sampling.fps)
    indices = sorted({int(i * step) for i in range(math.ceil(count / step))} & set(range(count)))
    if len(indices) > limits.max_frames:
        raise VideoError(
            f"fps={sampling.fps:g} samples {len(indices)} frames from this "
            f"{info.duration_s:.1f} s clip; the limit is {limits.max_frames} sampled frames per "
            "video (lower fps, or use frames=)", 422, "parameter_out_of_range",
        )  # fmt: skip
    return indices


def thumbnail(rgb: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A small copy of a frame (longer side ``side``), for showing the top frames."""
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    cv2 = import_cv2()
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class VideoReader:
    """An open clip: :attr:`info`, then :meth:`chunks` of preprocessed frames.

    Use as a context manager (the capture is released on exit). Not thread-safe: one caller
    at a time, though successive calls may come from different threads.
    """

    def __init__(self, path: Path, limits: VideoLimits) -> None:
        self.path = Path(path)
        self.limits = limits
        self._capture = None
        self._lock = threading.Lock()
        self.decoded = 0  # frames decoded by chunks() so far
        self.ended_at: int | None = None  # frames in the stream, where it ended early
        try:
            self.info = self._open()
        except BaseException:
            self.close()  # a clip refused after opening (too long, too large) is released
            raise

    def __enter__(self) -> VideoReader:
        return self

    def sample(self, sampling: Sampling) -> list[int]:
        """The frame indices ``sampling`` picks from this clip (422 over the limits)."""
        return sample_indices(self.info, sampling, self.limits)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def _open(self) -> VideoInfo:
        if self.path.stat().st_size == 0:
            raise VideoError("empty body: no video bytes received")
        container, complete = inspect_file(self.path)
        if container is None:
            raise VideoError(f"not a video file: expected {CONTAINER_NAMES}")
        if not complete:
            raise VideoError(
                f"truncated {container.upper()} file: its structure runs past the end of the "
                "upload", code="truncated_video",
            )  # fmt: skip
        cv2 = import_cv2()
        self._capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise VideoError(
                f"the {container.upper()} file has no video stream this server can decode "
                "(unsupported codec)", 415, "unsupported_video_codec",
            )  # fmt: skip
        info = VideoInfo(
            container=container,
            codec=_fourcc(self._capture.get(cv2.CAP_PROP_FOURCC)),
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(self._capture.get(cv2.CAP_PROP_FPS)),
            frame_count=int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        )
        self._check(info)
        return info

    def _check(self, info: VideoInfo) -> None:
        limits = self.limits
        if not (info.fps > 0 and math.isfinite(info.fps)):
            raise VideoError("the video stream states no frame rate", code="bad_video")
        if info.frame_count < 1:
            raise VideoError("the video stream has no frames", code="no_decodable_frames")
        if info.width * info.height > limits.max_frame_pixels:
            raise VideoError(
                f"frames are {info.width}x{info.height} = {info.width * info.height} pixels, "
                f"over the limit of {limits.max_frame_pixels}", 413, "frame_too_large",
            )  # fmt: skip
        if info.duration_s > limits.max_duration_s:
            raise VideoError(
                f"the video is {info.duration_s:.1f} s long, over the limit of "
                f"{limits.max_duration_s:g} s", 413, "video_too_long",
            )  # fmt: skip

    def _grab_and_read(self, skip: int) -> tuple[int, np.ndarray | None]:
        """Skip ``skip`` frames, then decode one (BGR): (frames passed, frame). The frame is
        None where the stream ends (or the reader was closed meanwhile, from another thread)."""
        with self._lock:
            if self._capture is None:
                return 0, None
            for skipped in range(skip):
                if not self._capture.grab():
                    return skipped, None
            ok, bgr = self._capture.read()
        return (skip + 1, bgr) if ok and bgr is not None else (skip, None)

    def _decode(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, RGB frame)`` for each wanted index; stops early where the stream ends."""
        cv2 = import_cv2()
        position = 0
        for wanted in indices:
            passed, bgr = self._grab_and_read(wanted - position)
            position += passed
            if bgr is None:
                self.ended_at = position
                return
            if bgr.shape[0] * bgr.shape[1] > self.limits.max_frame_pixels:
                raise VideoError(
                    f"frame {wanted} is {bgr.shape[1]}x{bgr.shape[0]}, over the limit of "
                    f"{self.limits.max_frame_pixels} pixels", 413, "frame_too_large",
                )  # fmt: skip
            self.decoded += 1
            yield wanted, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def chunks(
        self, indices: list[int], config: PreprocessConfig, chunk_rows: int = 32
    ) -> Iterator[list[Frame]]:
        """The sampled frames, preprocessed, ``chunk_rows`` at a time. Raises
        :class:`VideoError` at the end when nothing decoded, or when the stream stopped
        decoding well before the frames the container declares (truncated or corrupt)."""
        chunk: list[Frame] = []
        for index, rgb in self._decode(indices):
            model_input, box = preprocess_rgb_and_box(rgb, config)
            chunk.append(Frame(index, index / self.info.fps, model_input, box, thumbnail(rgb)))
            if len(chunk) == chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        self._check_complete(indices)

    def _check_complete(self, indices: list[int]) -> None:
        if self.decoded == 0:
            raise VideoError(
                f"no frame of this {self.info.container.upper()} file could be decoded "
                f"(codec {self.info.codec or 'unknown'})", 400, "no_decodable_frames",
            )  # fmt: skip
        declared = self.info.frame_count
        if self.ended_at is not None and self.ended_at < declared * (1 - TAIL_TOLERANCE):
            raise VideoError(
                f"the video stops decoding after {self.ended_at} of its {declared} frames "
                "(truncated or corrupt file)", 400, "truncated_video",
            )  # fmt: skip


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ") if text.isprintable() else ""


def aggregate(calibrated: np.ndarray) -> tuple[float, int]:
    """The video's probability and ``k``: the mean of the ``k`` highest frame probabilities,
    ``k = ceil(TOP_FRACTION * frames)``, at least one."""
    values = np.sort(np.asarray(calibrated, dtype=np.float64).reshape(-1))
    k = max(1, math.ceil(TOP_FRACTION * len(values)))
    return float(values[-k:].mean()), k


def video_verdict(calibrated: np.ndarray, rule: DecisionRule) -> dict:
    """Label, probability, confidence and the aggregation rule, for calibrated frame scores
    (``rule``: the model's :class:`~core.decision.DecisionRule`)."""
    probability, k = aggregate(calibrated)
    label, confidence = decide(probability, rule)
    return {
        "label": label,
        "probability_fake": probability,
        "confidence": confidence,
        "decision": rule.as_json(),
        "aggregation": {
            "rule": "mean_top_k",
            "description": f"mean of the {k} highest of {len(calibrated)} frame probabilities "
            f"(top {TOP_FRACTION:.0%}, at least one)",
            "k": k,
            "frames": len(calibrated),
            "calibration": CALIBRATION_NOTE,
        },
    }


def no_face_verdict(rule: DecisionRule, frames: int) -> dict:
    """The verdict of a clip in none of whose sampled frames a face was found."""
    return {
        "label": NO_FACE,
        "probability_fake": None,
        "confidence": None,
        "decision": rule.as_json(),
        "message": f"No face found in any of the {frames} sampled frames: no verdict.",
        "aggregation": {"rule": "mean_top_k", "k": 0, "frames": 0, "sampled": frames},
    }


def judged(
    frames: list[Frame],
    calibrated: np.ndarray,
    rule: DecisionRule | float,
    face_search: bool = False,
) -> tuple[dict, list]:
    """The clip's verdict (:func:`video_verdict`) and its per-frame results. With
    ``face_search`` (a face-crop model) only frames with a face count and carry a
    probability; a clip with none is NO_FACE."""
    if not isinstance(rule, DecisionRule):
        rule = DecisionRule.from_threshold(float(rule))
    values = np.asarray(calibrated, dtype=np.float64).reshape(-1)
    if face_search:
        values = np.where([frame.box is not None for frame in frames], values, np.nan)
    faced = values[~np.isnan(values)]
    verdict = video_verdict(faced, rule) if faced.size else no_face_verdict(rule, len(frames))
    return verdict, frame_results(frames, values)


def frame_results(frames: list[Frame], calibrated: np.ndarray) -> list[dict]:
    """Per frame: index, time, calibrated probability and face box (None: whole frame)."""
    return [
        {
            "index": frame.index,
            "time_s": round(frame.time_s, 6),
            "probability_fake": None if np.isnan(probability) else float(probability),
            "face_box": None if frame.box is None else asdict(frame.box),
        }
        for frame, probability in zip(frames, calibrated, strict=True)
    ]
