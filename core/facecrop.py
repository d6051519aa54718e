"""Face crop with OpenCV's bundled Haar cascade: one function for the dataset build and the server.

Models trained on face crops say so in their preprocessing contract (``face_crop: true``), and
the server then applies exactly this crop to every upload. Detection runs on a grey copy whose
longer side is at most :data:`DETECT_MAX_SIDE` pixels (fast and resolution-independent); the
box is mapped back and the crop is taken from the full-resolution image.

Only the largest face is used, so the search starts with the large ones: a first search for
faces of at least :data:`FIRST_PASS_FRACTION` of the shorter side keeps its largest face when
that is at least :data:`ACCEPT_FRACTION` (far enough above the cut that the detections the
cascade merges into it lie inside the searched range); otherwise the full search down to
:data:`MIN_FACE_FRACTION` runs. Portrait photos end after the cheap first search. On the test
split this gives the full search's crop for 3,101 of 3,115 images (the other 14 overlap it
with IoU >= 0.93; no face is lost) in 0.72 of the time (``scripts/compare_face_search.py``).
"""

from __future__ import annotations

import threading

import numpy as np

FACE_MARGIN = 0.25  # fraction of the detected box added on every side
DETECT_MAX_SIDE = 400  # detection image's longer side, in pixels
MIN_FACE_FRACTION = 0.25  # smallest face searched for, as a fraction of the shorter side
FIRST_PASS_FRACTION = 0.35  # the first search's smallest face (same unit)
ACCEPT_FRACTION = 0.45  # the first search's largest face is kept when at least this large


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


def _detection_image(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The grey copy the cascade searches, and its scale from source pixels."""
    cv2 = import_cv2()
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey, scale


def _search(grey: np.ndarray, scale: float, smallest: float) -> list[tuple[int, int, int, int]]:
    """Faces of at least ``smallest`` source pixels, in source pixels, largest first."""
    smallest = max(20, int(smallest * scale))
    boxes = _cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    found = [tuple(int(round(v / scale)) for v in box) for box in boxes]
    return sorted(found, key=lambda b: (-b[2] * b[3], b[0], b[1]))


def find_faces(rgb: np.ndarray, min_size: int | None = None) -> list[tuple[int, int, int, int]]:
    """Every face box ``(x, y, w, h)`` in source pixels of a ``uint8`` RGB image, largest
    first (one full search down to ``min_size``, default :data:`MIN_FACE_FRACTION`)."""
    grey, scale = _detection_image(rgb)
    shorter = min(rgb.shape[:2])
    return _search(grey, scale, min_size if min_size is not None else MIN_FACE_FRACTION * shorter)


def largest_face(
    rgb: np.ndarray, exhaustive: bool = False, min_fraction: float = MIN_FACE_FRACTION
) -> tuple[int, int, int, int] | None:
    """The largest face box ``(x, y, w, h)`` of at least ``min_fraction`` of the shorter
    side, or None: large faces first, the full search only when that finds none (module
    docstring); ``exhaustive`` runs the full search alone."""
    grey, scale = _detection_image(rgb)
    shorter = min(rgb.shape[:2])
    if not exhaustive and min_fraction < FIRST_PASS_FRACTION:
        first = _search(grey, scale, FIRST_PASS_FRACTION * shorter)
        if first and first[0][2] >= ACCEPT_FRACTION * shorter:
            return first[0]
    faces = _search(grey, scale, min_fraction * shorter)
    return faces[0] if faces else None


def face_region(
    rgb: np.ndarray,
    margin: float = FACE_MARGIN,
    exhaustive: bool = False,
    min_fraction: float = MIN_FACE_FRACTION,
) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of the largest face plus ``margin``; None if no face
    (``exhaustive`` and ``min_fraction`` as for :func:`largest_face`)."""
    face = largest_face(rgb, exhaustive, min_fraction)
    if face is None:
        return None
    x, y, w, h = face
    pad_x, pad_y = int(w * margin), int(h * margin)
    height, width = rgb.shape[:2]
    return (
        max(0, y - pad_y),
        min(height, y + h + pad_y),
        max(0, x - pad_x),
        min(width, x + w + pad_x),
    )
