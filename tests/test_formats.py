"""Phone and web formats through the one decode path: HEIC, AVIF, colour profiles, animation."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import serving_client, test_config
from helpers.formats import avif, claiming_size, encoded, heic, swapped_primaries_profile
from PIL import Image, ImageCms

from core.preprocessing import (
    FIRST_FRAME_NOTE,
    ImageError,
    PreprocessConfig,
    decode_rgb,
    preprocess_bytes,
    preprocess_upload,
)

ENCODERS = {"heic": heic, "avif": avif}


def smooth_rgb(height: int = 96, width: int = 128) -> np.ndarray:
    """A gradient: lossy encoders keep it within a grey level or two (noise they would not)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ENCODERS)
def test_phone_formats_round_trip(fmt):
    rgb = smooth_rgb()
    decoded = decode_rgb(ENCODERS[fmt](rgb))
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - rgb).mean() < 2.0


@pytest.mark.parametrize("fmt", ENCODERS)
def test_phone_formats_are_turned_upright(fmt):
    rgb = smooth_rgb()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view", as a phone held upright writes it
    decoded = decode_rgb(ENCODERS[fmt](rgb, exif=exif.tobytes()))
    upright = np.asarray(Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_270))
    assert decoded.shape == upright.shape == (128, 96, 3)
    assert np.abs(decoded.astype(int) - upright).mean() < 2.0


@pytest.mark.parametrize(("fmt", "status"), [("heic", 400), ("avif", 413)])
def test_phone_format_limits_hold_before_decoding(fmt, status):
    """AVIF's header says 56 MP: refused unread (413). libheif sizes a HEIC from its coded
    stream, so a header that disagrees with it is refused as corrupt (400)."""
    data = ENCODERS[fmt](smooth_rgb(40, 48))
    with pytest.raises(ImageError) as lying:
        decode_rgb(claiming_size(data, 7500, 7500))
    assert lying.value.status == status
    with pytest.raises(ImageError) as truncated:
        decode_rgb(data[: len(data) // 2])
    assert truncated.value.status == 400


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP"])
def test_an_embedded_colour_profile_is_converted_to_srgb(fmt):
    """Red in a profile whose red primary is sRGB's blue is blue once colour-managed."""
    red = Image.new("RGB", (48, 40), (200, 30, 30))
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    data = encoded(red, fmt, icc_profile=swapped_primaries_profile(), **options)
    r, g, b = decode_rgb(data).reshape(-1, 3).mean(axis=0)
    assert b > 150 and r < 60 and g < 60


def test_srgb_and_broken_profiles_leave_the_pixels_alone():
    rgb = smooth_rgb(40, 48)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for profile in (srgb, b"not an ICC profile at all", swapped_primaries_profile()[:90]):
        data = encoded(Image.fromarray(rgb), "PNG", icc_profile=profile)
        np.testing.assert_array_equal(decode_rgb(data), rgb)


def test_a_cmyk_jpeg_with_a_profile_is_converted():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red ink
    decoded = decode_rgb(encoded(cmyk, "JPEG", quality=95))
    r, g, b = decoded.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def animation(fmt: str) -> tuple[bytes, Image.Image]:
    frames = [Image.new("RGB", (40, 32), (v, v, v)) for v in (40, 200, 120)]
    options = {"lossless": True} if fmt == "WEBP" else {}
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
    return data, frames[0]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_are_judged_on_their_first_frame_and_say_so(fmt):
    data, first = animation(fmt)
    upload = preprocess_upload(data, PreprocessConfig(size=32))
    np.testing.assert_allclose(
        upload.model_input, preprocess_bytes(encoded(first, "PNG"), PreprocessConfig(size=32))
    )
    assert upload.frames == 3
    assert upload.frames_json() == {"count": 3, "judged": "first", "note": FIRST_FRAME_NOTE}
    single = preprocess_upload(encoded(first, "PNG"), PreprocessConfig(size=32))
    assert single.frames == 1 and single.frames_json() is None


@pytest.mark.asyncio
async def test_the_server_judges_heic_and_avif_and_names_an_animation(tiny_repo):
    rgb = smooth_rgb()
    async with serving_client(test_config(tiny_repo)) as (client, _):
        for name, data in (("photo.heic", heic(rgb)), ("photo.avif", avif(rgb))):
            answer = await client.post("/v1/predict", files={"file": (name, data)})
            assert answer.status_code == 200, answer.text
            assert answer.json()["label"] in ("REAL", "UNCERTAIN", "FAKE")
            assert "frames" not in answer.json()
        gif, _ = animation("GIF")
        answer = await client.post("/v1/predict", files={"file": ("clip.gif", gif)})
        assert answer.json()["frames"]["count"] == 3
        assert answer.json()["frames"]["judged"] == "first"


def test_bulk_scores_phone_formats_found_in_a_folder(tiny_repo, tmp_path):
    import csv

    from bulk.__main__ import main

    folder = tmp_path / "camera-roll"
    folder.mkdir()
    (folder / "a.heic").write_bytes(heic(smooth_rgb()))
    (folder / "b.avif").write_bytes(avif(smooth_rgb()))
    out = tmp_path / "scores.csv"
    assert main([str(folder), "--models", str(tiny_repo), "--out", str(out)]) == 0
    with out.open(newline="") as handle:
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"a.heic", "b.avif"}
    assert all(row["label"] in ("REAL", "UNCERTAIN", "FAKE") for row in rows.values())
    assert not any(row["error_code"] for row in rows.values())
