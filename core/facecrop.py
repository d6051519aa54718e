"""Face crop with YuNet (OpenCV's ``FaceDetectorYN``): one function for the dataset build and
the server.

Models trained on face crops say so in their preprocessing contract (``face_crop: true``), and
the server then applies exactly this crop to every upload. Detection runs on a copy whose
longer side is at most :data:`DETECT_MAX_SIDE` pixels (fast and resolution-independent); the
box is squared about its centre (YuNet's boxes are about a third taller than wide), mapped
back, widened by :data:`FACE_MARGIN` and cut from the full-resolution image. Only the largest
face of at least :data:`MIN_FACE_FRACTION` of the shorter side is used.

YuNet replaced OpenCV's Haar cascade (two-pass search). One thread, on 400 original photos
and generated faces: 3.0 ms per image against 9.1 ms, a face in 400 against 354; on the
3,337 test crops: 2.7 ms against 8.7 ms, a face in 3,336 against 2,951; median IoU of the
two crops where both found one 0.95-0.96 (``reports/facecrop/face_search.json``). The
weights (``assets/face_detection_yunet.onnx``, 230 KB) and where they come from:
``assets/README.md``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACE_MARGIN = 0.25  # fraction of the (squared) box added on every side
DETECT_MAX_SIDE = 128  # detection image's longer side, in pixels (YuNet pads to 32s)
MIN_FACE_FRACTION = 0.25  # smallest face kept, as a fraction of the shorter side
SCORE_THRESHOLD = 0.6  # YuNet's face score; OpenCV's demo uses 0.9, 0.6 finds a few more
NMS_THRESHOLD = 0.3
TOP_K = 50
YUNET_PATH = Path(__file__).parent / "assets" / "face_detection_yunet.onnx"
DETECTOR_NAME = "YuNet (OpenCV FaceDetectorYN)"

DETECT_STRIDE = 32  # YuNet's largest stride: its input is padded to a multiple of this
PHOTO_DETECT_SIZES = ((128, 96), (96, 128), (128, 128))  # 4:3 to 16:9 either way, and square
_IDLE_DETECTORS: dict[tuple[int, int], queue.SimpleQueue] = {}  # not in use, by input size
_IMPORT_LOCK = threading.Lock()


def import_cv2():
    """OpenCV, imported on first use (0.3 s) under a lock: two threads importing it at once
    can see a half-initialised module (``module 'cv2' has no attribute 'data'``)."""
    with _IMPORT_LOCK:
        import cv2
    return cv2


def _load_detector(size: tuple[int, int]):
    """A new ``FaceDetectorYN`` for input ``size`` (width, height): one network, never shared
    by two threads at once and never given another size."""
    cv2 = import_cv2()
    if not YUNET_PATH.is_file():
        raise RuntimeError(f"face detector weights missing: {YUNET_PATH}")
    return cv2.FaceDetectorYN.create(
        str(YUNET_PATH), "", size, SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K
    )


def _idle_detectors(size: tuple[int, int]) -> queue.SimpleQueue:
    """The idle detectors for input ``size`` (width, height), an empty queue the first time."""
    idle = _IDLE_DETECTORS.get(size)
    if idle is None:  # setdefault: two threads asking at once get the same queue
        idle = _IDLE_DETECTORS.setdefault(size, queue.SimpleQueue())
    return idle


@contextlib.contextmanager
def _detector(size: tuple[int, int]) -> Iterator:
    """An idle detector for input ``size``, or a new one when all are in use, handed back
    afterwards: as many are loaded per size as threads ever search at once, whether a caller
    keeps its threads (the server's pools) or starts one per request (a threaded WSGI server).

    Sizes are multiples of :data:`DETECT_STRIDE` up to :data:`DETECT_MAX_SIDE` (at most 16).
    A detector is never resized: OpenCV 4.14's ``FaceDetectorYN``, resized from 128x128 to a
    thin input, now and then saw a face in a black image (CI: 2x300; here 0-4 % of such
    searches, varying by process)."""
    idle = _idle_detectors(size)
    try:
        detector = idle.get_nowait()
    except queue.Empty:
        detector = _load_detector(size)
    try:
        yield detector
    finally:
        idle.put(detector)


def _detection_image(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The BGR copy YuNet searches, padded with black below and to the right to a multiple of
    :data:`DETECT_STRIDE` (as YuNet pads its input itself), and its scale from source pixels."""
    cv2 = import_cv2()
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = np.ascontiguousarray(rgb)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    height, width = small.shape[:2]
    pad_bottom, pad_right = -height % DETECT_STRIDE, -width % DETECT_STRIDE
    small = cv2.copyMakeBorder(
        small, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    return cv2.cvtColor(small, cv2.COLOR_RGB2BGR), scale


def warm_detectors(count: int, sizes: tuple[tuple[int, int], ...] = PHOTO_DETECT_SIZES) -> None:
    """At least ``count`` idle detectors for each input ``size`` (width, height), each run
    once (3-5 ms to load and a 2 ms first run each; 14 and 10 ms for the first at all), so
    that the first photos of each shape searched at once do not pay for them."""
    for width, height in sizes:
        idle = _idle_detectors((width, height))
        for _ in range(count - idle.qsize()):
            detector = _load_detector((width, height))
            detector.detect(np.zeros((height, width, 3), np.uint8))
            idle.put(detector)


@dataclass(frozen=True)
class Face:
    """One detected face in source pixels: the squared box, YuNet's five landmarks and its
    score. Landmarks are ``(x, y)`` rows in YuNet's order: the subject's right eye, left eye,
    nose tip, right and left mouth corners (the right eye lies on the image's left)."""

    box: tuple[int, int, int, int]  # (x, y, side, side), squared about YuNet's box
    landmarks: np.ndarray  # float64 (5, 2)
    score: float

    def as_json(self, scale: float = 1.0) -> dict:
        """The face as plain numbers (answers and manifests), its pixels multiplied by
        ``scale`` (e.g. from a reduced decode back to the upload's own pixels)."""
        return {
            "box": [round(v * scale) for v in self.box],
            "landmarks": np.round(self.landmarks * scale, 1).tolist(),
            "score": round(float(self.score), 4),
        }


def detect_faces(rgb: np.ndarray, min_size: float | None = None) -> list[Face]:
    """Every face (box squared about YuNet's box, landmarks, score) in source pixels of a
    ``uint8`` RGB image, at least ``min_size`` pixels (default :data:`MIN_FACE_FRACTION` of
    the shorter side), largest first."""
    if min_size is None:
        min_size = MIN_FACE_FRACTION * min(rgb.shape[:2])
    small, scale = _detection_image(rgb)
    with _detector((small.shape[1], small.shape[0])) as detector:
        _, detections = detector.detect(small)
    faces = []
    for row in [] if detections is None else detections:
        x, y, w, h = row[:4]
        side = max(w, h) / scale
        if not np.isfinite(row[:14]).all() or side < min_size:  # a 1x1 image gives NaN
            continue
        centre_x, centre_y = (x + w / 2) / scale, (y + h / 2) / scale
        box = (round(centre_x - side / 2), round(centre_y - side / 2), round(side), round(side))
        landmarks = np.asarray(row[4:14], dtype=np.float64).reshape(5, 2) / scale
        faces.append(Face(box, landmarks, float(row[14])))
    return sorted(faces, key=lambda f: (-f.box[2], f.box[0], f.box[1]))


def find_faces(rgb: np.ndarray, min_size: float | None = None) -> list[tuple[int, int, int, int]]:
    """Every face box ``(x, y, side, side)`` of :func:`detect_faces`, largest first."""
    return [face.box for face in detect_faces(rgb, min_size)]


def largest_face(
    rgb: np.ndarray, min_fraction: float = MIN_FACE_FRACTION
) -> tuple[int, int, int, int] | None:
    """The largest face box ``(x, y, side, side)`` of at least ``min_fraction`` of the shorter
    side, or None."""
    faces = find_faces(rgb, min_fraction * min(rgb.shape[:2]))
    return faces[0] if faces else None


def face_region(
    rgb: np.ndarray, margin: float = FACE_MARGIN, min_fraction: float = MIN_FACE_FRACTION
) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of the largest face plus ``margin``, clipped to the
    image; None if no face."""
    face = largest_face(rgb, min_fraction)
    return None if face is None else region_around(face, rgb.shape[:2], margin)


def region_around(
    face: tuple[int, int, int, int], shape: tuple[int, ...], margin: float = FACE_MARGIN
) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of a face box ``(x, y, w, h)`` widened by ``margin`` on
    every side and clipped to an image of ``shape`` (height, width); None if nothing is left."""
    x, y, w, h = face
    pad_x, pad_y = int(w * margin), int(h * margin)
    height, width = shape[:2]
    top, bottom = max(0, y - pad_y), min(height, y + h + pad_y)
    left, right = max(0, x - pad_x), min(width, x + w + pad_x)
    if bottom <= top or right <= left:  # a box wholly outside the image (cannot be a face)
        return None
    return top, bottom, left, right
