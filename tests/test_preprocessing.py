"""The shared preprocessing contract: decode, orient, RGB, resize, reject bad input."""

import io

import numpy as np
import pytest
from PIL import Image

from core.preprocessing import (
    ImageError,
    PreprocessConfig,
    contract,
    decode_rgb,
    encode_jpeg,
    encode_png,
    preprocess_bytes,
)


def _image_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_png_round_trip_is_exact_rgb_float32():
    rgb = np.zeros((224, 224, 3), np.uint8)
    rgb[..., 0] = 200  # pure red: colour order must stay RGB
    out = preprocess_bytes(encode_png(rgb))
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    assert out[..., 0].min() == 200 and out[..., 1].max() == 0 and out[..., 2].max() == 0


def test_resize_any_size_to_input():
    rgb = np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8)
    out = preprocess_bytes(encode_jpeg(rgb), PreprocessConfig(size=32))
    assert out.shape == (32, 32, 3)
    assert out.min() >= 0.0 and out.max() <= 255.0


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb = decode_rgb(_image_bytes(image, "JPEG", exif=exif))
    assert rgb.shape == (40, 20, 3)


def test_alpha_grey_and_16bit_become_rgb():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent -> white
    assert decode_rgb(_image_bytes(rgba, "PNG"))[0, 0].tolist() == [255, 255, 255]
    grey = Image.new("L", (10, 10), 128)
    assert decode_rgb(_image_bytes(grey, "PNG"))[0, 0].tolist() == [128, 128, 128]
    deep = Image.fromarray(np.full((10, 10), 65535, np.uint16))
    assert decode_rgb(_image_bytes(deep, "PNG"))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    "data, status",
    [
        (b"", 400),
        (b"definitely not an image", 400),
        (encode_jpeg(np.zeros((64, 64, 3), np.uint8))[:200], 400),
    ],
)
def test_bad_bytes_raise_image_error(data, status):
    with pytest.raises(ImageError) as info:
        preprocess_bytes(data)
    assert info.value.status == status


def test_pixel_limit_checked_before_decode():
    big = _image_bytes(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageError) as info:
        preprocess_bytes(big, PreprocessConfig(max_pixels=1_000_000))
    assert info.value.status == 413


def test_contract_is_json_ready():
    described = contract()
    assert described["color_order"] == "RGB" and described["value_range"] == [0.0, 255.0]


def test_pixel_bomb_over_pillows_own_limit_is_413():
    # A 20000 x 20000 1-bit PNG is ~50 KB on disk but 400 M pixels: refused from the header.
    bomb = _image_bytes(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageError) as info:
        preprocess_bytes(bomb)
    assert info.value.status == 413


def test_face_crop_without_a_face_keeps_the_whole_image():
    from core.preprocessing import face_crop_and_box

    rgb = np.full((120, 100, 3), 127, np.uint8)
    crop, box = face_crop_and_box(rgb)
    assert crop.shape == rgb.shape and box is None  # no face found: the image comes back whole
    out = preprocess_bytes(encode_png(rgb), PreprocessConfig(size=32, face_crop=True))
    assert out.shape == (32, 32, 3)


@pytest.mark.parametrize("name", ["cnn\n", "../x", "a/b", "", "9cnn", "ｃｎｎ"])
def test_model_names_must_be_plain_identifiers(name):
    from core.modelrepo import InvalidModelName, check_name

    with pytest.raises(InvalidModelName):
        check_name(name)


@pytest.mark.parametrize("version", ["²", "0", "-1", "1.0", "1\n", "１"])
def test_model_versions_must_be_ascii_positive_integers(version):
    from core.modelrepo import InvalidModelName, check_version

    with pytest.raises(InvalidModelName):
        check_version(version)


def test_face_boxes_are_square_and_the_smallest_face_is_kept_out():
    """YuNet's box (taller than wide) is squared about its centre; faces below the smallest
    size asked for are dropped, and the image's scale does not move the box."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    from core import facecrop

    rgb = data.astronaut()[60:220, 160:320]  # the face fills about two thirds of the side
    [(x, y, width, height)] = facecrop.find_faces(rgb, min_size=1)
    assert width == height and 80 <= width <= 160 and min(x, y) >= 0
    assert facecrop.find_faces(rgb, min_size=width + 2) == []
    assert facecrop.largest_face(rgb) == (x, y, width, height)
    doubled = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)
    (x2, y2, width2, _) = facecrop.largest_face(doubled)
    assert abs(x2 / 2 - x) <= 4 and abs(y2 / 2 - y) <= 4 and abs(width2 / 2 - width) <= 4


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (2, 300, 3), (300, 1, 3), (10, 300, 3), (3000, 3, 3), (128, 1, 3)]
)
def test_face_search_on_degenerate_images_finds_nothing(shape):
    """YuNet gives NaN boxes for a 1x1 image; such boxes are dropped, not cut. Searches of
    other sizes in between leave nothing behind (see the test below)."""
    from core import facecrop

    rng = np.random.default_rng(0)
    for _ in range(50):
        facecrop.find_faces(rng.integers(0, 256, (600, 600, 3), np.uint8))
        assert facecrop.face_region(np.zeros(shape, np.uint8)) is None


def test_a_face_detector_keeps_the_input_size_it_was_made_for(monkeypatch):
    """OpenCV 4.14's ``FaceDetectorYN``, resized from 128x128 to a thin input, now and then
    saw a face in a black image (CI: 2x300; here 0-4 % of such searches, varying by
    process): each size has its own detectors, and no detector is resized."""
    from core import facecrop

    class Recording:
        def __init__(self, size):
            self.detector, self.shapes = load(size), set()

        def detect(self, image):
            self.shapes.add(image.shape[:2])
            return self.detector.detect(image)

        def setInputSize(self, size):  # noqa: N802 (OpenCV's name)
            raise AssertionError("a detector was resized")

    load, made = facecrop._load_detector, []
    monkeypatch.setattr(facecrop, "_IDLE_DETECTORS", {})
    monkeypatch.setattr(
        facecrop, "_load_detector", lambda size: made.append(Recording(size)) or made[-1]
    )
    for height, width in [(600, 600), (2, 300), (300, 1), (480, 640), (600, 600), (2, 300)]:
        facecrop.find_faces(np.zeros((height, width, 3), np.uint8))
    assert sorted(d.shapes.pop() for d in made) == [(32, 128), (96, 128), (128, 32), (128, 128)]
    assert all(not d.shapes for d in made)


def test_warm_sample_is_a_face_the_face_search_finds():
    """Keep-warm runs the face crop as a real face does (found, cut, resized): the drawn
    face is found, at upload size."""
    from core.facecrop import find_faces
    from serving.state import WARM_SAMPLE_SIDE, warm_sample

    rgb = np.asarray(Image.open(io.BytesIO(warm_sample())).convert("RGB"))
    assert rgb.shape == (WARM_SAMPLE_SIDE, WARM_SAMPLE_SIDE, 3)
    [(x, y, width, height)] = find_faces(rgb)
    assert width > WARM_SAMPLE_SIDE / 2 and abs(x + width / 2 - WARM_SAMPLE_SIDE / 2) < 20


def test_face_detector_without_its_weights_says_which_file(monkeypatch, tmp_path):
    from core import facecrop

    monkeypatch.setattr(facecrop, "YUNET_PATH", tmp_path / "missing.onnx")
    monkeypatch.setattr(facecrop, "_IDLE_DETECTORS", {})
    with pytest.raises(RuntimeError, match="missing.onnx"):
        facecrop.face_region(np.zeros((64, 64, 3), np.uint8))


def test_face_crop_is_thread_safe():
    """The server crops in a thread pool: no detector is used by two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    from PIL import Image

    from core.facecrop import face_region

    base = Image.fromarray(data.astronaut())
    images = [np.asarray(base.resize((side, side))) for side in range(160, 480, 20)] * 4
    expected = [face_region(rgb) for rgb in images]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(face_region, images)) == expected


def test_a_thread_per_call_reuses_the_loaded_detectors(monkeypatch):
    """A threaded WSGI server starts a thread per request: each search takes an idle
    detector instead of loading its own (7-10 ms, and a slow first run)."""
    import threading

    from core import facecrop

    idle = {}
    monkeypatch.setattr(facecrop, "_IDLE_DETECTORS", idle)
    loads = []
    load = facecrop._load_detector
    monkeypatch.setattr(facecrop, "_load_detector", lambda size: loads.append(size) or load(size))
    rgb = np.full((96, 96, 3), 127, np.uint8)
    for _ in range(5):
        thread = threading.Thread(target=facecrop.face_region, args=(rgb,))
        thread.start()
        thread.join()
    assert loads == [(96, 96)] and idle[(96, 96)].qsize() == 1


def _oriented_jpeg(rgb: np.ndarray, orientation: int, **save) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _image_bytes(Image.fromarray(rgb), "JPEG", exif=exif.tobytes(), **save)


@pytest.mark.parametrize("size", [(40, 30), (500, 300), (1000, 1700), (2000, 2000)])
@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_libjpeg_turbo_path_gives_pillows_pixels(monkeypatch, size, orientation):
    """simplejpeg at Pillow's draft scale, turned upright: bit-identical to Pillow's decode."""
    pytest.importorskip("simplejpeg", reason="simplejpeg is part of the serve install")
    import core.preprocessing as preprocessing

    rng = np.random.default_rng(orientation)
    rgb = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    payloads = [
        _oriented_jpeg(rgb, orientation, quality=90),
        _oriented_jpeg(rgb, orientation, quality=75, progressive=True),
        _image_bytes(Image.fromarray(rgb).convert("L"), "JPEG", quality=85),
    ]
    for payload in payloads:
        for config in (PreprocessConfig(size=224), PreprocessConfig(size=224, face_crop=True)):
            fast = preprocess_bytes(payload, config)
            full = decode_rgb(payload, full_size=True)
            with monkeypatch.context() as patch:
                patch.setattr(preprocessing, "_simplejpeg", None)
                assert np.array_equal(preprocess_bytes(payload, config), fast)
                assert np.array_equal(decode_rgb(payload, full_size=True), full)


def test_libjpeg_turbo_path_reports_truncated_files():
    payload = encode_jpeg(np.random.default_rng(0).integers(0, 256, (300, 200, 3), np.uint8))
    with pytest.raises(ImageError, match="corrupt or truncated") as caught:
        decode_rgb(payload[: len(payload) // 2])
    assert caught.value.status == 400


@pytest.mark.parametrize("side", [300, 2000])  # kept by the decoder, then reduced by it
def test_upload_keeps_every_pixel_of_its_face_crop_for_the_overlay(side):
    """``preprocess_upload(full_size=True)``: the model input and box of the plain path, and
    the full-size image cut to that box, whether or not the JPEG decoder reduced it."""
    from core.preprocessing import preprocess_bytes_and_box, preprocess_upload
    from serving.state import warm_sample

    face = np.asarray(Image.open(io.BytesIO(warm_sample(side // 2))).convert("RGB"))
    canvas = np.full((side, side, 3), 90, np.uint8)
    canvas[side // 4 : side // 4 + side // 2, side // 4 : side // 4 + side // 2] = face
    data = encode_jpeg(canvas, quality=95)
    for config in (PreprocessConfig(size=224), PreprocessConfig(size=224, face_crop=True)):
        model_input, box = preprocess_bytes_and_box(data, config)
        found = preprocess_upload(data, config, full_size=True)
        assert np.array_equal(found.model_input, model_input) and found.box == box
        assert preprocess_upload(data, config).full_size is None
        full = decode_rgb(data, full_size=True)
        assert np.array_equal(found.full_size, full if box is None else box.crop(full))
        if config.face_crop:
            assert box is not None and found.full_size.shape[0] > side // 3
    if side > 2 * 224 * 4:  # the draft decode really was reduced
        assert decode_rgb(data, max_pixels=10**8).shape[0] < side


def test_face_detector_weights_are_the_documented_file():
    """core/assets/README.md names the YuNet file by its sha256: a swapped file changes every
    face crop, so it must change the documentation too."""
    import hashlib

    from core import facecrop

    digest = hashlib.sha256(facecrop.YUNET_PATH.read_bytes()).hexdigest()
    assert digest in (facecrop.YUNET_PATH.parent / "README.md").read_text()


@pytest.mark.parametrize(
    ("probability", "threshold", "label", "confidence"),
    [
        (0.346, 0.333, "UNCERTAIN", 0.654),  # over the fitted threshold, below 0.5: not FAKE
        (0.2, 0.333, "REAL", 0.8),
        (0.5, 0.333, "FAKE", 0.5),
        (0.6, 0.7, "UNCERTAIN", 0.6),  # a threshold above 0.5: REAL below 0.5 only
        (0.49, 0.5, "REAL", 0.51),
        (0.5, 0.5, "FAKE", 0.5),
    ],
)
def test_a_verdict_never_contradicts_its_probability(probability, threshold, label, confidence):
    from core.decision import decide

    got, how_sure = decide(probability, threshold)
    assert (got, how_sure) == (label, pytest.approx(confidence))


def test_decision_rule_from_metadata_keeps_fake_at_or_above_one_half_unless_told_why():
    from core.decision import DecisionRule, decide

    fitted = {"threshold": 0.4, "decision": {"real_below": 0.1, "fake_from": 0.3}}
    rule = DecisionRule.from_metadata(fitted)
    assert (rule.real_below, rule.fake_from) == (0.1, 0.5)  # moved up to 0.5
    assert decide(0.05, rule)[0] == "REAL" and decide(0.3, rule)[0] == "UNCERTAIN"
    fitted["decision"]["reason"] = "validation reals sit below 0.3 in 99.9 % of cases"
    told = DecisionRule.from_metadata(fitted)
    assert told.fake_from == 0.3 and decide(0.3, told) == ("FAKE", 0.3)
    assert DecisionRule.from_metadata({"threshold": 0.7}) == DecisionRule(0.5, 0.7)
    with pytest.raises(ValueError, match="contradict"):
        DecisionRule(0.6, 0.7)
    with pytest.raises(ValueError, match="real_below"):
        DecisionRule(0.4, 0.3)
