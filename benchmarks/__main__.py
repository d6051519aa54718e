"""``python -m benchmarks``: the throughput / latency suite and its parts.

Subcommands: ``run`` (everything, writes benchmarks/results/), ``load`` (load one running
server), ``raw`` (in-process onnxruntime only), ``clients`` (what the load generator's
HTTP client costs), ``summary`` (regenerate SUMMARY.md and plots from a results JSON),
``explain``, ``bulk``, ``soak`` and ``video`` (their own results JSON each).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import bulkbench, slowloris, soak
from benchmarks import evidence as evidence_bench
from benchmarks import explain as explain_bench
from benchmarks import video as video_bench
from benchmarks.firstrequest import FirstRequestConfig
from benchmarks.hey import HeyConfig
from benchmarks.loadgen import CLIENTS
from benchmarks.mixed import MixedConfig
from benchmarks.pipeline import PipelineConfig
from benchmarks.runner import ALL_SYSTEMS, DEFAULT_OUT, LIMIT_CONCURRENCY, SuiteConfig

EPILOG = """examples:
  python -m benchmarks run                        # the full suite (make bench), about 5-10 min
  python -m benchmarks run --quick                # seconds: tiny load, to check the pipeline
  python -m benchmarks run --skip baseline --concurrency 1,16
  python -m benchmarks load --url http://127.0.0.1:8000 --concurrency 1,8
  python -m benchmarks raw --models models --model cnn
  python -m benchmarks clients --models models    # raw asyncio client vs httpx, client CPU
  python -m benchmarks summary                    # SUMMARY.md from the newest results JSON
  python -m benchmarks explain                    # explanation latency: LIME, CAM vs predict
  python -m benchmarks evidence                   # provenance evidence cost per image
  python -m benchmarks video                      # a 10 s 720p clip: frames/s, latency
  python -m benchmarks.baseline_flask --help      # the seed-style Flask baseline server
"""


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, (), []) or "(default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [value for value in values if value not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}: choose from {', '.join(choices)}"
            )
        return values

    return parse


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, default=Path("models"), help="model repository")
    parser.add_argument(
        "--model", default=None, help="model name in the repository (default: the server's default)"
    )
    parser.add_argument("--version", type=int, help="model version (default: latest)")


def _add_load_args(parser: argparse.ArgumentParser, concurrency: str = "1,4,16,64") -> None:
    parser.add_argument(
        "--concurrency",
        type=_ints,
        default=concurrency,
        help="comma-separated concurrency levels (requests in flight)",
    )
    parser.add_argument("--requests", type=int, default=400, help="measured requests per level")
    parser.add_argument(
        "--duration", type=float, default=8.0, help="time limit per level in seconds"
    )
    parser.add_argument("--warmup", type=int, default=16, help="unmeasured requests per level")
    parser.add_argument("--client", choices=CLIENTS, default="raw", help="HTTP client")
    parser.add_argument(
        "--images",
        type=Path,
        help="folder of images to send (default: data/detector/test, else synthetic 256x256 JPEGs)",
    )
    parser.add_argument("--image-limit", type=int, default=64, help="most images to load")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput / latency benchmarks of the inference server against raw "
        "in-process onnxruntime and a seed-style Flask + Keras baseline, on this machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="the whole suite; writes benchmarks/results/<machine>-<date>.json, "
        "PNG plots and SUMMARY.md",
        formatter_class=_Help,
    )
    _add_model_args(run)
    _add_load_args(run)
    run.add_argument(
        "--systems",
        type=_names(ALL_SYSTEMS),
        default=",".join(ALL_SYSTEMS),
        help="what to run: limits = in-process pipeline limit, server and hey per shipped "
        "model; baseline = Flask+Keras, ours-off = max_batch_size 1, ours-on = defaults, "
        "workers = 2 worker processes, variants = fp16/int8 files if present, "
        "providers = GPU providers",
    )
    run.add_argument(
        "--limit-models",
        help="comma-separated models for the limits section (default: every shipped model)",
    )
    run.add_argument(
        "--limit-concurrency",
        type=_ints,
        default=",".join(str(c) for c in LIMIT_CONCURRENCY),
        help="concurrency levels of the limits section",
    )
    run.add_argument(
        "--pipeline-seconds",
        type=float,
        default=PipelineConfig.seconds_per_setting,
        help="time per pipeline-limit setting (batch size x decode threads x intra-op threads)",
    )
    run.add_argument(
        "--hey-requests", type=int, default=HeyConfig.requests, help="requests of the hey run"
    )
    run.add_argument("--skip", type=_names(ALL_SYSTEMS), default=(), help="systems to leave out")
    run.add_argument(
        "--keras",
        type=Path,
        help="Keras model for the baseline (default: metadata.json source.keras_model)",
    )
    run.add_argument(
        "--providers",
        help="comma-separated onnxruntime providers (tensorrt,cuda,cpu; default: all available)",
    )
    run.add_argument(
        "--batch-sizes",
        type=_ints,
        default="1,2,4,8,16,32,64",
        help="raw onnxruntime batch sizes",
    )
    run.add_argument(
        "--raw-seconds", type=float, default=2.0, help="time budget per raw batch size"
    )
    run.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for every run of our server (repeat; use --server-arg=--flag)",
    )
    run.add_argument("--batch-metric", help="Prometheus histogram of batch sizes (default: auto)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    run.add_argument("--machine", help="machine label in file names (default: from the CPU)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument(
        "--quick",
        action="store_true",
        help="tiny settings for a pipeline check: c=1,4, 40 requests, 2 s, batches 1,8",
    )

    load = commands.add_parser(
        "load",
        help="load one running server and print the measurements as JSON",
        formatter_class=_Help,
    )
    load.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8000")
    load.add_argument("--path", default="/v1/predict", help="route to POST images to")
    load.add_argument("--no-metrics", action="store_true", help="server has no /metrics")
    _add_load_args(load, "1,4,16")

    raw = commands.add_parser(
        "raw",
        help="in-process onnxruntime on pre-decoded batches (the raw limit)",
        formatter_class=_Help,
    )
    _add_model_args(raw)
    raw.add_argument("--providers", help="comma-separated providers (default: all available)")
    raw.add_argument("--batch-sizes", type=_ints, default="1,2,4,8,16,32,64")
    raw.add_argument("--seconds", type=float, default=2.0, help="time budget per batch size")
    raw.add_argument("--images", type=Path, help="image folder (default: synthetic JPEGs)")

    clients = commands.add_parser(
        "clients",
        help="measure the load generator's CPU cost: raw asyncio client vs httpx",
        formatter_class=_Help,
    )
    _add_model_args(clients)
    clients.add_argument("--url", help="use this running server instead of starting ours")
    clients.add_argument("--concurrency", type=_ints, default="16")
    clients.add_argument("--requests", type=int, default=300)

    summary = commands.add_parser(
        "summary",
        help="regenerate SUMMARY.md and the plots from a results JSON",
        formatter_class=_Help,
    )
    summary.add_argument(
        "results", nargs="?", type=Path, help="results JSON (default: the newest in --out)"
    )
    summary.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    summary.add_argument("--no-plots", action="store_true", help="do not redraw the PNGs")
    summary.add_argument(
        "--readme", type=Path, help="also rewrite this file's generated benchmark section"
    )
    explain_bench.add_parser(commands)
    bulkbench.add_parser(commands)
    evidence_bench.add_parser(commands)
    video_bench.add_parser(commands)
    soak.add_soak_parser(commands)
    slowloris.add_parser(commands)
    return parser


def _suite_config(args: argparse.Namespace) -> SuiteConfig:
    from benchmarks.raw import RawConfig

    systems = tuple(name for name in args.systems if name not in args.skip)
    providers = tuple(args.providers.split(",")) if args.providers else None
    raw = RawConfig(batch_sizes=args.batch_sizes, seconds_per_batch_size=args.raw_seconds)
    pipeline = PipelineConfig(seconds_per_setting=args.pipeline_seconds)
    limit_models = tuple(args.limit_models.split(",")) if args.limit_models else None
    config = SuiteConfig(
        models=args.models,
        model=args.model,
        version=args.version,
        images=args.images,
        image_limit=args.image_limit,
        concurrency=args.concurrency,
        requests=args.requests,
        duration_s=args.duration,
        warmup_requests=args.warmup,
        client=args.client,
        systems=systems,
        keras=args.keras,
        providers=providers,
        raw=raw,
        pipeline=pipeline,
        limit_models=limit_models,
        limit_concurrency=args.limit_concurrency,
        hey=HeyConfig(requests=args.hey_requests),
        server_args=tuple(args.server_arg),
        batch_metric=args.batch_metric,
        out_dir=args.out,
        machine_name=args.machine,
        write_plots=not args.no_plots,
    )
    if args.quick:
        from dataclasses import replace

        config = replace(
            config,
            concurrency=(1, 4),
            requests=40,
            duration_s=2.0,
            warmup_requests=4,
            raw=replace(raw, batch_sizes=(1, 8), seconds_per_batch_size=0.3, max_runs=20),
            pipeline=replace(
                pipeline,
                batch_sizes=(1, 8),
                decode_threads=(1, 2),
                intra_op_threads=(1,),
                seconds_per_setting=0.3,
                min_images=8,
                latency_runs=8,
                session_variants=(),
            ),
            limit_concurrency=(1, 4),
            hey=HeyConfig(concurrency=4, requests=40),
            first_request=FirstRequestConfig(idle_s=1.0, repeats=2),
            mixed=MixedConfig(requests=20, duration_s=2.0, num_samples=64),
        )
    return config


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

    images = load_images(args.images, args.image_limit)
    levels = []
    for concurrency in args.concurrency:
        config = LoadConfig(
            base_url=args.url,
            concurrency=concurrency,
            requests=args.requests,
            duration_s=args.duration,
            warmup_requests=args.warmup,
            path=args.path,
            client=args.client,
            metrics_path=None if args.no_metrics else "/metrics",
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
    from benchmarks.raw import RawConfig, available_providers, measure_model, variant_files
    from core.modelrepo import ModelRepository
    from serving.models import preferred_default

    repository = ModelRepository(args.models)
    name = args.model or preferred_default(repository.names()) or "lite0"
    entry = repository.entry(name, args.version)
    images = load_images(args.images)
    config = RawConfig(batch_sizes=args.batch_sizes, seconds_per_batch_size=args.seconds)
    providers = available_providers(tuple(args.providers.split(",")) if args.providers else None)
    runs = []
    for variant, path in variant_files(entry.path, entry.metadata).items():
        for provider in providers:
            run = measure_model(path, provider, images, config, variant)
            print(
                f"{variant}/{run['provider']}: best {run['best']['images_per_s']:.1f} img/s at "
                f"batch {run['best']['batch_size']}, batch-1 {run['batch1_latency_ms']} ms",
                file=sys.stderr,
            )
            runs.append(run)
    print(json.dumps(runs, indent=1))
    return 0


def cmd_clients(args: argparse.Namespace) -> int:
    from benchmarks.clientcost import compare_clients

    report = compare_clients(args.models, args.url, args.concurrency, args.requests)
    print(json.dumps(report, indent=1))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from benchmarks.report import latest_results, write_plots, write_summary

    try:
        path = args.results or latest_results(args.out)
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read results: {exc}", file=sys.stderr)
        return 2
    out_dir = path.parent
    if not args.no_plots:
        write_plots(results, out_dir)
    print(write_summary(results, path, out_dir))
    if args.readme is not None:
        from benchmarks.readme import update_readme

        if not update_readme(args.readme, results, path.name):
            print(f"error: {args.readme} has no benchmark section markers", file=sys.stderr)
            return 2
        print(args.readme)
    return 0


COMMANDS = {
    "run": cmd_run,
    "load": cmd_load,
    "raw": cmd_raw,
    "clients": cmd_clients,
    "summary": cmd_summary,
    "explain": explain_bench.command,
    "bulk": bulkbench.command,
    "evidence": evidence_bench.command,
    "video": video_bench.command,
    "soak": soak.cmd_soak,
    "slowloris": slowloris.command,
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
