"""``python -m benchmarks``: the throughput / latency suite and its parts.

Subcommands: ``run`` (everything, writes benchmarks/results/), ``load`` (load one running
server), ``raw`` (in-process onnxruntime only), ``summary`` (regenerate SUMMARY.md and plots
from a results JSON), ``explain``, ``bulk``, ``video`` and ``uploads`` (their
own results JSON each).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import bulkbench, uploads
from benchmarks import explain as explain_bench
from benchmarks import video as video_bench
from benchmarks.cli import (
    DEFAULT_OUT,
    OptionsParser,
    add_command,
    add_server_arg,
    names_of,
    optional_names,
    positive_ints,
)
from benchmarks.firstrequest import FirstRequestConfig
from benchmarks.hey import HeyConfig
from benchmarks.loadgen import CONCURRENCY_HELP, LoadLevels
from benchmarks.mixed import MixedConfig
from benchmarks.paired import PairedConfig
from benchmarks.pipeline import PipelineConfig
from benchmarks.raw import RawConfig
from benchmarks.runner import ALL_SYSTEMS, SuiteConfig
from bulk.scorer import ModelChoice
from core.options import (
    option,
    options_from,
    parse_bool,
    parse_optional_path,
)

EPILOG = """examples:
  python -m benchmarks run                        # the full suite (make bench), about 5-10 min
  python -m benchmarks run --quick                # seconds: tiny load, to check the pipeline
  python -m benchmarks run --skip baseline --concurrency 1,16
  python -m benchmarks load --url http://127.0.0.1:8000 --concurrency 1,8
  python -m benchmarks raw --models models --model lite0
  python -m benchmarks summary                    # SUMMARY.md from the newest results JSON
  python -m benchmarks explain                    # explanation latency: LIME, CAM vs predict
  python -m benchmarks video                      # a 10 s 720p clip: frames/s, latency
  python -m benchmarks.baseline_flask --help      # the seed-style Flask baseline server
"""


@dataclass(frozen=True)
class RunFlags:
    """``run``'s flags that are not settings of the suite itself."""

    skip: tuple[str, ...] = option(
        (), "systems to leave out", names_of(ALL_SYSTEMS, allow_empty=True), metavar="NAME,NAME,..."
    )
    hey_requests: int = option(HeyConfig.requests, "requests of the hey run", int)
    quick: bool = option(
        False, "tiny settings for a pipeline check: c=1,4, 40 requests, 2 s, batches 1,8",
        parse_bool,
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LoadCommand(LoadLevels):
    """``load``: one running server, at fewer levels than the suite."""

    url: str = option(help="server base URL, e.g. http://127.0.0.1:8000")
    path: str = option("/v1/predict", "route to POST images to")
    metrics: bool = option(True, "the server has /metrics", parse_bool)
    concurrency: tuple[int, ...] = option(
        (1, 4, 16), CONCURRENCY_HELP, positive_ints, metavar="N,N,..."
    )


@dataclass(frozen=True)
class RawCommand:
    """``raw``: the models' sessions alone on pre-decoded batches."""

    providers: tuple[str, ...] | None = option(
        None,
        "comma-separated providers (default: all available)",
        optional_names,
        metavar="NAME,NAME,...",
    )
    images: Path | None = option(
        None, "image folder (default: synthetic JPEGs)", parse_optional_path
    )


@dataclass(frozen=True)
class SummaryCommand:
    """``summary``: SUMMARY.md and the plots again, from a results JSON."""

    out: Path = option(DEFAULT_OUT, "results folder", Path)
    plots: bool = option(True, "redraw the PNGs", parse_bool)
    readme: Path | None = option(
        None, "also rewrite this file's generated benchmark section", parse_optional_path
    )


def _add_run(commands) -> None:
    run = commands.add_parser(
        "run",
        help="the whole suite; writes benchmarks/results/<machine>-<date>.json, "
        "PNG plots and SUMMARY.md",
    )
    run.add_config(SuiteConfig)
    run.add_config(RunFlags)
    run.add_config(RawConfig, group=run.add_argument_group("raw onnxruntime limit"))
    run.add_config(PipelineConfig, group=run.add_argument_group("in-process pipeline limit"))
    run.add_config(PairedConfig, group=run.add_argument_group("paired rounds (limit and server)"))
    add_server_arg(run)


def _add_summary(commands) -> None:
    summary = commands.add_parser(
        "summary", help="regenerate SUMMARY.md and the plots from a results JSON"
    )
    summary.add_argument(
        "results", nargs="?", type=Path, help="results JSON (default: the newest in --out)"
    )
    summary.add_config(SummaryCommand)


def build_parser() -> argparse.ArgumentParser:
    parser = OptionsParser(
        prog="python -m benchmarks",
        description="Throughput / latency benchmarks of the inference server against raw "
        "in-process onnxruntime and a seed-style Flask + Keras baseline, on this machine.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    add_command(commands, "load", configs=(LoadCommand,),
                help="load one running server and print the measurements as JSON")  # fmt: skip
    add_command(commands, "raw", configs=(ModelChoice, RawCommand, RawConfig),
                help="in-process onnxruntime on pre-decoded batches (the raw limit)")  # fmt: skip
    _add_summary(commands)
    for add in (explain_bench.add_parser, bulkbench.add_parser, video_bench.add_parser,
                uploads.add_parser):  # fmt: skip
        add(commands)
    return parser


QUICK_RAW = {"batch_sizes": (1, 8), "seconds_per_batch_size": 0.3, "max_runs": 20}
QUICK_PIPELINE = {
    "batch_sizes": (1, 8), "decode_threads": (1, 2), "intra_op_threads": (1,),
    "seconds_per_setting": 0.3, "confirm_seconds": 0.3, "min_images": 8, "latency_runs": 8,
    "session_variants": (),
}  # fmt: skip


def _suite_config(args: argparse.Namespace) -> SuiteConfig:
    flags = options_from(RunFlags, args)
    raw, pipeline = options_from(RawConfig, args), options_from(PipelineConfig, args)
    paired = options_from(PairedConfig, args)
    systems = tuple(name for name in args.systems if name not in flags.skip)
    config = options_from(
        SuiteConfig, args, systems=systems, raw=raw, pipeline=pipeline, paired=paired,
        hey=HeyConfig(requests=flags.hey_requests), server_args=tuple(args.server_args),
    )  # fmt: skip
    if not flags.quick:
        return config
    return replace(
        config,
        concurrency=(1, 4),
        requests=40,
        duration_s=2.0,
        warmup_requests=4,
        raw=replace(raw, **QUICK_RAW),
        pipeline=replace(pipeline, **QUICK_PIPELINE),
        limit_concurrency=(1, 4),
        paired=PairedConfig(rounds=1, seconds=1.0, concurrency=4, latency_requests=10),
        hey=HeyConfig(concurrency=4, requests=40),
        first_request=FirstRequestConfig(idle_s=1.0, repeats=2),
        mixed=MixedConfig(requests=20, duration_s=2.0, num_samples=64),
    )


def cmd_run(args: argparse.Namespace) -> int:
    from benchmarks.runner import run_suite

    results, path = run_suite(_suite_config(args))
    from benchmarks.schema import validate_results

    print(f"results: {path}\nsummary: {path.parent / 'SUMMARY.md'}")
    for problem in validate_results(results):
        print(f"warning: incomplete results: {problem}", file=sys.stderr)
    for check in results["targets"]:
        print(f"  [{check['status']}] {check['target']}: {check['measured']}")
    failed = [item["name"] for item in results["systems"] if item.get("error")]
    if failed:
        print(f"warning: failed to start: {', '.join(failed)} (see SUMMARY.md)", file=sys.stderr)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from benchmarks.images import load_images
    from benchmarks.loadgen import LoadConfig, run_level_sync

    load = options_from(LoadCommand, args)
    images = load_images(load.images, load.image_limit)
    levels = []
    for concurrency in load.concurrency:
        config = LoadConfig(
            base_url=load.url,
            concurrency=concurrency,
            requests=load.requests,
            duration_s=load.duration_s,
            warmup_requests=load.warmup_requests,
            path=load.path,
            metrics_path="/metrics" if load.metrics else None,
        )
        level = run_level_sync(config, images)
        level.pop("latency_cdf_ms")
        levels.append(level)
        print(
            f"c={concurrency}: {level['images_per_s']:.1f} img/s, p50 {level['latency_ms']['p50']}"
            f" ms, p99 {level['latency_ms']['p99']} ms, errors {level['errors']}, "
            f"client CPU {level['client_cpu_percent']}%",
            file=sys.stderr,
        )
    print(json.dumps({"images": images.describe(), "levels": levels}, indent=1))
    return 0


def cmd_raw(args: argparse.Namespace) -> int:
    from benchmarks.images import load_images
    from benchmarks.runner import measure_raw
    from core.modelrepo import ModelRepository
    from serving.models import preferred_default

    choice, command = options_from(ModelChoice, args), options_from(RawCommand, args)
    repository = ModelRepository(choice.models)
    name = choice.name or preferred_default(repository.names()) or "lite0"
    entry = repository.entry(name, choice.version)
    raw = measure_raw(entry, load_images(command.images), options_from(RawConfig, args),
                      command.providers)  # fmt: skip
    for run in raw["runs"]:
        best = run.get("best") or {}
        print(f"{run['variant']}/{run['provider']}: best {best.get('images_per_s')} img/s at "
              f"batch {best.get('batch_size')}, batch-1 {run.get('batch1_latency_ms')} ms "
              f"{run.get('error', '')}", file=sys.stderr)  # fmt: skip
    print(json.dumps(raw, indent=1))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from benchmarks.report import latest_results, write_plots, write_summary

    command = options_from(SummaryCommand, args)
    try:
        path = args.results or latest_results(command.out)
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read results: {exc}", file=sys.stderr)
        return 2
    out_dir = path.parent
    if command.plots:
        write_plots(results, out_dir)
    print(write_summary(results, path, out_dir))
    if command.readme is not None:
        from benchmarks.readme import update_readme

        if not update_readme(command.readme, results, path.name):
            print(f"error: {command.readme} has no benchmark section markers", file=sys.stderr)
            return 2
        print(command.readme)
    return 0


COMMANDS = {
    "run": cmd_run,
    "load": cmd_load,
    "raw": cmd_raw,
    "summary": cmd_summary,
    "explain": explain_bench.command,
    "bulk": bulkbench.command,
    "video": video_bench.command,
    "uploads": uploads.command,
}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.servers import ServerStartError
    from core.modelrepo import InvalidMetadata, InvalidModelName, ModelNotFound

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ModelNotFound, InvalidMetadata, InvalidModelName, FileNotFoundError) as exc:
        print(
            f"error: {exc}\nhint: export a model first (make export) or pass --models/--model",
            file=sys.stderr,
        )
        return 2
    except (ServerStartError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
