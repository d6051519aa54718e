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
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.images import load_images
from benchmarks.pipeline import PipelineConfig, measure_pipeline
from benchmarks.sysinfo import describe_machine, machine_slug
from bulk.scorer import ModelChoice

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


def add_parser(commands) -> argparse.ArgumentParser:
    """Register the ``bulk`` subcommand on ``python -m benchmarks``."""
    parser = commands.add_parser(
        "bulk",
        help="python -m bulk (local, ray) against the pipeline limit, and its memory on "
        "200,000 paths; writes benchmarks/results/bulk-<machine>-<date>.json",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--models", type=Path, default=Path("models"), help="model repository")
    parser.add_argument("--model", default=None, help="default: the server's default model")
    parser.add_argument("--engines", default="local,ray", help="comma-separated engines")
    parser.add_argument("--paths", type=int, default=200_000, help="paths in the memory test")
    parser.add_argument(
        "--folders", type=Path, nargs="+", default=list(DEFAULT_FOLDERS), help="images to score"
    )
    parser.add_argument(
        "--pipeline-seconds", type=float, default=3.0, help="time per pipeline-limit setting"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser


def command(args: argparse.Namespace) -> int:
    """``python -m benchmarks bulk``."""
    entry = ModelChoice(args.models, args.model).entry()
    files = sorted(str(p) for folder in args.folders for p in folder.rglob("*.jpg"))
    if not files:
        print(f"error: no .jpg files under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    report: dict = {"model": entry.name, "version": entry.version, "images": len(files)}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        listing = work / "inputs.txt"
        listing.write_text("\n".join(files) + "\n")
        many = work / "many.txt"
        with many.open("w") as handle:
            for index in range(args.paths):
                real = index < min(2000, len(files))
                handle.write(files[index] if real else f"/nonexistent/{index}.jpg")
                handle.write("\n")
        out = work / "many.jsonl"
        run = run_bulk([str(many), "--out", str(out), "--models", str(args.models),
                        "--model", entry.name, "--no-count"])  # fmt: skip
        report["memory"] = run | {"paths": args.paths, "rows": count_rows(out)}
        for engine in args.engines.split(","):
            out = work / f"{engine}.csv"
            run = run_bulk([str(listing), "--out", str(out), "--engine", engine,
                            "--models", str(args.models), "--model", entry.name])  # fmt: skip
            rows = count_rows(out)
            report[engine] = run | {"rows": rows, "images_per_s": round(rows / run["wall_s"], 2)}
    images = load_images(args.folders[0], 64)
    sweep = PipelineConfig(batch_sizes=(16, 32), seconds_per_setting=args.pipeline_seconds,
                           session_variants=())  # fmt: skip
    limit = measure_pipeline(entry, images, sweep)
    report["pipeline_limit"] = limit["limit"]
    for engine in args.engines.split(","):
        ratio = report[engine]["images_per_s"] / limit["limit"]["images_per_s"]
        report[engine]["over_limit"] = round(ratio, 3)
    machine = describe_machine()
    report = {"created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine,
              **report}  # fmt: skip
    path = args.out / f"bulk-{machine_slug(machine)}-{report['created'][:10]}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(path)
    for engine in args.engines.split(","):
        print(f"  {engine}: {report[engine]['images_per_s']} img/s = "
              f"{report[engine]['over_limit']:.0%} of the pipeline limit")  # fmt: skip
    print(f"  {args.paths} paths: peak RSS {report['memory']['peak_rss_mib']} MiB")
    return 0
