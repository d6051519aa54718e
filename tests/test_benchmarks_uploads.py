"""The realistic-uploads benchmark: its corpus, its ratios and its README block."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks import uploads
from core.preprocessing import PreprocessConfig, preprocess_upload

pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")


@pytest.mark.parametrize("kind", ["1024 px portrait", "PNG 1 MP", "group, 6 faces", "JPEG 3 MP"])
def test_corpus_files_are_deterministic_and_carry_their_faces(kind):
    data = uploads.CORPUS[kind]()
    assert data == uploads.CORPUS[kind]()  # the same bytes on every machine and run
    config = PreprocessConfig(face_crop=True, max_faces=16)  # as the server judges faces
    assert len(preprocess_upload(data, config).model_rows()) == (6 if "6 faces" in kind else 1)


def test_phone_sizes_are_what_they_say():
    header = Image.open(io.BytesIO(uploads.CORPUS["160 px thumbnail"]()))
    assert header.size == (160, 160) and header.format == "JPEG"
    assert uploads.background(64, 48, 0, flat=True).shape == (48, 64, 3)


def fake_report() -> dict:
    kinds = {name: {"decode_ms": 10.0, "pipeline_ms": 12.0, "server_ms_p50": 13.0,
                    "server_ms_p99": 20.0} for name in uploads.CORPUS}  # fmt: skip
    kinds["PNG 12 MP"] |= {"decode_ms": 200.0, "server_ms_p50": 260.0}  # 1.3x its decode
    kinds["group, 6 faces"]["server_ms_p50"] = 30.0  # 30 / 13 = 2.3x the one-face photo
    report = {"model": "texture", "version": 1, "kinds": kinds,
              "machine": {"cpu": "Test CPU", "cores_usable": 2},
              "mix_c64": {"images_per_s": 12.5, "ok": 160, "errors": {}}}  # fmt: skip
    report["ratios"] = uploads.ratios(report)
    return report


def test_ratios_name_the_worst_kind_against_each_target():
    ratios = fake_report()["ratios"]
    assert ratios["server / decode, large kinds"] == {"worst": 1.3, "target": 1.2, "met": False}
    assert ratios["server / in-process, every kind"]["worst"] == pytest.approx(21.67, abs=0.01)
    assert ratios["6 faces / 1 face"] == {"worst": 2.31, "target": 2.0, "met": False}


def test_readme_block_is_rewritten_between_its_markers(tmp_path):
    block = uploads.render(fake_report(), "benchmarks/results/uploads-x.json")
    assert "| server c=1 p50 ms | " in block and "12.5 uploads/s" in block
    assert "6 faces / 1 face 2.31 (target <= 2.0: missed)" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{uploads.START}\nold\n{uploads.END}\nafter\n")
    assert uploads.update_readme(readme, block)
    assert readme.read_text() == f"before\n{block}\nafter\n"
    (tmp_path / "plain.md").write_text("no markers")
    assert not uploads.update_readme(tmp_path / "plain.md", block)
    assert np.isfinite(fake_report()["ratios"]["6 faces / 1 face"]["worst"])
