"""Stand-in face detectors for tests (``core.facecrop.detect_faces`` replacements)."""

from __future__ import annotations

import numpy as np

from core.facecrop import FACE_MARGIN, Face


def left_half_face(rgb: np.ndarray, min_size: float | None = None) -> list[Face]:
    """One face whose contract crop (box plus :data:`FACE_MARGIN`) is exactly the image's
    left half, full height."""
    height, width = rgb.shape[:2]
    side = next(s for s in range(1, width) if s + int(s * FACE_MARGIN) >= width // 2)
    landmarks = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    return [Face((0, 0, side, height), landmarks * [side, height], 0.9)]


def no_face(rgb: np.ndarray, min_size: float | None = None) -> list[Face]:
    """A detector that finds nothing."""
    return []
