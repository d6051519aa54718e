"""Write a run's outputs: the results JSON, its plots and the generated SUMMARY.md."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.cli import newest_results
from benchmarks.plots import plot_latency_cdf, plot_throughput
from benchmarks.summary import render_summary

SUMMARY_FILE = "SUMMARY.md"


def results_stem(results: dict) -> str:
    """``<machine>-<date>``, the name shared by a run's JSON and PNG files."""
    return f"{results['machine_name']}-{results['created'][:10]}"


def plot_paths(results: dict, out_dir: Path) -> dict[str, Path]:
    stem = results_stem(results)
    return {
        "throughput": out_dir / f"{stem}-throughput.png",
        "latency_cdf": out_dir / f"{stem}-latency-cdf.png",
    }


def write_plots(results: dict, out_dir: Path) -> dict[str, Path]:
    paths = plot_paths(results, out_dir)
    plot_throughput(results, paths["throughput"])
    plot_latency_cdf(results, paths["latency_cdf"])
    return paths


def write_summary(results: dict, json_path: Path, out_dir: Path) -> Path:
    """Render SUMMARY.md from the results (plots linked only if their files exist)."""
    plots = {key: path.name for key, path in plot_paths(results, out_dir).items() if path.is_file()}
    summary = out_dir / SUMMARY_FILE
    summary.write_text(render_summary(results, json_path.name, plots))
    return summary


def write_outputs(results: dict, out_dir: Path, plots: bool = True) -> Path:
    """Write ``<machine>-<date>.json`` (+ PNGs) and SUMMARY.md into ``out_dir``; return the JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{results_stem(results)}.json"
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    if plots:
        write_plots(results, out_dir)
    write_summary(results, json_path, out_dir)
    return json_path


def latest_results(out_dir: Path) -> Path:
    """The newest suite results JSON in ``out_dir`` (by its ``created`` time); other
    benchmarks' files (e.g. ``explain-*.json``) are passed over."""
    found = newest_results(out_dir, "*.json", "created", frozenset({"schema", "systems", "raw"}))
    if found is None:
        raise FileNotFoundError(f"no results JSON in {out_dir}: run `python -m benchmarks run`")
    return found[0]
