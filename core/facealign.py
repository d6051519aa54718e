"""One alignment for every face: a similarity transform from YuNet's five landmarks to a fixed
template, for the dataset build and the server alike.

A model whose preprocessing contract names a template (``face_align: "arcface5/z0.70"``) is
fed the aligned face: eyes level at fixed positions, a fixed face scale, so framing carries
no information about where a photo came from. The template is ArcFace's 112-pixel five-point
template (the standard for face recognition crops; OpenCV's ``FaceRecognizerSF.alignCrop``
uses it with YuNet's landmarks) in unit coordinates, zoomed (``AlignTemplate.zoom``). The
transform is fitted by least squares (Umeyama, scikit-image's ``SimilarityTransform``).

The aligned square is cut at the face's *own* resolution (its side is the template's side
in source pixels, at most :data:`MAX_ALIGNED_SIDE`), so a small face stays small and the
contract's one resize (Pillow's antialiased bilinear) takes it to the model's input size in
training and serving alike. Pixels that fall outside the photo are filled with
:data:`FILL` for every source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.facecrop import import_cv2

# ArcFace's template in a 112x112 crop: subject's right eye, left eye, nose tip, right and
# left mouth corners (insightface ``arcface_dst``), the order YuNet reports them in.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
TEMPLATE_VERSION = "arcface5"
CENTRE_DROP = 35.0  # ArcFace px the square's centre moves down per unit of zoom below 1
MAX_ALIGNED_SIDE = 896  # the contract's JPEG draft decodes to >= 4x 224 px
MIN_ALIGNED_SIDE = 16
FILL = (0, 0, 0)  # outside the photo, for every source (UTKFace's own rotation corners)


@dataclass(frozen=True)
class AlignTemplate:
    """Five landmark positions in the unit square the aligned face is cut to.

    ``zoom`` is the square's side relative to ArcFace's 112-pixel crop: 1.0 is that crop
    (forehead to chin, a little hair), below 1 a tighter, face-only square whose centre moves
    down towards the nose and mouth (by :data:`CENTRE_DROP` px per unit of zoom taken away)
    so that the mouth stays in; above 1 more hair and background."""

    zoom: float = 0.8

    def __post_init__(self) -> None:
        if not 0.5 <= self.zoom <= 2.0:
            raise ValueError(f"zoom must be in [0.5, 2], got {self.zoom}")

    @property
    def name(self) -> str:
        return f"{TEMPLATE_VERSION}/z{self.zoom:.2f}"

    @property
    def points(self) -> np.ndarray:
        """The five landmarks in unit coordinates (0..1 across the aligned square)."""
        side = 112.0 * self.zoom
        centre = np.array([56.0, 56.0 + CENTRE_DROP * max(0.0, 1.0 - self.zoom)])
        return (ARCFACE_112 - centre) / side + 0.5

    def as_json(self) -> dict:
        return {"name": self.name, "zoom": self.zoom, "points": self.points.round(5).tolist()}

    @classmethod
    def from_name(cls, name: str) -> AlignTemplate:
        """The template a contract names (``arcface5/z0.80``); ValueError if unknown."""
        version, _, zoom = name.partition("/z")
        if version != TEMPLATE_VERSION or not zoom:
            raise ValueError(f"unknown face alignment template {name!r}")
        try:
            return cls(float(zoom))
        except ValueError:
            raise ValueError(f"unknown face alignment template {name!r}") from None


@dataclass(frozen=True)
class Aligned:
    """An aligned face and how it was cut."""

    rgb: np.ndarray  # uint8 side x side x 3
    matrix: np.ndarray  # 2x3 affine map from source pixels to aligned pixels
    native_side: float  # the template's side in source pixels (before any cap)
    outside_fraction: float  # share of aligned pixels that fell outside the photo


def similarity(landmarks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 least-squares similarity (rotation, uniform scale, shift) from ``landmarks``
    to ``target`` (both 5x2)."""
    from skimage.transform import SimilarityTransform

    transform = SimilarityTransform.from_estimate(
        np.asarray(landmarks, dtype=np.float64), np.asarray(target, dtype=np.float64)
    )
    if not transform:
        raise ValueError("landmarks are degenerate: no similarity fits them")
    return transform.params


def align_face(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    template: AlignTemplate,
    max_side: int = MAX_ALIGNED_SIDE,
    measure_outside: bool = False,
) -> Aligned:
    """Warp ``rgb`` so that ``landmarks`` land on ``template``, at the face's own resolution
    (capped at ``max_side``; a larger face is area-reduced first, so nothing aliases)."""
    cv2 = import_cv2()
    unit = similarity(landmarks, template.points)
    scale = float(np.sqrt(abs(np.linalg.det(unit[:2, :2]))))  # unit squares per source pixel
    native = 1.0 / scale
    side = int(np.clip(round(native), MIN_ALIGNED_SIDE, max_side))
    source = np.ascontiguousarray(rgb)
    to_source = np.eye(3)
    reduce = side / native
    if reduce < 0.5:  # linear warping below half size would alias: reduce the photo first
        height, width = rgb.shape[:2]
        size = (max(1, round(width * reduce)), max(1, round(height * reduce)))
        source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        to_source = np.diag([size[0] / width, size[1] / height, 1.0])
    matrix = (np.diag([side, side, 1.0]) @ unit @ np.linalg.inv(to_source))[:2]
    aligned = cv2.warpAffine(
        source,
        matrix,
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=FILL,
    )
    outside = 0.0
    if measure_outside:
        inside = cv2.warpAffine(
            np.full(source.shape[:2], 255, np.uint8),
            matrix,
            (side, side),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        outside = float((inside == 0).mean())
    full_matrix = (np.diag([side, side, 1.0]) @ unit)[:2]
    return Aligned(aligned, full_matrix, native, outside)


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N x 2) through a 2x3 affine ``matrix``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
