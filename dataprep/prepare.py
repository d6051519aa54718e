"""One file in, one stored face crop out: decode, the contract's face crop or alignment,
resolution and matching, JPEG.

Every image of both classes goes through :func:`prepare` with the same face crop (or the
same alignment, ``core.facealign``) as the server, on the contract's draft decode. A real or
manipulated face may be given an effective resolution to be lowered to (the build draws it
for both classes alike). Generated faces are matched to a real partner: cut to the partner's
aspect (trimmed on one side, as a crop clipped at a border is), scaled to the partner's width
and height, softened to its sharpness, and stored at the partner's JPEG quality. Reals and
manipulated fakes are stored at a quality drawn from the real photos' own qualities.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.facealign import AlignTemplate
from core.preprocessing import (
    FACE_DRAFT_FACTOR,
    INPUT_SIZE,
    ImageError,
    encode_jpeg,
    frame_face,
    open_image,
    to_rgb,
)
from dataprep.imaging import (
    detail,
    estimate_jpeg_quality,
    is_greyscale,
    laplacian_variance,
    match_sharpness,
    resize_to,
    soften,
    trim_to_aspect,
)


@dataclass(frozen=True)
class PartnerTarget:
    """What a generated face's stored crop is matched to: its real partner's stored file."""

    size: tuple[int, int]  # (width, height)
    sharpness: float  # Laplacian variance at the model's input size
    trim_start: bool  # cut to the partner's aspect from the far side (else the near side)


@dataclass(frozen=True)
class Job:
    """What to do with one file."""

    data: bytes
    quality: int  # JPEG quality of the stored crop (a generated face takes its partner's)
    partner: PartnerTarget | None = None  # a generated face's matching targets
    align: str | None = None  # alignment template (core.facealign), None: the plain face crop
    effective_side: float | None = None  # lower the face's effective resolution to this (px)


@dataclass
class Prepared:
    """A stored crop and what was measured on the way."""

    jpeg: bytes
    sha256_original: str
    width: int  # original image, after EXIF orientation
    height: int
    bytes_original: int
    quality_original: int | None
    face_found: bool
    crop_side_source: int  # the face crop's (or aligned square's) side in the original's pixels
    stored_width: int
    stored_height: int
    effective_fraction: float  # 1.0 unless softened (to an effective side or a sharpness)
    effective_side: float  # stored side x effective fraction: the face's real resolution
    sharpness: float  # Laplacian variance of the stored crop at the model's input size
    detail: float  # mean |x - blur(x)| of the stored crop at the model's input size
    quality: int
    sha256: str
    greyscale: bool  # a black-and-white photo (the build drops them from every source)
    outside_fraction: float  # aligned pixels that fell outside the photo (filled)
    face: dict | None  # box, five landmarks, detector score in the original's pixels


def header(data: bytes) -> tuple[int | None, tuple[int, int]]:
    """JPEG quality estimate and size from the header alone."""
    with Image.open(io.BytesIO(data)) as image:
        return estimate_jpeg_quality(image), image.size


def prepare(job: Job) -> Prepared:
    """Crop, match and encode one image; raises :class:`ImageError` if it cannot be read."""
    image = open_image(job.data, draft_size=INPUT_SIZE * FACE_DRAFT_FACTOR)
    rgb = np.asarray(to_rgb(image), dtype=np.uint8)
    template = None if job.align is None else AlignTemplate.from_name(job.align)
    framed = frame_face(rgb, template, measure_outside=True)
    crop = framed.rgb
    fraction = 1.0
    if job.partner is not None:
        crop, fraction = match_partner(crop, job.partner)
    elif job.effective_side is not None and job.effective_side < max(crop.shape[:2]):
        fraction = job.effective_side / max(crop.shape[:2])
        crop = soften(crop, fraction)
    jpeg = encode_jpeg(crop, job.quality)
    stored = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    quality_original, _ = header(job.data)
    return Prepared(
        jpeg=jpeg,
        sha256_original=hashlib.sha256(job.data).hexdigest(),
        width=rgb.shape[1],
        height=rgb.shape[0],
        bytes_original=len(job.data),
        quality_original=quality_original,
        face_found=framed.face is not None,
        crop_side_source=int(round(framed.native_side)),
        stored_width=int(stored.shape[1]),
        stored_height=int(stored.shape[0]),
        effective_fraction=round(fraction, 4),
        effective_side=round(max(stored.shape[:2]) * fraction, 1),
        sharpness=laplacian_variance(stored),
        detail=round(detail(stored), 3),
        quality=job.quality,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        greyscale=is_greyscale(rgb),
        outside_fraction=round(framed.outside_fraction, 4),
        face=None if framed.face is None else framed.face.as_json(),
    )


def match_partner(crop: np.ndarray, target: PartnerTarget) -> tuple[np.ndarray, float]:
    """Aspect, size and sharpness of ``target``: the matched crop and its effective
    resolution fraction."""
    width, height = target.size
    crop = resize_to(trim_to_aspect(crop, width / height, target.trim_start), target.size)
    return match_sharpness(crop, target.sharpness)


def try_prepare(job: Job) -> Prepared | str:
    """:func:`prepare`, or the reason it failed (for a worker pool)."""
    try:
        return prepare(job)
    except ImageError as exc:
        return f"undecodable: {exc}"
