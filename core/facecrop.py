"""Face crop with OpenCV's bundled Haar cascade: one function for the dataset build and the server.

Models trained on face crops say so in their preprocessing contract (``face_crop: true``), and
the server then applies exactly this crop to every upload. Detection runs on a grey copy whose
longer side is at most :data:`DETECT_MAX_SIDE` pixels (fast and resolution-independent); the
box is mapped back and the crop is taken from the full-resolution image.
"""

from __future__ import annotations

import threading

import numpy as np

FACE_MARGIN = 0.25  # fraction of the detected box added on every side
DETECT_MAX_SIDE = 400  # detection image's longer side, in pixels
MIN_FACE_FRACTION = 0.25  # smallest face searched for, as a fraction of the shorter side


_PER_THREAD = threading.local()
_IMPORT_LOCK = threading.Lock()


def import_cv2():
    """OpenCV, imported on first use (0.3 s) under a lock: two threads importing it at once
    can see a half-initialised module (``module 'cv2' has no attribute 'data'``)."""
    with _IMPORT_LOCK:
        import cv2
    return cv2


def _cascade():
    """This thread's cascade: ``CascadeClassifier.detectMultiScale`` is not thread-safe (shared
    across the server's preprocessing threads it fails assertions and can crash the process)."""
    cascade = getattr(_PER_THREAD, "cascade", None)
    if cascade is None:
        cv2 = import_cv2()
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"could not load OpenCV face cascade from {path}")
        _PER_THREAD.cascade = cascade
    return cascade


def find_faces(rgb: np.ndarray, min_size: int | None = None) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x, y, w, h)`` in source pixels of a ``uint8`` RGB image, largest first."""
    cv2 = import_cv2()
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    smallest = min_size if min_size is not None else MIN_FACE_FRACTION * min(height, width)
    smallest = max(20, int(smallest * scale))
    boxes = _cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    found = [tuple(int(round(v / scale)) for v in box) for box in boxes]
    return sorted(found, key=lambda b: (-b[2] * b[3], b[0], b[1]))


def face_region(rgb: np.ndarray, margin: float = FACE_MARGIN) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of the largest face plus ``margin``; None if no face."""
    faces = find_faces(rgb)
    if not faces:
        return None
    x, y, w, h = faces[0]
    pad_x, pad_y = int(w * margin), int(h * margin)
    height, width = rgb.shape[:2]
    return (
        max(0, y - pad_y),
        min(height, y + h + pad_y),
        max(0, x - pad_x),
        min(width, x + w + pad_x),
    )
