"""README.md is the short front door; its model numbers are rendered from reports, never typed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from train import readme as render_readme

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"


def _section(text: str) -> str:
    found = re.search(
        re.escape(render_readme.START) + r".*?" + re.escape(render_readme.END), text, re.S
    )
    assert found, "README.md lacks the shipped-model markers"
    return found.group(0)


def test_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_readme_keeps_the_two_commands():
    text = README.read_text()
    assert "make serve" in text and "make test" in text


def test_readme_links_point_at_files_that_exist():
    for page in [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_readme_model_section_is_the_rendering_of_the_committed_reports():
    section = _section(README.read_text())
    first = section.splitlines()[1]
    found = re.search(r"--model ([\w.-]+)", first)
    assert found, f"no model named on the section's first line: {first!r}"
    name = found.group(1)
    assert render_readme.model_in_section(section) == name
    expected = render_readme.render_section(name, REPO_ROOT / "reports")
    assert section == expected, f"stale: run `python -m train.readme --model {name}`"
    assert len(section.splitlines()) <= 80


def _tiny_report(reports: Path, name: str, with_ci: bool = True) -> None:
    test = {"accuracy": 0.75, "precision": 0.8, "recall": 0.6667, "f1": 0.7273}
    test |= {"roc_auc": 0.81, "pr_auc": 0.79, "eer": 0.25, "ece": 0.042, "n": 8}
    ci = {key: {"low": value - 0.1, "high": min(value + 0.1, 1.0)} for key, value in test.items()}
    report = {
        "threshold": 0.4321,
        "temperature": 1.5,
        "test": test,
        "ci": ({"level": 0.95} | ci) if with_ci else None,
        "counts": {"test": {"real": 4, "fake": 4, "total": 8}},
        "model": {"kind": "cnn", "parameters": 1234, "image_size": 32},
        "settings": {"data": "data/tiny"},
        "created": "2026-01-02T03:04:05+00:00",
    }
    (reports / name).mkdir(parents=True)
    (reports / name / "report.json").write_text(json.dumps(report))


def test_renderer_on_a_tiny_report_without_optional_files(tmp_path):
    reports = tmp_path / "reports"
    _tiny_report(reports, "tiny", with_ci=False)
    section = render_readme.render_section("tiny", reports)
    lines = section.splitlines()
    assert lines[0] == render_readme.START and lines[-1] == render_readme.END
    assert render_readme.model_in_section(section) == "tiny"
    assert "8 images (4 real, 4 fake)" in section and "Threshold 0.432" in section
    assert "| accuracy | 75.00 % | 81.87 % |" in section
    assert "| ROC-AUC | 0.810 | — |" in section
    assert (
        "Seed reference (custom CNN, 3,200 test images): accuracy 81.87%, precision 79.78%, "
        "recall 85.37%, F1 82.48%" in section
    )
    for absent in ("Robustness", "Per test subset", "Shortcut probes", "Plots"):
        assert absent not in section


def test_renderer_uses_every_optional_file_and_the_cli_writes_and_checks(tmp_path):
    reports = tmp_path / "reports"
    _tiny_report(reports, "tiny")
    clean = {"roc_auc": 0.8125, "accuracy": 0.75, "auc_drop": 0.0}
    jpeg = {"roc_auc": 0.79, "accuracy": 0.625, "auc_drop": 0.0225}
    robustness = {"conditions": {"clean": clean, "jpeg_q75": jpeg, "downscale_x0.5": clean}}
    (reports / "tiny" / "robustness.json").write_text(json.dumps(robustness))
    subset = {"roc_auc": 0.7, "n": 6, "counts": {"real": 3, "fake": 3}}
    subset["ci"] = {"roc_auc": {"low": 0.5, "high": 0.9}}
    (reports / "tiny" / "per_source.json").write_text(json.dumps({"subsets": {"src_a": subset}}))
    holdout = {"folds": {
        "src_a": {"kind": "real source", "flagged_fake_rate": 0.12, "flagged_fake_ci": [0.1, 0.14],
                  "met": False},
        "gen_b": {"kind": "fake family", "auc": 0.93, "auc_ci": [0.91, 0.95], "met": True},
    }}  # fmt: skip
    (reports / "tiny" / "holdout.json").write_text(json.dumps(holdout))
    probes = {
        "dataset": "data/other",
        "probes": {
            "metadata": {"auc": 0.61, "target": 0.65, "met": True},
            "thumbnail": {"auc": 0.8, "target": 0.75, "met": False},
        },
    }
    (reports / "data").mkdir()
    (reports / "data" / "probes.json").write_text(json.dumps(probes))
    (reports / "tiny" / "plots").mkdir()
    (reports / "tiny" / "plots" / "roc.png").write_bytes(b"png")
    (reports / "tiny" / "int8").mkdir()
    served = {"conditions": {"clean": clean, "jpeg_q75": jpeg, "downscale_x0.5": jpeg}}
    (reports / "tiny" / "int8" / "robustness.json").write_text(json.dumps(served))
    models = tmp_path / "models"
    (models / "tiny" / "3").mkdir(parents=True)
    int8 = {
        "images": 1200,
        "roc_auc": 0.805,
        "roc_auc_fp32": 0.81,
        "accuracy": 0.76,
        "accuracy_fp32": 0.75,
        "mean_abs_diff_vs_fp32": 0.01,
        "max_abs_diff_vs_fp32": 0.2,
    }
    metadata = {"files": {"onnx_int8": "model.int8.onnx"}, "serve_precision": "int8",
                "parity": {"int8": int8}}  # fmt: skip
    (models / "tiny" / "3" / "metadata.json").write_text(json.dumps(metadata))

    section = render_readme.render_section("tiny", reports, models)
    assert "The server runs `" in section and "/tiny/3/model.int8.onnx` (INT8" in section
    assert "ROC-AUC 0.8050 against 0.8100 for the FP32 file (-0.0050)" in section
    assert "| ROC-AUC, served INT8 file (`" in section and "| 0.812 | 0.790 | 0.790 |" in section
    assert "| accuracy | 75.00 % [65.00, 85.00] | 81.87 % |" in section
    assert "| | clean | JPEG q75 | downscale x0.5 |" in section
    assert "| AUC lost (points) | +0.00 | +2.25 | +0.00 |" in section
    assert "| accuracy | 75.0 % | 62.5 % | 75.0 % |" in section
    assert "| src_a | 6 (3 / 3) | 0.700 [0.500, 0.900] |" in section
    missed = "| src_a (real source) | real photos flagged FAKE 12.0% [10.0%, 14.0%] | <= 10 % |"
    assert f"{missed} **missed** |" in section
    met = "| gen_b (fake family) | AUC 0.930 [0.910, 0.950] against test reals | >= 0.90 | met |"
    assert met in section
    assert "| test ROC-AUC >= 0.99 | 0.810 | **missed** by 0.180 |" in section  # the targets
    assert "| 0 of 1 met; worst src_a 12.0% | **missed** by 2.0 points |" in section
    assert "| gen_b 0.930 | met |" in section
    assert "| downscale x0.5 +0.0 | met |" in section  # only the conditions the report has
    assert "| 0.610 | <= 0.65 | met |" in section and "| 0.800 | <= 0.75 | **missed** |" in section
    assert "not the data this model was tested on, `data/tiny`" in section
    assert "`roc.png`" in section

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{render_readme.START}\nold\n{render_readme.END}\noutro\n")
    args = ["--model", "tiny", "--reports", str(reports), "--readme", str(readme)]
    args += ["--models", str(models)]
    assert render_readme.main([*args, "--check"]) == 1
    assert render_readme.main(args) == 0
    assert readme.read_text() == f"intro\n{section}\noutro\n"
    assert render_readme.main([*args, "--check"]) == 0
    assert render_readme.main(["--model", "nope", "--reports", str(reports)]) == 2


@pytest.mark.parametrize("text", ["no markers here\n", ""])
def test_cli_refuses_a_readme_without_markers(tmp_path, text):
    reports = tmp_path / "reports"
    _tiny_report(reports, "tiny")
    readme = tmp_path / "README.md"
    readme.write_text(text)
    args = ["--model", "tiny", "--reports", str(reports), "--readme", str(readme)]
    assert render_readme.main(args) == 2
    assert readme.read_text() == text


def test_models_on_the_same_test_set_get_a_column(tmp_path):
    reports = tmp_path / "reports"
    _tiny_report(reports, "tiny", with_ci=False)
    _tiny_report(reports, "other", with_ci=False)
    section = render_readme.render_section("tiny", reports)
    assert "| test metric | `tiny` | `other` (same test set) | seed reference |" in section
    assert "| accuracy | 75.00 % | 75.00 % | 81.87 % |" in section
    moved = json.loads((reports / "other" / "report.json").read_text())
    moved["counts"]["test"]["total"] = 9  # another test set: no column
    (reports / "other" / "report.json").write_text(json.dumps(moved))
    assert "`other`" not in render_readme.render_section("tiny", reports)


def test_readme_benchmark_section_is_the_rendering_of_the_newest_results():
    from benchmarks.readme import END, START, render_section
    from benchmarks.report import latest_results

    path = latest_results(REPO_ROOT / "benchmarks" / "results")
    found = re.search(re.escape(START) + r".*?" + re.escape(END), README.read_text(), re.S)
    assert found, "README.md lacks the benchmark markers"
    expected = render_section(json.loads(path.read_text()), path.name)
    assert found.group(0) == expected, "stale: python -m benchmarks summary --readme README.md"


def test_probes_of_a_rebuilt_dataset_are_not_passed_off_as_the_models_data():
    probes = {"dataset": "data/detector", "test_images": 4549,
              "probes": {"thumbnail": {"auc": 0.9, "target": 0.75, "met": False}}}  # fmt: skip
    report = {"data": {"folder": "data/detector"}, "counts": {"test": {"total": 3337}}}
    caption = render_readme._probes_table(probes, Path("reports/data/probes.json"), report)[0]
    assert "as rebuilt since (4,549 test images)" in caption and "(3,337 test images)" in caption
    report["counts"]["test"]["total"] = 4549
    same = render_readme._probes_table(probes, Path("reports/data/probes.json"), report)[0]
    assert "rebuilt" not in same


def test_training_docs_design_table_is_the_rendering_of_the_committed_reports(monkeypatch):
    from train.holdout_table import DESIGNS, update

    monkeypatch.chdir(REPO_ROOT)  # the table names the report folders as the command does
    assert update(Path("docs/TRAINING.md"), DESIGNS, check=True), (
        "docs/TRAINING.md is out of date: run python -m train.holdout_table"
    )
