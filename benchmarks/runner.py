"""The whole suite: raw onnxruntime, the Flask baseline and our server, side by side.

One call of :func:`run_suite` measures, on this machine and the same model:

1. the raw limit: in-process onnxruntime on pre-decoded batches (every variant/provider);
2. every HTTP system, each started as its own subprocess on a free loopback port, loaded
   by this process at each concurrency level, then stopped;

and writes ``<out>/<machine>-<date>.json``, the plots and ``SUMMARY.md``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from benchmarks.cli import DEFAULT_OUT, names_of, optional_names, positive_ints
from benchmarks.firstrequest import FirstRequestConfig, measure_first_request
from benchmarks.hey import HeyConfig, run_hey
from benchmarks.images import ImageSet, load_images
from benchmarks.loadgen import LoadConfig, LoadLevels, run_level_sync
from benchmarks.mixed import MixedConfig, measure_mixed
from benchmarks.paired import PairedConfig, measure_paired
from benchmarks.pipeline import PipelineConfig, measure_pipeline
from benchmarks.raw import (
    RawConfig,
    available_providers,
    measure_model,
    measure_preprocessing,
    variant_files,
)
from benchmarks.servers import RunningServer, ServerSpec, ServerStartError, our_server_spec
from benchmarks.sysinfo import describe_machine, machine_slug
from core.modelrepo import ModelRepository
from core.options import (
    check_at_least,
    check_positive,
    option,
    parse_bool,
    parse_optional_int,
    parse_optional_path,
    parse_optional_str,
)
from serving.models import preferred_default

SCHEMA_VERSION = 1
ALL_SYSTEMS = ("limits", "baseline", "ours-off", "ours-on", "workers", "variants", "providers")
WORKERS = 2  # processes of the "workers" system
LIMIT_CONCURRENCY = (1, 4, 16, 64, 256)
# flags every run of our server gets: no access log to stderr, no web UI
OUR_COMMON_ARGS = ("--log-level", "warning", "--webui", "")


SYSTEMS_HELP = (
    "what to run: limits = in-process pipeline limit, server and hey per shipped model; "
    "baseline = Flask+Keras, ours-off = max_batch_size 1, ours-on = defaults, workers = 2 "
    "worker processes, variants = fp16/int8 files if present, providers = GPU providers"
)


@dataclass(frozen=True)
class SuiteConfig(LoadLevels):
    """Everything one benchmark run is told (stored in the results file); the load levels'
    settings come first (:class:`benchmarks.loadgen.LoadLevels`)."""

    models: Path = option(Path("models"), "model repository", Path)
    model: str | None = option(
        None, "model name in the repository (default: the server's default)", parse_optional_str
    )
    version: int | None = option(None, "model version (default: latest)", parse_optional_int)
    systems: tuple[str, ...] = option(
        ALL_SYSTEMS, SYSTEMS_HELP, names_of(ALL_SYSTEMS), metavar="NAME,NAME,..."
    )
    keras: Path | None = option(
        None, "Keras model for the baseline (default: metadata.json source.keras_model)",
        parse_optional_path,
    )  # fmt: skip
    providers: tuple[str, ...] | None = option(
        None, "comma-separated onnxruntime providers (tensorrt,cuda,cpu; default: all "
        "available)", optional_names, metavar="NAME,NAME,...",
    )  # fmt: skip
    raw: RawConfig = field(default_factory=RawConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    limit_models: tuple[str, ...] | None = option(
        None, "comma-separated models for the limits section (default: every shipped model)",
        optional_names, metavar="NAME,NAME,...",
    )  # fmt: skip
    limit_concurrency: tuple[int, ...] = option(
        LIMIT_CONCURRENCY,
        "concurrency levels of the limits section",
        positive_ints,
        metavar="N,N,...",
    )
    paired: PairedConfig = field(default_factory=PairedConfig)
    hey: HeyConfig = field(default_factory=HeyConfig)
    first_request: FirstRequestConfig = field(default_factory=FirstRequestConfig)
    mixed: MixedConfig | None = field(default_factory=MixedConfig)  # None: skip (default model)
    server_args: tuple[str, ...] = ()  # extra flags for every run of our server
    batch_metric: str | None = option(
        None, "Prometheus histogram of batch sizes (default: auto)", parse_optional_str
    )
    out_dir: Path = option(DEFAULT_OUT, "results folder", Path, flag="--out")
    machine_name: str | None = option(
        None, "machine label in file names (default: from the CPU)", parse_optional_str,
        flag="--machine",
    )  # fmt: skip
    startup_timeout_s: float = 180.0
    write_plots: bool = option(True, "draw the PNG plots", parse_bool, flag="--plots")

    def __post_init__(self) -> None:
        check_at_least(self, 1, "limit_concurrency")
        check_positive(self, "startup_timeout_s")

    def to_json(self) -> dict:
        data = asdict(self)
        return json.loads(json.dumps(data, default=str))


def system_specs(
    config: SuiteConfig, entry_path: Path, variants: list[str], served: str = "fp32"
) -> list[ServerSpec]:
    """The HTTP systems to measure, in order, per ``config.systems``; ``served`` is the
    variant the server picks by default (the entry's ``serve_precision``)."""
    wanted = set(config.systems)
    providers = available_providers(config.providers)
    main_provider = _label(providers[0]) if providers else "cpu"
    ours = (*OUR_COMMON_ARGS, "--providers", main_provider, *config.server_args)
    specs = [_baseline_spec(config, entry_path)] if "baseline" in wanted else []
    # (system, spec name, our server's flags, description), in the order they run
    candidates = [
        ("ours-off", "ours-batching-off", (*ours, "--max-batch-size", "1"),
         f"our server, max_batch_size=1, {main_provider}"),
        ("ours-on", "ours-batching-on", ours,
         f"our server, default batching, {served} model, {main_provider}"),
        ("workers", f"ours-workers-{WORKERS}", (*ours, "--workers", str(WORKERS)),
         f"our server, {WORKERS} worker processes sharing the port, {main_provider}"),
    ]  # fmt: skip
    candidates += [
        ("variants", f"ours-batching-on-{variant}", (*ours, "--precision", variant),
         f"our server, default batching, {variant} model, {main_provider}")
        for variant in variants if variant != served
    ]  # fmt: skip
    candidates += [
        ("providers", f"ours-batching-on-{_label(provider)}",
         (*OUR_COMMON_ARGS, "--providers", _label(provider), *config.server_args),
         f"our server, default batching, {_label(provider)} provider")
        for provider in providers[1:]
    ]  # fmt: skip
    specs += [
        _ours(config, name, args, description)
        for system, name, args, description in candidates
        if system in wanted
    ]
    return specs


def _baseline_spec(config: SuiteConfig, entry_path: Path) -> ServerSpec:
    """The seed-style Flask + Keras server."""
    argv = [sys.executable, "-m", "benchmarks.baseline_flask", "--entry", str(entry_path)]
    if config.keras is not None:
        argv += ["--keras", str(config.keras)]
    argv += ["--host", "{host}", "--port", "{port}"]
    return ServerSpec(
        name="baseline-flask",
        argv=tuple(argv),
        has_metrics=False,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        startup_timeout_s=config.startup_timeout_s,
        description="Flask + Keras model.predict per request, Werkzeug threaded server",
    )


def _label(provider: str) -> str:
    from benchmarks.raw import PROVIDER_LABELS

    return PROVIDER_LABELS.get(provider, provider)


def _ours(config: SuiteConfig, name: str, args: tuple[str, ...], description: str) -> ServerSpec:
    spec = our_server_spec(name, config.models, args, description)
    return ServerSpec(
        name=spec.name,
        argv=spec.argv,
        description=description,
        startup_timeout_s=config.startup_timeout_s,
    )


def model_summary(entry) -> dict:
    """What the results file says about the model: identity, files, test metrics."""
    metadata = entry.metadata
    metrics = (metadata.get("metrics") or {}).get("test") or {}
    trained = bool(metrics) and not metadata.get("untrained", False)
    return {
        "name": entry.name,
        "version": entry.version,
        "entry": str(entry.path),
        "variants": sorted(variant_files(entry.path, metadata)),
        "serve_precision": metadata.get("serve_precision", "fp32"),
        "test_metrics": metrics,
        "trained": trained,
        "training_data": metadata.get("training_data"),
        "source": metadata.get("source"),
        "note": None if trained else "untrained model: speed only, no accuracy claim",
    }


def measure_raw(entry, images, raw: RawConfig, providers: tuple[str, ...] | None) -> dict:
    """The in-process onnxruntime limit for every variant file on every provider."""
    files = variant_files(entry.path, entry.metadata)
    runs = []
    steps = [(variant, path, provider) for variant, path in files.items()
             for provider in available_providers(providers)]  # fmt: skip
    for variant, path, provider in tqdm(steps, desc="raw onnxruntime", unit="run"):
        try:
            runs.append(measure_model(path, provider, images, raw, variant))
        except Exception as exc:  # one broken variant must not sink the suite
            runs.append(
                {
                    "variant": variant,
                    "provider": _label(provider),
                    "file": path.name,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    return {
        "preprocessing": measure_preprocessing(images, entry.input_size),
        "runs": runs,
    }


def measure_system(
    spec: ServerSpec,
    config: SuiteConfig,
    images,
    progress: tqdm,
    concurrency_levels: tuple[int, ...] | None = None,
    hey: HeyConfig | None = None,
    first_request: FirstRequestConfig | None = None,
    mixed: MixedConfig | None = None,
    paired: Callable[[LoadConfig], dict] | None = None,
) -> dict:
    """Start one server, run every concurrency level against it (then, if given, the paired
    rounds, ``hey``, the first request after idling and predictions beside explanations),
    stop it. ``paired`` gets a load against this server and returns the paired rounds."""
    result: dict = {"name": spec.name, "description": spec.description, "levels": []}
    levels = concurrency_levels or config.concurrency
    try:
        server = RunningServer(spec, cwd=Path.cwd())
        server.start()
    except ServerStartError as exc:
        result["error"] = str(exc)
        progress.update(len(levels))
        return result
    try:
        result["startup_s"] = round(server.startup_s or 0.0, 2)
        result["info"] = _server_info(server)
        for concurrency in levels:
            result["levels"].append(_measure_level(server, spec, config, images, concurrency))
            level = result["levels"][-1]
            progress.set_postfix_str(
                f"{spec.name} c={concurrency}: {level['images_per_s']:.1f} img/s", refresh=False
            )
            progress.update(1)
        if paired is not None:
            result["paired"] = paired(_load_config(server, spec, config, 1))
        payload = median_payload(images)
        if hey is not None:
            result["hey"] = run_hey(server.base_url, payload, images.content_type, hey)
        if first_request is not None:
            result["first_request"] = measure_first_request(
                server.base_url, payload, images.content_type, first_request
            )
        if mixed is not None:
            result["mixed"] = measure_mixed(server.base_url, images, payload, mixed)
    finally:
        exit_code = server.stop()
        result["exit_code"] = exit_code
    return result


def _measure_level(
    server: RunningServer, spec: ServerSpec, config: SuiteConfig, images, concurrency: int
) -> dict:
    """One concurrency level against a running server, with the server's CPU time."""
    load = _load_config(server, spec, config, concurrency)
    cpu_before = server.cpu_seconds()
    level = run_level_sync(load, images)
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None:
        level["server_cpu_s"] = round(cpu_after - cpu_before, 3)
        level["server_cpu_percent"] = round(
            100.0 * (cpu_after - cpu_before) / max(level["wall_s"], 1e-9), 1
        )
    return level


def _load_config(
    server: RunningServer, spec: ServerSpec, config: SuiteConfig, concurrency: int
) -> LoadConfig:
    """The suite's load at ``concurrency`` against a running server."""
    return LoadConfig(
        base_url=server.base_url,
        concurrency=concurrency,
        requests=config.requests,
        duration_s=config.duration_s,
        warmup_requests=max(config.warmup_requests, concurrency),
        metrics_path="/metrics" if spec.has_metrics else None,
        batch_metric=config.batch_metric,
    )


def median_payload(images: ImageSet) -> bytes:
    """The payload of median size (the one file an outside tool sends over and over)."""
    return sorted(images.payloads, key=len)[len(images.payloads) // 2]


def limit_ratios(pipeline: dict, server: dict) -> dict:
    """Server images/s over the pipeline limit per concurrency; c=1 p50 over the in-process
    batch-1 latency. With paired rounds (``server["paired"]``) the limit and the latency are
    their medians, measured while the server ran, and the c=64 ratio and the c=1 overhead
    are the medians of the rounds' own; without them, the figures from before the server."""
    paired = server.get("paired")
    limit = paired["limit_images_per_s"] if paired else pipeline["limit"]["images_per_s"]
    ratios = {
        str(level["concurrency"]): round(level["images_per_s"] / limit, 3)
        for level in server.get("levels", [])
    }
    if paired:
        in_process, lone = paired["in_process_ms_p50"], paired["server_c1_ms_p50"]
        overhead = paired["c1_overhead_ms_p50"]
    else:
        single = next((lv for lv in server.get("levels", []) if lv["concurrency"] == 1), None)
        in_process = pipeline["batch1_latency"]["ms_p50"]
        lone = single["latency_ms"]["p50"] if single else None
        overhead = round(lone - in_process, 3) if lone is not None else None
    hey = server.get("hey") or {}
    return {
        "server_over_limit": ratios,
        "paired_server_over_limit": paired["server_over_limit"] if paired else None,
        "hey_over_limit": round(hey["images_per_s"] / limit, 3) if "images_per_s" in hey else None,
        "in_process_ms_p50": in_process,
        "server_c1_ms_p50": lone,
        "c1_overhead_ms_p50": overhead,
    }


def measure_limits(config: SuiteConfig, repository: ModelRepository, images: ImageSet) -> list:
    """For every shipped model: the pipeline limit, our server against it at each level
    (default batching, the model as default), paired rounds of limit and server in turn,
    ``hey`` beside our load generator, and the ratios."""
    names = config.limit_models or tuple(repository.names())
    default = preferred_default(repository.names())
    results = []
    for name in names:
        entry = repository.entry(name)
        pipeline = measure_pipeline(entry, images, config.pipeline)
        args = (*OUR_COMMON_ARGS, "--providers", "cpu", "--default-model", name,
                *config.server_args)  # fmt: skip
        spec = _ours(config, f"ours-{name}", args, f"our server, default batching, {name}")
        paired = None
        if config.paired.rounds:
            paired = functools.partial(
                measure_paired, entry, images, config.pipeline, pipeline, config=config.paired
            )
        progress = tqdm(total=len(config.limit_concurrency), desc=f"server {name}", unit="level")
        with progress:
            server = measure_system(
                spec, config, images, progress, config.limit_concurrency, config.hey,
                config.first_request, config.mixed if name == default else None, paired,
            )  # fmt: skip
        results.append(
            {
                "model": model_summary(entry),
                "pipeline": pipeline,
                "server": server,
                "ratios": limit_ratios(pipeline, server) if "error" not in server else None,
            }
        )
    return results


def _server_info(server: RunningServer) -> dict | None:
    """The server's own description (``/v1/models`` for ours, ``/v1/info`` for the baseline)."""
    import urllib.request

    for path in ("/v1/info", "/v1/models"):
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=5) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            continue
    return None


def run_suite(config: SuiteConfig) -> tuple[dict, Path]:
    """Run everything, write the results JSON (plus plots and SUMMARY.md); return both."""
    from benchmarks.report import write_outputs
    from benchmarks.targets import evaluate_targets

    started = datetime.now(UTC)
    repository = ModelRepository(config.models)
    name = config.model or preferred_default(repository.names()) or "lite0"
    entry = repository.entry(name, config.version)
    images = load_images(config.images, config.image_limit)
    machine = describe_machine()
    results: dict = {
        "schema": SCHEMA_VERSION,
        "created": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "machine_name": config.machine_name or machine_slug(machine),
        "config": config.to_json(),
        "model": model_summary(entry),
        "images": images.describe(),
    }
    wall_started = time.perf_counter()
    results["raw"] = measure_raw(entry, images, config.raw, config.providers)
    if "limits" in config.systems:
        results["limits"] = measure_limits(config, repository, images)
    model = results["model"]
    specs = system_specs(config, entry.path, model["variants"], model["serve_precision"])
    progress = tqdm(total=len(specs) * len(config.concurrency), desc="HTTP systems", unit="level")
    with progress:
        results["systems"] = [measure_system(spec, config, images, progress) for spec in specs]
    results["duration_s"] = round(time.perf_counter() - wall_started, 1)
    results["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["targets"] = evaluate_targets(results)
    path = write_outputs(results, config.out_dir, plots=config.write_plots)
    return results, path
