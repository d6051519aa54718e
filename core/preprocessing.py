"""The one image preprocessing path, shared by training, export parity checks and serving.

Contract (also written into every model's ``metadata.json`` via :func:`contract`):

* **Decode**: Pillow. Formats JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF (``pillow-heif``)
  and AVIF (Pillow's own); of an animated GIF, WebP or PNG, or a multi-page TIFF, the first
  frame only (:attr:`Preprocessed.frames` says how many there were).
  The pixel count is checked from the header *before* any pixel is decoded, so a
  decompression bomb costs a few bytes of parsing, not gigabytes of memory. Colour and grey
  JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` when it is installed, with the
  same DCT scale as Pillow's draft: the pixels are identical, the decode about a third faster.
* **Orientation**: the EXIF orientation tag is applied (the image is turned upright).
* **Colour**: 8-bit **sRGB**. An embedded ICC profile other than sRGB (Display P3 phone
  photos, Adobe RGB, CMYK press profiles) is converted to sRGB with LittleCMS (Pillow's
  ``ImageCms``), perceptual intent; an unreadable profile is ignored. Alpha is composited
  over white; palette, grey, CMYK and 16-bit images are converted to 8-bit RGB.
* **Face crop** (only for models whose contract says ``face_crop: true``): JPEGs are
  draft-decoded to no less than 4x the target size, then :func:`face_crop_and_box`
  takes the largest YuNet face of at least a quarter of the shorter side (portrait framing),
  squared about its centre, plus a 25% margin; the whole image if none is found
  (``core.facecrop``).
* **Face alignment** (only where the contract names a template, ``face_align``): the
  largest face's five YuNet landmarks are mapped by one similarity transform onto the
  template (``core.facealign``), cut at the face's own resolution; then resized as below.
* **Resize**: the whole image or crop (aspect ratio not kept) to ``size x size`` with
  Pillow's antialiased bilinear filter (``Image.Resampling.BILINEAR``). JPEGs far larger
  than the target are first reduced by the decoder's DCT scaling (``Image.draft``, by 1/2,
  1/4 or 1/8) to no less than the target size, which is fast (a 600x600 JPEG decodes in
  about two thirds of the time) and keeps the result deterministic.
* **Values**: ``float32`` in ``[0, 255]``, layout ``NHWC``. Normalisation (for example
  ``/255`` or ``/127.5 - 1``) lives *inside* the model graph, never here.

Only numpy and Pillow are imported here: this module must stay importable by the
server, which never imports TensorFlow.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from core.facealign import AlignTemplate
from core.facecrop import (
    DETECT_MAX_SIDE,
    DETECTOR_NAME,
    FACE_MARGIN,
    MIN_FACE_FRACTION,
    Face,
)
from core.options import check_at_least

try:  # libjpeg-turbo's decoder without Pillow's overhead; optional, same pixels
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - exercised where simplejpeg is not installed
    _simplejpeg = None

try:  # HEIC/HEIF (iPhone photos) as a Pillow format, "HEIF"
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - without pillow-heif a HEIC upload is a 415
    pass

INPUT_SIZE = 224
FACE_DRAFT_FACTOR = 4  # face-crop models decode JPEGs to >= 4x the input size, then crop
DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels: a 48 MP phone photo (8064 x 6048) fits
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "HEIF", "AVIF"})
FIRST_FRAME_NOTE = "an animated or multi-page image: only its first frame was judged"
PROFILE_MODES = ("RGB", "RGBA", "CMYK", "L")  # modes whose ICC profile is converted to sRGB
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
EXIF_ORIENTATION = 0x0112
ORIENTATION_TRANSPOSE = {  # as PIL.ImageOps.exif_transpose turns an image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(ValueError):
    """An upload that cannot be turned into a model input.

    ``status`` is the HTTP status the server answers with: 400 (not an image, corrupt or
    truncated), 413 (too many pixels) or 415 (an image format we do not accept); ``code`` is
    the snake_case error code the server and the bulk command report.
    """

    CODES = {400: "bad_image", 413: "image_too_large", 415: "unsupported_image_format"}

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    @property
    def code(self) -> str:
        return self.CODES.get(self.status, "bad_image")


@dataclass(frozen=True)
class FaceBox:
    """A face crop as fractions of the image's height (top, bottom) and width (left, right)."""

    top: float
    bottom: float
    left: float
    right: float

    def crop(self, rgb: np.ndarray) -> np.ndarray:
        """The same region of ``rgb`` at any resolution of the image (at least one pixel)."""
        height, width = rgb.shape[:2]
        top, left = round(self.top * height), round(self.left * width)
        bottom = max(round(self.bottom * height), top + 1)
        right = max(round(self.right * width), left + 1)
        return rgb[top:bottom, left:right]


@dataclass(frozen=True)
class PreprocessConfig:
    """How an encoded image becomes a model input."""

    size: int = INPUT_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    face_crop: bool = False
    face_align: str | None = None  # an alignment template's name (core.facealign); needs face_crop
    max_faces: int = 1  # faces judged per upload: a serving choice, not part of the contract

    def __post_init__(self) -> None:
        check_at_least(self, 1, "size", "max_pixels", "max_faces")
        if self.face_align is not None:
            if not self.face_crop:
                raise ValueError("face_align needs face_crop: an aligned face is a face crop")
            AlignTemplate.from_name(self.face_align)

    @property
    def align_template(self) -> AlignTemplate | None:
        return None if self.face_align is None else AlignTemplate.from_name(self.face_align)


def contract(config: PreprocessConfig | None = None) -> dict:
    """The preprocessing contract as a JSON-serialisable dict (stored in model metadata)."""
    config = config or PreprocessConfig()
    return {
        "module": "core.preprocessing",
        "decoder": "Pillow",
        "exif_orientation": "applied",
        "color_order": "RGB",
        "alpha": "composited over white",
        "resize": f"{_framing(config)} to {config.size}x{config.size}, aspect not kept",
        "interpolation": "Pillow BILINEAR (antialiased), JPEG draft reduction to >= target",
        "dtype": "float32",
        "value_range": [0.0, 255.0],
        "layout": "NHWC",
        "normalisation": "inside the model graph",
        "face_crop": config.face_crop,
        "face_align": config.face_align,
        "face_align_template": (
            None if config.align_template is None else config.align_template.as_json()
        ),
        "face_detector": (
            f"{DETECTOR_NAME} on a <= {DETECT_MAX_SIDE} px copy, largest face >= "
            f"{MIN_FACE_FRACTION:g} of the shorter side, squared, {FACE_MARGIN:g} margin"
            if config.face_crop
            else None
        ),
        "max_pixels": config.max_pixels,
    }


def _framing(config: PreprocessConfig) -> str:
    if config.face_align is not None:
        return f"face aligned to template {config.face_align} at its own resolution"
    return "face crop" if config.face_crop else "whole image"


def open_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    full_size: bool = False,
    draft_size: int = INPUT_SIZE,
) -> Image.Image:
    """Parse the header of ``data``, check format and pixel count, and fully decode it.

    Large JPEGs are reduced by DCT scaling while decoding (the contract's draft step) to no
    less than ``draft_size`` unless ``full_size`` asks for every pixel (explanation overlays
    at the upload's own size).

    Raises :class:`ImageError` for anything that is not a supported, sane image.
    """
    if not data:
        raise ImageError("empty body: no image bytes received")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fires from the header alone, above its MAX_IMAGE_PIXELS.
        raise ImageError(f"image has too many pixels: {exc}", status=413) from None
    except UnidentifiedImageError:
        raise ImageError("not a recognised image file") from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ImageError(f"could not parse image header: {exc}") from None
    if image.format not in SUPPORTED_FORMATS:
        raise ImageError(f"unsupported image format {image.format!r}", status=415)
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
            status=413,
        )
    profile = image.info.get("icc_profile")
    fast = _decode_jpeg_turbo(image, data, None if full_size else draft_size)
    if fast is not None:
        return to_srgb(fast, profile)
    try:
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1:
            image.seek(0)
        if image.format in ("JPEG", "MPO") and not full_size:
            image.draft("RGB", (draft_size, draft_size))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            if image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # else it would copy every pixel
                image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except Exception as exc:  # truncated, corrupt or otherwise undecodable data
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    image = to_srgb(image, profile)
    image.info["frames"] = frames
    return image


def to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """``image`` converted from its embedded ICC ``profile`` to sRGB (RGB, or RGBA with
    alpha); unchanged without a profile, with an sRGB one, in another mode, or when the
    profile cannot be read."""
    if not profile or image.mode not in PROFILE_MODES:
        return image
    transform = _srgb_transform(profile, image.mode)
    if transform is None:
        return image
    try:
        return ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image  # a profile that does not fit the pixels: as they are, not an error


@functools.lru_cache(maxsize=32)
def _srgb_transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from ``profile`` to sRGB for ``mode`` images, built once per profile (a
    phone's few profiles come back on every upload); None for an sRGB or unreadable one."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return None
        return ImageCms.buildTransform(source, SRGB, mode, "RGBA" if mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile: the pixels as they are, not an error


def draft_scale(size: tuple[int, int], draft_size: int) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's ``Image.draft`` picks for ``draft_size``."""
    fits = min(size[0] // draft_size, size[1] // draft_size)
    return next((factor for factor in (8, 4, 2) if fits >= factor), 1)


def _decode_jpeg_turbo(
    image: Image.Image, data: bytes, draft_size: int | None
) -> Image.Image | None:
    """``image`` decoded by ``simplejpeg`` at Pillow's draft scale and turned upright; None
    when that path does not apply (not installed, not a plain colour or grey JPEG)."""
    if image.format != "JPEG" or image.mode not in ("RGB", "L") or _simplejpeg is None:
        return None
    width, height = image.size
    scale = 1 if draft_size is None else draft_scale(image.size, draft_size)
    try:
        array = _simplejpeg.decode_jpeg(
            data,
            colorspace="RGB",
            min_height=-(-height // scale),
            min_width=-(-width // scale),
        )
    except ValueError:  # any libjpeg warning: Pillow decides (it conceals corrupt scan data
        return None  # the way libjpeg does, and refuses truncated files)
    upright = Image.fromarray(array, mode="RGB")
    method = ORIENTATION_TRANSPOSE.get(image.getexif().get(EXIF_ORIENTATION, 1))
    return upright if method is None else upright.transpose(method)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha over white, 16-bit scaled down)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / peak * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_rgb(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, full_size: bool = False
) -> np.ndarray:
    """Decode bytes to an upright ``uint8`` RGB array (large JPEGs draft-reduced unless
    ``full_size``; see :func:`open_image`)."""
    return np.asarray(to_rgb(open_image(data, max_pixels, full_size)), dtype=np.uint8)


def resize_rgb(rgb: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Resize a ``uint8`` HxWx3 RGB array to ``size x size`` (the contract's filter)."""
    if rgb.shape[:2] == (size, size):
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def preprocess_rgb(rgb: np.ndarray, config: PreprocessConfig | None = None) -> np.ndarray:
    """Model input (``float32`` size x size x 3, RGB, 0..255) from a decoded RGB array."""
    return preprocess_rgb_and_box(rgb, config)[0]


def preprocess_rgb_and_box(
    rgb: np.ndarray, config: PreprocessConfig | None = None
) -> tuple[np.ndarray, FaceBox | None]:
    """:func:`preprocess_rgb`, plus the face crop it took (None without a face crop or when no
    face was found); video frames go through here."""
    config = config or PreprocessConfig()
    box = None
    if config.face_crop:
        rgb, box = face_input(rgb, config)
    return resize_rgb(rgb, config.size).astype(np.float32), box


@dataclass(frozen=True)
class Framed:
    """What a face-crop model sees before its resize, and the face it came from."""

    rgb: np.ndarray  # the crop, the aligned face, or the whole image when no face was found
    box: FaceBox | None  # the face crop's region as fractions of the image (None: no face)
    face: Face | None  # the detected face (box, five landmarks, score) in the image's pixels
    native_side: float  # the crop's (or aligned square's) side in the image's pixels
    outside_fraction: float = 0.0  # aligned pixels that fell outside the image (filled)


def frame_face(
    rgb: np.ndarray, template: AlignTemplate | None = None, measure_outside: bool = False
) -> Framed:
    """The contract's face framing of ``rgb``: the largest YuNet face of at least
    :data:`~core.facecrop.MIN_FACE_FRACTION` of the shorter side, cut as the face crop (squared
    box plus the margin) or, with a ``template``, aligned to it; the whole image when no face
    is found. The dataset build and the server both frame faces here."""
    largest = frame_faces(rgb, template, 1, measure_outside)
    return largest[0] if largest else Framed(rgb, None, None, max(rgb.shape[:2]))


def frame_faces(
    rgb: np.ndarray,
    template: AlignTemplate | None = None,
    max_faces: int = 1,
    measure_outside: bool = False,
) -> list[Framed]:
    """Every face :func:`frame_face` would consider (at least
    :data:`~core.facecrop.MIN_FACE_FRACTION` of the shorter side), the ``max_faces`` largest,
    each framed as the contract frames one, in reading order (left to right, then top to
    bottom); empty when there is none."""
    from core.facecrop import detect_faces

    faces = detect_faces(rgb, MIN_FACE_FRACTION * min(rgb.shape[:2]))[:max_faces]
    framed = (_framed(rgb, face, template, measure_outside) for face in faces)
    return sorted((f for f in framed if f is not None), key=lambda f: f.face.box[:2])


def _framed(
    rgb: np.ndarray, face: Face, template: AlignTemplate | None, measure_outside: bool = False
) -> Framed | None:
    """One face cut as the face crop or aligned to ``template`` (None: no usable region)."""
    from core.facealign import align_face  # OpenCV is only needed when asked for
    from core.facecrop import region_around

    region = region_around(face.box, rgb.shape[:2])
    if region is None:
        return None
    top, bottom, left, right = region
    height, width = rgb.shape[:2]
    box = FaceBox(top / height, bottom / height, left / width, right / width)
    if template is None:
        crop = rgb[top:bottom, left:right]
        return Framed(crop, box, face, max(crop.shape[:2]))
    aligned = align_face(rgb, face.landmarks, template, measure_outside=measure_outside)
    return Framed(aligned.rgb, box, face, aligned.native_side, aligned.outside_fraction)


def face_input(rgb: np.ndarray, config: PreprocessConfig) -> tuple[np.ndarray, FaceBox | None]:
    """What a face-crop model sees before the resize (:func:`frame_face` by the contract)."""
    framed = frame_face(rgb, config.align_template)
    return framed.rgb, framed.box


def face_crop_and_box(rgb: np.ndarray) -> tuple[np.ndarray, FaceBox | None]:
    """The contract's face crop of ``rgb`` and where it lies in the image (the whole image
    and None when no face is found)."""
    framed = frame_face(rgb)
    return framed.rgb, framed.box


def preprocess_bytes(data: bytes, config: PreprocessConfig | None = None) -> np.ndarray:
    """Model input from encoded image bytes: decode, orient, RGB, (crop), resize, float32."""
    return preprocess_bytes_and_box(data, config)[0]


def preprocess_bytes_and_box(
    data: bytes, config: PreprocessConfig | None = None
) -> tuple[np.ndarray, FaceBox | None]:
    """:func:`preprocess_bytes`, plus the face crop as fractions of the upright image
    (``top, bottom, left, right``; None without a face crop or when no face was found), so a
    full-size copy of the upload can be cropped the same way without a second detection."""
    found = preprocess_upload(data, config)
    return found.model_input, found.box


@dataclass(frozen=True)
class Preprocessed:
    """One upload through the contract (:func:`preprocess_upload`)."""

    model_input: np.ndarray  # float32 size x size x 3
    box: FaceBox | None  # the face crop it came from, None for the whole image
    full_size: np.ndarray | None = None  # uint8 RGB, every pixel of the crop, when asked for
    face: Face | None = None  # the face found, in the decoded image's pixels
    face_searched: bool = False  # the contract asked for a face (face_crop)
    scale: float = 1.0  # upload pixels per decoded pixel (the JPEG draft's reduction)
    image_size: tuple[int, int] | None = None  # the upright upload's size, where a face was found
    frames: int = 1  # frames (or pages) in the file; only the first is judged
    faces: tuple[Face, ...] = ()  # with max_faces > 1: every face judged, in reading order
    face_rows: np.ndarray | None = None  # ... and their model inputs, one row per face

    def model_rows(self) -> np.ndarray:
        """What the model is run on: one row per face judged (``N x size x size x 3``)."""
        return self.model_input[None] if self.face_rows is None else self.face_rows

    def faces_json(self) -> list[dict]:
        """Each face judged (as :meth:`face_json`), in the order of :meth:`model_rows`."""
        if self.face_rows is None:
            single = self.face_json()
            return [] if single is None else [single]
        size = {"image_size": list(self.image_size)} if self.image_size else {}
        return [face.as_json(self.scale) | size for face in self.faces]

    @property
    def no_face(self) -> bool:
        """A face was searched for and none found: no verdict for this upload."""
        return self.face_searched and self.face is None

    def frames_json(self) -> dict | None:
        """For an animated image or a multi-page file, how many frames it has and which one
        was judged; None for a single image."""
        if self.frames <= 1:
            return None
        return {"count": self.frames, "judged": "first", "note": FIRST_FRAME_NOTE}

    def face_json(self) -> dict | None:
        """The face found in the upload's own pixels (box ``[x, y, width, height]``, five
        landmarks ``[x, y]``, detector score) and the upload's size; None without one."""
        if self.face is None or self.image_size is None:
            return None
        return self.face.as_json(self.scale) | {"image_size": list(self.image_size)}


def preprocess_upload(
    data: bytes, config: PreprocessConfig | None = None, full_size: bool = False
) -> Preprocessed:
    """The model input and face box of :func:`preprocess_bytes_and_box`; with ``full_size``
    also every pixel of the upright upload cut to that box, to draw an explanation over. That
    is the decoded image itself when the decoder did not reduce it (most uploads), and a
    second, full-size decode only when it did."""
    config = config or PreprocessConfig()
    draft = config.size * FACE_DRAFT_FACTOR if config.face_crop else config.size
    opened = open_image(data, config.max_pixels, draft_size=draft)
    frames = int(opened.info.get("frames", 1))
    image = to_rgb(opened)
    rgb = None  # the decoded pixels, once they are needed as an array
    face, faces, face_rows = None, (), None
    if not config.face_crop:
        resized = image
        if image.size != (config.size, config.size):
            resized = image.resize((config.size, config.size), Image.Resampling.BILINEAR)
        model_input, box = np.asarray(resized, dtype=np.float32), None
    else:  # the largest face is the upload's face; with max_faces > 1, every face is a row
        rgb = np.asarray(image, dtype=np.uint8)
        every = frame_faces(rgb, config.align_template, config.max_faces)
        if not every:  # no face: the whole image (the upload gets no verdict)
            crop, box = rgb, None
            model_input = resize_rgb(rgb, config.size).astype(np.float32)
        else:  # each face resized once; the largest one's row is the model input
            rows = np.stack([resize_rgb(f.rgb, config.size) for f in every]).astype(np.float32)
            largest = max(range(len(every)), key=lambda i: every[i].face.box[2])
            crop, box, face = every[largest].rgb, every[largest].box, every[largest].face
            model_input = rows[largest]
            if len(every) > 1:
                faces, face_rows = tuple(f.face for f in every), rows
    # The upload's own size (a second header parse, about 15-25 us) only where it is used:
    # to place a found face in the upload's pixels, or to know whether a full decode is owed.
    size = _upright_size(data, image.size) if face is not None or full_size else None
    scale = 1.0 if size is None else size[0] / image.width
    found = Preprocessed(
        model_input, box, None, face, config.face_crop, scale, size, frames, faces, face_rows
    )
    if not full_size:
        return found
    if config.face_align is not None and box is not None:
        return replace(found, full_size=crop)  # the aligned face at its own resolution
    if image.size != size:  # reduced by the decoder
        rgb = np.asarray(to_rgb(open_image(data, config.max_pixels, full_size=True)), np.uint8)
    elif rgb is None:
        rgb = np.asarray(image, dtype=np.uint8)
    return replace(found, full_size=rgb if box is None else box.crop(rgb))


def _upright_size(data: bytes, decoded: tuple[int, int]) -> tuple[int, int]:
    """The upload's full width and height, upright: the header's size, turned like the
    decoded image (an EXIF rotation swaps the two)."""
    width, height = Image.open(io.BytesIO(data)).size
    turned = (decoded[0] >= decoded[1]) != (width >= height) and decoded[0] != decoded[1]
    return (height, width) if turned else (width, height)


def preprocess_file(path: str, config: PreprocessConfig | None = None) -> np.ndarray:
    """Model input from an image file on disk (used by training and parity checks)."""
    with open(path, "rb") as handle:
        return preprocess_bytes(handle.read(), config)


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode a ``uint8`` RGB array as PNG bytes (overlays, tests)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode a ``uint8`` RGB array as JPEG bytes (augmentation, robustness tests)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(
        buffer, format="JPEG", quality=int(quality)
    )
    return buffer.getvalue()
