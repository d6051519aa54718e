"""``python -m benchmarks explain`` end to end on the tiny ONNX model (seconds, no TensorFlow):
the command runs over every model of the repository and writes its JSON and table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TinyModelSpec, png_image, write_model_entry

from benchmarks import explain as explain_bench
from benchmarks.__main__ import main as benchmarks_main

QUICK = ["--repeats", "2", "--lime-repeats", "1", "--num-samples", "64", "--segmentations", "slic"]


def image_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    for index in range(2):
        (root / f"{index}.png").write_bytes(png_image(index, 48, 64))
    return root


def test_explain_benchmark_writes_results_and_prints_a_table(tmp_path, capsys):
    models = tmp_path / "models"
    for name in ("tiny", "other"):
        write_model_entry(models, name, 1, TinyModelSpec(size=32))
    out = tmp_path / "results"
    argv = ["explain", "--models", str(models), *QUICK, "--machine", "testbox"]
    argv += ["--images", str(image_folder(tmp_path / "images")), "--out", str(out)]
    assert benchmarks_main(argv) == 0

    [path] = out.glob("explain-testbox-*.json")
    report = json.loads(path.read_text())
    assert report["complete"] and report["benchmark"] == "explain"
    assert [result["name"] for result in report["models"]] == ["other", "tiny"]  # every model
    for result in report["models"]:
        assert result["predict_ms"]["n"] == result["cam_ms"]["n"] == 2
        assert result["cam_jpeg_ms"]["n"] == 2
        assert result["cam_over_predict"] > 0 and result["cam_jpeg_over_predict"] > 0
        lime = result["lime"]["slic"]
        assert lime["num_samples"] == 64 and lime["runs"][0]["batcher_submissions"] == 1
        assert set(lime["breakdown_median_ms"]) == {
            "segmentation",
            "sampling_and_scoring",
            "fit",
            "overlay",
        }
        assert result["bare_model_ms_per_row"] > 0
        [run] = lime["runs"]  # its own floor, timed right after it
        assert run["bare_model_batch_size"] in (4, 32), "the fastest of bulk and full batches"
        floor = run["bare_model_ms_per_row"] * 64  # both rounded in the JSON
        assert run["overhead"] + 1 == pytest.approx(run["wall_ms"] / floor, rel=1e-2)
        assert lime["overhead_median"] == run["overhead"]
    targets = [check["target"] for check in report["targets"]]
    assert len(targets) == 2 * 3 and sum("CAM" in target for target in targets) == 2 * 2
    printed = capsys.readouterr().out
    assert "CAM/predict" in printed and "tiny:1" in printed


def test_targets_compare_medians_with_the_goals():
    def result(name: str, predict: float, cam: float, lime: float) -> dict:
        return {
            "name": name,
            "predict_ms": {"median": predict},
            "cam_ms": {"median": cam},
            "cam_over_predict": round(cam / predict, 2),
            "cam_jpeg_ms": {"median": cam - 2.0},
            "cam_jpeg_over_predict": round((cam - 2.0) / predict, 2),
            "lime": {
                "slic": {
                    "wall_ms": {"median": lime},
                    "overhead_median": lime / 500.0 - 1,  # against a 500 ms floor
                    "runs": [{"overhead": lime / 500.0 - 1 + step} for step in (-0.02, 0, 0.03)],
                }
            },
            "bare_model_ms_for_lime_samples": 500.0,
        }

    checks = explain_bench.evaluate_targets(
        [result("texture", 10.0, 14.0, 540.0), result("lite0", 10.0, 25.0, 9000.0)]
    )
    statuses = {check["target"]: check["status"] for check in checks}
    assert statuses == {
        "texture: CAM (PNG overlay, the API default) <= 1.5x predict (median)": "pass",  # 1.4x
        "texture: CAM (JPEG overlay, as the web page asks) <= 1.5x predict (median)": "pass",
        "texture: LIME (slic) overhead over the bare model scoring its samples <= 10%": "pass",
        "lite0: CAM (PNG overlay, the API default) <= 1.5x predict (median)": "fail",  # 2.5x
        "lite0: CAM (JPEG overlay, as the web page asks) <= 1.5x predict (median)": "fail",
        "lite0: LIME (slic) overhead over the bare model scoring its samples <= 10%": "fail",
    }
    assert checks[2]["measured"] == (
        "+8.0%, the median request (+6.0%, +8.0%, +11.0%; "
        "each over the bare model timed right after it)"
    )


def test_an_empty_repository_is_a_clear_error(tmp_path, capsys):
    argv = ["explain", "--models", str(tmp_path / "none"), "--out", str(tmp_path / "results")]
    assert benchmarks_main(argv) == 2
    assert "no model in" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
