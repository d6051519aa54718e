"""Face alignment (core.facealign): landmarks land on the template, rotation does not change
the aligned face, and the preprocessing contract carries the template to the server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import expected_probability, serving_client, test_config
from PIL import Image

from core.facealign import AlignTemplate, align_face, map_points
from core.preprocessing import (
    PreprocessConfig,
    contract,
    encode_png,
    preprocess_bytes,
    preprocess_upload,
    resize_rgb,
)

TEMPLATE = AlignTemplate(zoom=1.1)


def rotation(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """A 2x3 similarity: rotate by ``angle_deg`` and scale about the origin, then shift."""
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def smooth_texture(seed: int, side: int) -> np.ndarray:
    """A smooth random colour field (interpolation changes it little)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((side, side), Image.Resampling.BICUBIC))


def dots_image(landmarks: np.ndarray, side: int) -> np.ndarray:
    """A black image with a 3x3 white dot at each landmark."""
    rgb = np.zeros((side, side, 3), np.uint8)
    for x, y in np.round(landmarks).astype(int):
        rgb[y - 1 : y + 2, x - 1 : x + 2] = 255
    return rgb


def dot_centres(rgb: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Brightness-weighted centre of the pixels near each expected position."""
    grey = rgb.astype(np.float64).mean(axis=2)
    centres = []
    for x, y in expected:
        x0, y0 = int(round(x)) - 6, int(round(y)) - 6
        window = grey[y0 : y0 + 13, x0 : x0 + 13]
        ys, xs = np.mgrid[y0 : y0 + 13, x0 : x0 + 13]
        centres.append([(xs * window).sum() / window.sum(), (ys * window).sum() / window.sum()])
    return np.asarray(centres)


def test_template_names_round_trip_and_unknown_names_are_refused():
    assert AlignTemplate.from_name(TEMPLATE.name) == TEMPLATE
    assert TEMPLATE.name == "arcface5/z1.10"
    for name in ("arcface5", "other/z0.80", "arcface5/zx", "arcface5/z3", "arcface5/m0.1"):
        with pytest.raises(ValueError):
            AlignTemplate.from_name(name)
    points = TEMPLATE.points
    assert points.shape == (5, 2) and (points > 0).all() and (points < 1).all()
    assert abs(points[0, 1] - points[1, 1]) < 0.01  # eyes level


def test_known_landmarks_land_on_the_template_within_one_pixel():
    side = 160
    placed = rotation(25, side, (300, 120))  # the template, turned, scaled and moved
    landmarks = map_points(placed, TEMPLATE.points)
    aligned = align_face(dots_image(landmarks, 600), landmarks, TEMPLATE)
    target = TEMPLATE.points * aligned.rgb.shape[0]
    assert abs(aligned.native_side - side) < 1e-6 and aligned.rgb.shape == (side, side, 3)
    assert np.abs(map_points(aligned.matrix, landmarks) - target).max() < 1e-6
    assert np.abs(dot_centres(aligned.rgb, target) - target).max() <= 1.0  # the pixels moved


def test_a_rotated_copy_gives_the_same_aligned_face():
    import cv2

    rgb = smooth_texture(0, 400)
    landmarks = map_points(rotation(0, 150, (120, 110)), TEMPLATE.points)
    turn = cv2.getRotationMatrix2D((200.0, 200.0), 30, 1.0)  # about the centre, keeps size
    turned = cv2.warpAffine(rgb, turn, (400, 400), flags=cv2.INTER_CUBIC)
    first = align_face(rgb, landmarks, TEMPLATE).rgb.astype(np.float64)
    second = align_face(turned, map_points(turn, landmarks), TEMPLATE).rgb.astype(np.float64)
    assert first.shape == second.shape
    assert np.abs(first - second)[4:-4, 4:-4].mean() < 2.0  # interpolation only


def test_a_large_face_is_cut_at_the_cap_and_the_outside_is_filled_and_measured():
    rgb = np.full((1200, 1200, 3), 200, np.uint8)
    big = map_points(rotation(0, 1100, (50, 50)), TEMPLATE.points)
    capped = align_face(rgb, big, TEMPLATE, max_side=300, measure_outside=True)
    assert capped.rgb.shape == (300, 300, 3) and capped.native_side == pytest.approx(1100)
    assert capped.outside_fraction == 0.0 and (capped.rgb == 200).all()
    near_edge = map_points(rotation(0, 200, (-100, -100)), TEMPLATE.points)  # half outside
    cut = align_face(rgb, near_edge, TEMPLATE, measure_outside=True)
    assert 0.6 < cut.outside_fraction < 0.8
    assert (cut.rgb[:90, :90] == 0).all()  # filled with the one fill colour


def test_real_face_is_aligned_so_the_detector_finds_its_landmarks_on_the_template():
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    from core.facecrop import detect_faces
    from core.preprocessing import frame_face

    rgb = data.astronaut()[20:260, 120:360]  # the face fills about half of the side
    framed = frame_face(rgb, TEMPLATE)
    aligned, box = framed.rgb, framed.box
    assert box is not None and aligned.shape[0] == aligned.shape[1]
    side = aligned.shape[0]
    canvas = np.zeros((2 * side, 2 * side, 3), np.uint8)  # room around it for the detector
    canvas[side // 2 : side // 2 + side, side // 2 : side // 2 + side] = aligned
    [face] = detect_faces(canvas, min_size=side / 3)
    found = face.landmarks - side // 2
    assert np.abs(found - TEMPLATE.points * side).max() < 0.06 * side


def test_contract_names_the_template_and_needs_the_face_crop():
    config = PreprocessConfig(size=64, face_crop=True, face_align=TEMPLATE.name)
    written = contract(config)
    assert written["face_align"] == "arcface5/z1.10"
    assert written["face_align_template"]["points"] == TEMPLATE.points.round(5).tolist()
    assert contract(PreprocessConfig())["face_align"] is None
    with pytest.raises(ValueError, match="face_crop"):
        PreprocessConfig(face_align=TEMPLATE.name)
    with pytest.raises(ValueError, match="template"):
        PreprocessConfig(face_crop=True, face_align="square/m0")


def fixed_face(landmarks: np.ndarray):
    """A stand-in detector that finds one face with ``landmarks`` in any image."""
    from core.facecrop import Face

    def detect(rgb, min_size=None):
        x0, y0 = landmarks.min(axis=0)
        side = int(landmarks.max(axis=0).max() - min(x0, y0)) + 20
        return [Face((int(x0) - 10, int(y0) - 10, side, side), landmarks, 0.9)]

    return detect


def test_upload_through_the_contract_is_aligned(monkeypatch):
    import core.facecrop

    rgb = smooth_texture(3, 300)
    landmarks = map_points(rotation(20, 120, (110, 60)), TEMPLATE.points)
    monkeypatch.setattr(core.facecrop, "detect_faces", fixed_face(landmarks))
    config = PreprocessConfig(size=48, face_crop=True, face_align=TEMPLATE.name)
    found = preprocess_upload(encode_png(rgb), config, full_size=True)
    aligned = align_face(rgb, landmarks, TEMPLATE).rgb
    np.testing.assert_array_equal(found.model_input, resize_rgb(aligned, 48).astype(np.float32))
    np.testing.assert_array_equal(found.full_size, aligned)  # overlays drawn on the aligned face
    plain = preprocess_bytes(encode_png(rgb), PreprocessConfig(size=48, face_crop=True))
    assert not np.array_equal(plain, found.model_input)


@pytest.mark.asyncio
async def test_a_model_with_face_align_is_served_aligned(tiny_repo, monkeypatch):
    import core.facecrop

    metadata_path = tiny_repo / "cnn/1/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["preprocessing"] |= contract(
        PreprocessConfig(size=32, face_crop=True, face_align=TEMPLATE.name)
    )
    metadata_path.write_text(json.dumps(metadata))
    rgb = np.full((200, 200, 3), 230, np.uint8)
    rgb[60:, :] = 20  # the aligned face (lower middle) is mostly dark, its crop box less so
    landmarks = map_points(rotation(0, 80, (60, 70)), TEMPLATE.points)
    monkeypatch.setattr(core.facecrop, "detect_faces", fixed_face(landmarks))
    image = {"file": ("a.png", encode_png(rgb))}
    async with serving_client(test_config(tiny_repo)) as (client, _):
        answer = (await client.post("/v1/predict", files=image)).json()
        models = (await client.get("/v1/models")).json()
    aligned = resize_rgb(align_face(rgb, landmarks, TEMPLATE).rgb, 32)
    assert answer["probability_fake"] == pytest.approx(expected_probability(aligned), abs=1e-6)
    assert "arcface5/z1.10" in json.dumps(models)


def test_zoom_sweep_measures_the_fill_a_template_would_need():
    from dataprep.zoom import outside_fraction

    template = AlignTemplate(0.7)
    inside = map_points(rotation(0, 100, (50, 50)), template.points)  # square at 50..150
    assert outside_fraction(inside, (200, 200), template) == 0.0
    assert outside_fraction(inside, (100, 200), template) == pytest.approx(0.5, abs=0.03)
    wider = AlignTemplate(1.0)  # the same face, a wider square: more of it outside
    assert outside_fraction(inside, (160, 160), wider) > outside_fraction(
        inside, (160, 160), template
    )
