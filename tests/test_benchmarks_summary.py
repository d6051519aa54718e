"""SUMMARY.md is generated from the results JSON: its numbers and verdicts come from there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.report import latest_results, write_outputs
from benchmarks.schema import validate_results
from benchmarks.summary import render_summary
from benchmarks.targets import evaluate_targets

CONCURRENCY = (1, 4, 16, 64)


def _level(concurrency: int, images_per_s: float, p50: float, p99: float, mean_batch=None):
    cdf = list(np.linspace(p50 / 2, p99 * 1.1, 101).round(3))
    return {
        "concurrency": concurrency, "client": "raw", "requests": 200, "ok": 198,
        "errors": {"503": 2}, "wall_s": 198 / images_per_s, "images_per_s": images_per_s,
        "latency_ms": {"p50": p50, "p95": (p50 + p99) / 2, "p99": p99, "max": p99 * 1.2,
                       "mean": p50 * 1.05},
        "latency_cdf_ms": [float(v) for v in cdf], "client_cpu_s": 0.25,
        "client_cpu_percent": 11.5, "client_cpu_ms_per_request": 0.2,
        "server_cpu_s": 3.1, "server_cpu_percent": 187.3,
        "batch_sizes": None if mean_batch is None else {
            "histogram": "dfd_batch_size", "distribution": {"1": 7, "9-12": 13},
            "batches": 20, "mean": mean_batch},
    }  # fmt: skip


def _limit_entry(name: str, auc: float, limit: float, levels: list, batch1_ms: float) -> dict:
    """One model of the limits section: pipeline limit, server levels, hey, ratios."""
    from benchmarks.runner import limit_ratios

    server = {"name": f"ours-{name}", "levels": [_level(c, ips, p50, p50 * 2)
                                                  for c, ips, p50 in levels],
              "hey": {"tool": "hey", "concurrency": 64, "requests": 500,
                      "status_counts": {"200": 500}, "images_per_s": levels[-1][1] * 0.98,
                      "latency_ms": {"p50": 150.0, "p90": 170.0, "p99": 190.0}}}  # fmt: skip
    pipeline = {
        "model": name, "settings": [],
        "limit": {"intra_op_threads": 1, "batch_size": 16, "decode_threads": 2,
                  "images": 300, "images_per_s": limit},
        "batch1_latency": {"runs": 64, "ms_p50": batch1_ms, "ms_p99": batch1_ms * 1.5},
    }  # fmt: skip
    model = {"name": name, "version": 1, "test_metrics": {"roc_auc": auc}}
    if name == "lite0":
        server["mixed"] = {
            "concurrency": 4, "explanations_in_flight": 2, "num_samples": 1000,
            "alone": {"images_per_s": 80.0, "latency_ms": {"p99": 40.0}, "errors": {}},
            "beside_explanations": {"images_per_s": 50.0, "latency_ms": {"p99": 100.0},
                                    "errors": {}},
            "explanation_statuses": {"200": 4}, "p99_ratio": 2.5,
        }  # fmt: skip
    return {"model": model, "pipeline": pipeline, "server": server,
            "ratios": limit_ratios(pipeline, server)}  # fmt: skip


def make_results(
    ours_c64: float = 412.3, baseline_c64: float = 61.7, limit_c64: float = 97.0
) -> dict:
    """A complete results dict with distinctive numbers (no GPU, untrained=False)."""
    ours = [_level(c, ips, p50, p99, 9.5) for c, ips, p50, p99 in
            [(1, 88.1, 6.54, 9.87), (4, 201.4, 17.2, 30.1), (16, 350.9, 40.3, 80.2),
             (64, ours_c64, 140.2, 201.7)]]  # fmt: skip
    base = [_level(c, ips, p50, p99) for c, ips, p50, p99 in
            [(1, 30.2, 31.1, 40.2), (4, 45.3, 80.3, 120.4), (16, 55.4, 260.5, 400.6),
             (64, baseline_c64, 900.7, 1234.5)]]  # fmt: skip
    raw_batches = [
        {"batch_size": b, "runs": 10, "images_per_s": ips, "batch_ms_p50": 1.0, "per_image_ms": 1.0}
        for b, ips in [(1, 240.5), (8, 430.6), (64, 455.25)]
    ]
    limits = [_limit_entry("lite0", 0.987, 100.0, [(1, 25.0, 30.5), (64, limit_c64, 800.0)],
                           batch1_ms=30.0),
              _limit_entry("cnn", 0.870, 400.0, [(1, 150.0, 5.2), (64, 390.0, 160.0)],
                           batch1_ms=4.0)]  # fmt: skip
    return {
        "schema": 1, "created": "2026-11-28T10:11:12Z",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "cores_usable": 2, "memory_gib": 23.5,
                    "os": "Linux", "gpus": [], "python": "3.11.7",
                    "packages": {"onnxruntime": "1.32.0"}, "load_average_at_start": [0.42, 0, 0]},
        "machine_name": "test-cpu-2c",
        "config": {"concurrency": list(CONCURRENCY), "requests": 200, "duration_s": 8.0,
                   "warmup_requests": 16, "client": "raw"},
        "model": {"name": "cnn", "version": 3, "entry": "models/cnn/3",
                  "variants": ["fp32"], "test_metrics": {"accuracy": 0.8766, "roc_auc": 0.9321},
                  "trained": True, "training_data": "Yonsei faces"},
        "images": {"source": "12 files from data/faces/test", "count": 12, "mean_bytes": 31337},
        "raw": {"preprocessing": {"runs": 64, "ms_p50": 1.23},
                "runs": [{"variant": "fp32", "provider": "cpu", "file": "model.onnx",
                          "batches": raw_batches, "best": {"batch_size": 64,
                          "images_per_s": 455.25}, "batch1_latency_ms": 4.16}]},
        "systems": [
            {"name": "baseline-flask", "description": "seed", "levels": base,
             "info": {"origin": "--keras x.keras", "weights_match_onnx": True}},
            {"name": "ours-batching-on", "description": "ours", "levels": ours},
            {"name": "ours-batching-on-int8", "description": "ours", "levels": [],
             "error": "ours-batching-on-int8 exited with 1 before it was ready; log tail:\nboom"},
        ],
        "limits": limits,
        "targets": [],
        "duration_s": 321.0,
    }  # fmt: skip


@pytest.fixture
def results() -> dict:
    data = make_results()
    data["targets"] = evaluate_targets(data)
    return data


def test_fixture_is_a_complete_results_file(results: dict):
    assert validate_results(results) == []


def test_numbers_in_the_summary_come_from_the_json(results: dict):
    text = render_summary(results, "test-cpu-2c-2026-11-28.json")
    for expected in (
        "| ours-batching-on | 64 | 412.3 | 140.20 | 170.95 | 201.70 | 242.04 | 503: 2 | 9.50 "
        "| 187.3 | 11.5 |",
        "| baseline-flask | 64 | 61.7 | 900.70 |",
        "| fp32 | cpu | 64 | 455.2 | 4.16 | 1: 240.5, 8: 430.6, 64: 455.2 |",
        "accuracy 0.877, roc_auc 0.932",
        "Test CPU 9000",
        "p50 1.23 ms",
        "| ours-batching-on | 64 | 20 | 1: 7, 9-12: 13 |",
        "failed to start: ours-batching-on-int8 exited with 1",
        "[`test-cpu-2c-2026-11-28.json`]",
        "Do not edit by hand",
    ):
        assert expected in text, expected
    changed = make_results(ours_c64=123.4)
    assert "| ours-batching-on | 64 | 123.4 |" in render_summary(changed, "x.json")


def test_paired_rounds_give_the_limit_the_c64_verdict_and_the_c1_overhead(results: dict):
    from benchmarks.runner import limit_ratios

    item = results["limits"][0]  # lite0: 97 img/s at c=64 against a limit of 100 (97 %)
    rounds = [
        {"limit_images_per_s": lim, "server_images_per_s": ips,
         "server_over_limit": round(ips / lim, 3), "server_errors": {},
         "in_process_ms_p50": 30.0, "server_c1_ms_p50": lone,
         "c1_overhead_ms_p50": round(lone - 30.0, 3), "c1_errors": {}}
        for lim, ips, lone in [(120.0, 96.0, 31.5), (110.0, 99.0, 30.8), (130.0, 91.0, 32.1)]
    ]  # fmt: skip
    item["server"]["paired"] = {
        "concurrency": 64, "seconds": 4.0, "rounds": rounds, "limit_images_per_s": 120.0,
        "server_images_per_s": 96.0, "server_over_limit": 0.8, "in_process_ms_p50": 30.0,
        "server_c1_ms_p50": 31.5, "c1_overhead_ms_p50": 1.5,
    }  # fmt: skip
    item["ratios"] = limit_ratios(item["pipeline"], item["server"])
    assert validate_results(results) == []
    del rounds[1]["server_c1_ms_p50"]
    assert validate_results(results) == [
        "limits[lite0].paired.rounds[1].server_c1_ms_p50 is missing"
    ]
    rounds[1]["server_c1_ms_p50"] = 30.8
    assert item["ratios"]["server_over_limit"]["64"] == pytest.approx(97.0 / 120.0, abs=1e-3)
    assert item["ratios"]["c1_overhead_ms_p50"] == 1.5
    verdicts = {check["id"]: check for check in evaluate_targets(results)}
    assert verdicts["pipeline_fraction"]["measured"] == "lite0 80%, cnn 98%"  # not 81 %
    assert verdicts["http_overhead"]["measured"] == "lite0 1.50 ms, cnn 1.20 ms"
    text = render_summary(results, "x.json")
    assert "| 120.0 (120.0 / 110.0 / 130.0) | batch 16" in text
    assert "| model | round | limit img/s | server c=64 img/s | ÷ limit |" in text
    assert "| lite0 | 3 | 130.0 | 91.0 | 0.70 | 30.00 | 32.10 | 2.10 |" in text
    assert "| lite0 | median | 120.0 | 96.0 | 0.80 | 30.00 | 31.50 | 1.50 |" in text


def test_targets_are_checked_with_the_margin_when_missed(results: dict):
    verdicts = {check["id"]: check for check in evaluate_targets(results)}
    assert verdicts["predictions_beside_explanations"]["status"] == "missed"  # 2.5x
    assert verdicts["predictions_beside_explanations"]["shortfall"] == "0.50x over the 2x budget"
    # lite0 97 / 100 = 97 %, cnn 390 / 400 = 97.5 %: met; 412.3 / 61.7 = 6.68x: missed
    assert verdicts["pipeline_fraction"]["status"] == "met"
    assert verdicts["pipeline_fraction"]["measured"] == "lite0 97%, cnn 98%"
    assert verdicts["baseline_throughput"]["status"] == "missed"
    assert verdicts["baseline_throughput"]["shortfall"] == "short by 3.32x"
    assert verdicts["baseline_p99"]["status"] == "met"  # 201.7 <= 1234.5 / 5
    # lite0 30.5 - 30.0 = 0.5 ms, cnn 5.2 - 4.0 = 1.2 ms > 1 ms
    assert verdicts["http_overhead"]["status"] == "missed"
    assert verdicts["http_overhead"]["shortfall"] == "0.20 ms over the 1 ms budget"
    assert verdicts["no_errors"]["status"] == "met"  # only 503s
    assert verdicts["tensorrt_fp16"]["status"] == "not measured"
    assert verdicts["tensorrt_fp16"]["measured"] == "not measured: no GPU"

    slow = make_results(ours_c64=700.0, baseline_c64=50.0, limit_c64=80.0)
    slow["limits"][1]["server"]["levels"][0]["errors"] = {"500": 1}
    verdicts = {check["id"]: check for check in evaluate_targets(slow)}
    assert verdicts["pipeline_fraction"]["status"] == "missed"
    assert verdicts["pipeline_fraction"]["shortfall"] == "the worst model is 15 points short"
    assert verdicts["baseline_throughput"]["status"] == "met"  # 14x
    assert verdicts["no_errors"]["status"] == "missed"
    assert verdicts["no_errors"]["measured"] == "up to c=64: 500: 1"
    text = render_summary(slow, "x.json")
    assert "❌ missed: the worst model is 15 points short" in text
    assert "— not measured" in text
    assert "| lite0 | 64 | 80.0 | 0.80 |" in text
    assert (
        "| lite0 | 0.987 | 100.0 | batch 16, 2 decode, 1 intra-op | 30.00 | 30.50 (0.50) " in text
    )


def test_summary_command_regenerates_from_the_json(results: dict, tmp_path: Path, capsys):
    path = write_outputs(results, tmp_path, plots=False)
    other = {"benchmark": "explain", "created": "2099-01-01T00:00:00Z", "models": []}
    (tmp_path / "explain-test-cpu-2c-2099-01-01.json").write_text(json.dumps(other))
    assert latest_results(tmp_path) == path  # other benchmarks' files are not suite results
    summary = tmp_path / "SUMMARY.md"
    summary.write_text("hand-typed numbers")
    edited = json.loads(path.read_text())
    edited["systems"][1]["levels"][3]["images_per_s"] = 999.9
    path.write_text(json.dumps(edited))
    assert main(["summary", str(path), "--no-plots"]) == 0
    text = summary.read_text()
    assert "hand-typed" not in text and "| ours-batching-on | 64 | 999.9 |" in text
    assert main(["summary", "--out", str(tmp_path)]) == 0  # newest JSON, with plots
    assert (tmp_path / "test-cpu-2c-2026-11-28-throughput.png").is_file()
    assert (tmp_path / "test-cpu-2c-2026-11-28-latency-cdf.png").is_file()
    assert "![throughput](test-cpu-2c-2026-11-28-throughput.png)" in summary.read_text()


def test_summary_of_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["summary", "--out", str(tmp_path)]) == 2
    assert "no results JSON" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["summary", str(broken)]) == 2
    assert "cannot read results" in capsys.readouterr().err


def test_validation_finds_incomplete_results(results: dict):
    del results["systems"][1]["levels"][2]["latency_ms"]
    results["raw"]["runs"] = []
    results["targets"] = results["targets"][:2]
    problems = validate_results(results)
    assert "systems[ours-batching-on].c16.latency_ms is missing" in problems
    assert "raw.runs is empty" in problems
    assert any(problem.startswith("targets are") for problem in problems)


def test_an_untrained_model_is_labelled_as_such(results: dict):
    results["model"].update(trained=False, test_metrics={})
    text = render_summary(results, "x.json")
    assert "**untrained model**" in text and "test metrics" not in text


def test_a_busy_machine_is_flagged(results: dict):
    assert "machine was busy" not in render_summary(results, "x.json")
    results["load_average_at_end"] = [5.5, 3.0, 1.0]
    assert "load average 0.42 at start, 5.50 at end, on 2 cores" in render_summary(
        results, "x.json"
    )


def test_readme_section_is_rendered_from_the_results(results: dict, tmp_path: Path):
    from benchmarks.readme import END, START, render_section

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START}\nold numbers\n{END}\n\nafter\n")
    path = write_outputs(results, tmp_path / "results", plots=False)
    assert main(["summary", str(path), "--no-plots", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old numbers" not in text and text.endswith("\n\nafter\n")
    assert render_section(results, path.name) in text
    assert "| `lite0` (0.987) | 100.0 | 97.0 (0.97) | 95.1 | 30.5 (0.5) | — |" in text
    assert "412.3 vs 61.7 images/s (6.7×)" in text
    readme.write_text("no markers")
    assert main(["summary", str(path), "--no-plots", "--readme", str(readme)]) == 2


def test_the_first_upload_after_idle_shows_the_servers_own_part(results: dict):
    results["limits"][0]["server"]["first_request"] = {
        "idle_s": 30.0, "first_ms": 101.1, "following_ms_p50": 12.2,
        "first_server_ms": 35.4, "following_server_ms_p50": 8.8, "statuses": [200],
    }  # fmt: skip
    text = render_summary(results, "x.json")
    assert "| 101.1 after 30 s (12.2); in the server 35.4 (8.8) |" in text
