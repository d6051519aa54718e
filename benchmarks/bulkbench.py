"""``python -m benchmarks bulk``: the bulk command against the in-process pipeline limit.

1. ``python -m bulk`` with the local engine (and the ray engine) on the test and val images
   (at least 5,000 files), each run in its own process, timed end to end;
2. the pipeline limit of the same model on the same machine (``benchmarks.pipeline``);
3. peak memory on a 200,000-path list: the paths stream through, so the resident set must
   not grow with their number (most paths do not exist and become error rows at once, so
   this measures the streaming, not the model).

Writes ``benchmarks/results/bulk-<machine>-<date>.json``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.cli import (
    ResultsConfig,
    add_command,
    names_of,
    parse_paths,
    utc_stamp,
    write_results,
)
from benchmarks.images import load_images
from benchmarks.pipeline import PipelineConfig, measure_pipeline
from benchmarks.sysinfo import describe_machine, machine_slug
from bulk.scorer import ModelChoice
from core.options import check_at_least, option, options_from

DEFAULT_FOLDERS = (Path("data/detector/test"), Path("data/detector/val"))


def run_bulk(args: list[str]) -> dict:
    """One ``python -m bulk`` process: wall seconds, exit code and its peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bulk", *args, "--no-progress"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "exit_code": done.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(max(peak_kib, before) / 1024, 1),
        "summary": done.stderr.strip().splitlines()[-3:],
    }


def count_rows(path: Path) -> int:
    return max(0, sum(1 for _ in path.open()) - (1 if path.suffix == ".csv" else 0))


@dataclass(frozen=True)
class BulkBenchConfig(ResultsConfig):
    """What ``python -m benchmarks bulk`` measures (the model: :class:`ModelChoice`)."""

    engines: tuple[str, ...] = option(
        ("local", "ray"), "comma-separated engines", names_of(), metavar="NAME,NAME,..."
    )
    paths: int = option(200_000, "paths in the memory test", int)
    folders: tuple[Path, ...] = option(
        DEFAULT_FOLDERS, "comma-separated folders of images to score", parse_paths,
        metavar="DIR,DIR,...",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_at_least(self, 1, "paths")


def add_parser(commands) -> argparse.ArgumentParser:
    """Register the ``bulk`` subcommand on ``python -m benchmarks``."""
    return add_command(
        commands, "bulk", description=__doc__.split("\n\n")[0],
        help="python -m bulk (local, ray) against the pipeline limit, and its memory on "
        "200,000 paths; writes benchmarks/results/bulk-<machine>-<date>.json",
        configs=(ModelChoice, BulkBenchConfig, PipelineConfig), exclude=("version",),
    )  # fmt: skip


def write_path_lists(work: Path, files: list[str], paths: int) -> tuple[Path, Path]:
    """``inputs.txt`` (every image) and ``many.txt`` (``paths`` lines, most of them missing)."""
    listing = work / "inputs.txt"
    listing.write_text("\n".join(files) + "\n")
    many = work / "many.txt"
    with many.open("w") as handle:
        for index in range(paths):
            real = index < min(2000, len(files))
            handle.write(files[index] if real else f"/nonexistent/{index}.jpg")
            handle.write("\n")
    return listing, many


def measure_engines(config: BulkBenchConfig, models: Path, name: str, files: list[str]) -> dict:
    """The memory run on many paths, then one timed run per engine on every image."""
    report = {}
    models_flags = ["--models", str(models), "--model", name]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        listing, many = write_path_lists(work, files, config.paths)
        out = work / "many.jsonl"
        run = run_bulk([str(many), "--out", str(out), *models_flags, "--no-count"])
        report["memory"] = run | {"paths": config.paths, "rows": count_rows(out)}
        for engine in config.engines:
            out = work / f"{engine}.csv"
            run = run_bulk([str(listing), "--out", str(out), "--engine", engine, *models_flags])
            rows = count_rows(out)
            report[engine] = run | {"rows": rows, "images_per_s": round(rows / run["wall_s"], 2)}
    return report


def command(args: argparse.Namespace) -> int:
    """``python -m benchmarks bulk``."""
    choice, config = options_from(ModelChoice, args), options_from(BulkBenchConfig, args)
    entry = choice.entry()
    files = sorted(str(p) for folder in config.folders for p in folder.rglob("*.jpg"))
    if not files:
        print(f"error: no .jpg files under {', '.join(map(str, config.folders))}", file=sys.stderr)
        return 2
    report: dict = {"model": entry.name, "version": entry.version, "images": len(files)}
    report |= measure_engines(config, choice.models, entry.name, files)
    images = load_images(config.folders[0], 64)
    sweep = replace(options_from(PipelineConfig, args), batch_sizes=(16, 32), session_variants=())
    limit = measure_pipeline(entry, images, sweep)
    report["pipeline_limit"] = limit["limit"]
    for engine in config.engines:
        ratio = report[engine]["images_per_s"] / limit["limit"]["images_per_s"]
        report[engine]["over_limit"] = round(ratio, 3)
    machine = describe_machine()
    report = {"created": utc_stamp(), "machine": machine, **report}
    print(write_results(config.out_dir, "bulk", machine_slug(machine), report))
    for engine in config.engines:
        print(f"  {engine}: {report[engine]['images_per_s']} img/s = "
              f"{report[engine]['over_limit']:.0%} of the pipeline limit")  # fmt: skip
    print(f"  {config.paths} paths: peak RSS {report['memory']['peak_rss_mib']} MiB")
    return 0
