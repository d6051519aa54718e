"""The data stage: GAN face generator (with a stand-in synthesiser), build, matching, probes."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataprep.build import BuildConfig, build
from dataprep.imaging import (
    estimate_jpeg_quality,
    laplacian_variance,
    match_sharpness,
    resize_to,
    trim_to_aspect,
)
from dataprep.stats import load_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_gan_faces as gen  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def textured(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A sharp random-texture RGB image of ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 4 + 1, size[0] // 4 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.NEAREST)
    return np.asarray(image)


def stand_in(z: np.ndarray, psi: float) -> np.ndarray:
    """A deterministic 'generator': texture from the latent, 96x96."""
    seed = int(abs(z[0, 0]) * 1e6) + int(psi * 10)
    return textured(seed, (96, 96))


def write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=quality)


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    """Tiny real-photo sources and a generated-face folder."""
    reals = tmp_path / "real-faces"
    for index, source in enumerate(("scut-fbp5500", "all-age-faces", "celeba")):
        for n in range(8):
            size = (60 + 10 * index + n, 70 + 10 * index)
            write_jpeg(reals / source / f"{n:03d}.jpg", textured(100 * index + n, size), 80)
    gan = tmp_path / "gan"
    gen.generate(gen.GenerateConfig(out=gan, count=10, psi=(0.7, 1.0)), stand_in)
    return reals, gan


def test_generator_is_seeded_resumable_and_recorded(tmp_path: Path):
    config = gen.GenerateConfig(out=tmp_path / "g", count=4, psi=(0.7, 1.0), quality=90)
    assert gen.generate(config, stand_in) == 4
    more = gen.GenerateConfig(out=tmp_path / "g", count=6, psi=(0.7, 1.0), quality=90)
    assert gen.generate(more, stand_in) == 2  # resumed: only the missing faces
    rows = [json.loads(line) for line in (tmp_path / "g/manifest.jsonl").read_text().splitlines()]
    assert [row["index"] for row in rows] == list(range(6))
    assert [row["psi"] for row in rows] == [0.7, 1.0] * 3
    for row in rows:
        data = (tmp_path / "g" / row["file"]).read_bytes()
        assert row["sha256"] == __import__("hashlib").sha256(data).hexdigest()
        assert estimate_jpeg_quality(Image.open(io.BytesIO(data))) == 90
    np.testing.assert_array_equal(gen.latent(0, 3), gen.latent(0, 3))
    assert not np.array_equal(gen.latent(0, 3), gen.latent(0, 4))


def test_generator_config_is_checked():
    with pytest.raises(ValueError, match="count"):
        gen.GenerateConfig(count=0)
    with pytest.raises(ValueError, match="psi"):
        gen.GenerateConfig(psi=())


@pytest.mark.skipif(
    importlib.util.find_spec("random_face") is None or importlib.util.find_spec("openvino") is None,
    reason="random-face + openvino not installed (make data-deps)",
)
def test_openvino_generator_makes_a_face(tmp_path: Path):
    generator = gen.OpenVinoGenerator(gen.package_model_dir(), seed=0)
    face = generator(gen.latent(0, 0), 0.7)
    assert face.shape == (1024, 1024, 3) and face.dtype == np.uint8
    assert face.std() > 20  # an image, not a flat field
    np.testing.assert_array_equal(face, generator(gen.latent(0, 0), 0.7))


def test_match_sharpness_softens_to_target():
    sharp = textured(1, (200, 200))
    target = laplacian_variance(sharp) / 4
    softened, fraction = match_sharpness(sharp, target)
    assert fraction < 1.0
    assert abs(laplacian_variance(softened) - target) / target < 0.25
    same, unchanged = match_sharpness(softened, laplacian_variance(sharp) * 2)
    assert unchanged == 1.0 and same is softened


def test_trim_to_aspect_cuts_one_side_only():
    rgb = np.arange(100 * 100 * 3, dtype=np.uint32).reshape(100, 100, 3).astype(np.uint8)
    assert np.array_equal(trim_to_aspect(rgb, 0.8, keep_start=True), rgb[:, :80])
    assert np.array_equal(trim_to_aspect(rgb, 0.8, keep_start=False), rgb[:, 20:])
    assert np.array_equal(trim_to_aspect(rgb, 1.25, keep_start=False), rgb[20:])
    assert resize_to(trim_to_aspect(rgb, 0.8, True), (40, 50)).shape == (50, 40, 3)


def test_build_is_grouped_matched_and_deterministic(sources, tmp_path: Path):
    reals, gan = sources
    config = BuildConfig(
        out=tmp_path / "ds", real_faces=reals, gan=gan, snapshot=None, workers=1, seed=3
    )
    summary = build(config)
    assert summary["by_class"] == {"real": 24, "fake": 10}
    assert summary["groups_crossing_splits"] == 0
    manifest = json.loads((tmp_path / "ds/manifest.json").read_text())
    rows = manifest["files"]
    by_origin = {row["origin"]: row for row in rows}
    for row in rows:
        stored = Image.open(tmp_path / "ds" / row["file"])
        assert stored.size == (row["stored_width"], row["stored_height"])
        assert 60 <= row["quality"] <= 98
        assert row["file"].startswith(f"{row['split']}/{row['class']}/")
        if row["kind"] == "gan":  # stored like its real partner: same size and quality
            partner = by_origin[row["partner"]]
            assert stored.size == (partner["stored_width"], partner["stored_height"])
            assert row["quality"] == partner["quality"]
    again = build(BuildConfig(**{**config.__dict__, "out": tmp_path / "ds2"}))
    assert again == summary
    rows2 = json.loads((tmp_path / "ds2/manifest.json").read_text())["files"]
    assert [r["sha256"] for r in rows2] == [r["sha256"] for r in rows]


def test_build_refuses_to_overwrite(sources, tmp_path: Path):
    reals, gan = sources
    config = BuildConfig(out=tmp_path / "ds", real_faces=reals, gan=gan, snapshot=None, workers=1)
    build(config)
    with pytest.raises(SystemExit, match="overwrite"):
        build(config)


def test_stats_probes_and_card_from_the_command_line(sources, tmp_path: Path, capsys):
    from dataprep.__main__ import main

    reals, gan = sources
    out, reports = tmp_path / "ds", tmp_path / "report"
    main(["build", "--out", str(out), "--real-faces", str(reals), "--gan", str(gan),
          "--snapshot", "none", "--workers", "1", "--ratios", "0.5,0,0.5"])  # fmt: skip
    main(["stats", "--data", str(out), "--out", str(reports)])
    stats = json.loads((reports / "stats.json").read_text())
    assert set(stats["measures"]["sharpness"]["by_class"]) == {"real", "fake"}
    assert (reports / "plots/sharpness.png").stat().st_size > 1000
    main(["probes", "--data", str(out), "--out", str(reports)])
    report = json.loads((reports / "probes.json").read_text())
    assert set(report["probes"]) == {"metadata", "crop_side", "sharpness", "thumbnail"}
    for probe in report["probes"].values():
        assert 0.0 <= probe["auc"] <= 1.0
        assert set(probe["per_fake_kind"]) == {"gan"}
    main(["match", "--data", str(out), "--out", str(reports)])
    matched = json.loads((out / "matched.json").read_text())
    assert matched["kept"]["real"] == matched["kept"]["fake"] > 0
    assert set(matched["files"]) <= {row["file"] for row in load_rows(out)}
    main(["probes", "--matched", "--data", str(out), "--out", str(reports)])
    assert json.loads((reports / "probes_matched.json").read_text())["subset"].startswith("matched")
    document = tmp_path / "DATA.md"
    from dataprep.card import END, START

    document.write_text(f"# Data\n\n{START}\nold\n{END}\n\nprose stays\n")
    with pytest.raises(SystemExit, match="out of date"):
        main(["card", "--reports", str(reports), "--document", str(document), "--check"])
    main(["card", "--reports", str(reports), "--document", str(document)])
    text = document.read_text()
    assert "prose stays" in text and "| real | celeba |" in text and "| thumbnail |" in text
    assert "Shortcut-matched subset" in text
    main(["card", "--reports", str(reports), "--document", str(document), "--check"])


def test_committed_data_card_is_the_rendering_of_reports_data():
    from dataprep.card import update

    root = Path(__file__).resolve().parent.parent
    assert update(root / "DATA.md", root / "reports/data", check=True), (
        "DATA.md is out of date: run python -m dataprep card"
    )


def test_face_region_finds_the_astronaut():
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    from core.facecrop import face_region
    from core.preprocessing import face_crop_and_box

    whole = data.astronaut()  # 512x512, one frontal face of about a fifth of the side
    assert face_region(whole) is None  # smaller than the quarter of the side searched for
    rgb = whole[:300, 100:400]  # portrait framing: the face is about a third of the side
    top, bottom, left, right = face_region(rgb)
    assert 30 <= left < right <= 240 and 20 <= top < bottom <= 260
    crop, box = face_crop_and_box(rgb)
    assert crop.shape[:2] == (bottom - top, right - left)
    assert box.crop(rgb).shape == crop.shape  # the box cuts the same region
    big = np.asarray(Image.fromarray(rgb).resize((900, 900)))  # detection is scale-free
    top2, bottom2, left2, right2 = face_region(big)
    assert abs(left2 / 3 - left) < 12 and abs(bottom2 / 3 - bottom) < 12
