"""Optional face crop with OpenCV's bundled Haar cascade (off by default).

Training sets of pre-cropped faces do not need it; whole photos sent to the server may.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load OpenCV face cascade from {path}")
    return cascade


def find_faces(rgb: np.ndarray, min_size: int = 40) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x, y, w, h)`` in a ``uint8`` RGB image, largest first."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    boxes = _cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size)
    )
    return sorted((tuple(int(v) for v in box) for box in boxes), key=lambda b: -b[2] * b[3])


def crop_face(rgb: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """The largest face with ``margin`` (fraction of the box) around it; the image if none."""
    faces = find_faces(rgb)
    if not faces:
        return rgb
    x, y, w, h = faces[0]
    pad_x, pad_y = int(w * margin), int(h * margin)
    height, width = rgb.shape[:2]
    top, bottom = max(0, y - pad_y), min(height, y + h + pad_y)
    left, right = max(0, x - pad_x), min(width, x + w + pad_x)
    return rgb[top:bottom, left:right]
