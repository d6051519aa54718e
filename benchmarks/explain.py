"""``python -m benchmarks explain``: explanation latency next to a plain prediction.

For each model (default: every model in the repository) the real server app runs in this
process (ASGI, no network) on a one-model repository; requests go one at a time:

* ``/v1/predict``, ``/v1/explain?method=cam`` and the same with ``overlay=jpeg`` (what the
  web page asks for) alternate (so machine noise hits all alike); target: CAM median <= 1.5x
  predict median (the map comes from the same forward pass, the extra cost is drawing and
  encoding the overlay at the upload's size);
* ``/v1/explain?method=lime`` at ``--num-samples`` (default 1000) for each segmentation.
  The server's own breakdown (segmentation, sampling + scoring through the batcher, ridge
  fit, overlay) is kept, and right after each LIME request the model alone is timed on
  batches of the batcher's bulk, quiet-bulk and full sizes: the floor that ``num_samples``
  forward passes put under that request. Each request's overhead is over its
  own floor (the machine's speed drifts within minutes); the median request is reported.

Results go to ``benchmarks/results/explain-<machine>-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.cli import DEFAULT_OUT, names_of, optional_names, positive_int
from core.options import (
    check_at_least,
    option,
    options_from,
    parse_optional_path,
    parse_optional_str,
)

CAM_TARGET_RATIO = 1.5  # CAM median / predict median
LIME_OVERHEAD_TARGET = 0.10  # LIME median over the bare model scoring its samples
SEGMENTATIONS = ("quickshift", "slic")


@dataclass(frozen=True)
class ExplainBenchConfig:
    """What ``python -m benchmarks explain`` measures."""

    models: Path = option(Path("models"), "model repository", Path)
    names: tuple[str, ...] | None = option(
        None, "comma-separated models (default: every model in --models)", optional_names,
        metavar="NAME,NAME,...",
    )  # fmt: skip
    images: Path | None = option(  # None: data/detector/test if present, else synthetic JPEGs
        None, "image folder (default: data/detector/test, else synthetic)", parse_optional_path
    )
    image_limit: int = option(8, "images cycled through", positive_int, metavar="N")
    predict_repeats: int = option(
        30,
        "predict and CAM requests each (alternating)",
        positive_int,
        flag="--repeats",
        metavar="N",
    )
    lime_repeats: int = option(3, "LIME requests per segmentation", positive_int, metavar="N")
    num_samples: int = option(1000, "LIME samples", positive_int, metavar="N")
    num_features: int = option(8, "LIME regions", positive_int, metavar="N")
    segmentations: tuple[str, ...] = option(
        ("quickshift", "slic"),
        "comma-separated: quickshift, slic",
        names_of(SEGMENTATIONS),
        metavar="NAME,NAME,...",
    )
    model_rows: int = 256  # rows timed on the bare session for the per-row floor
    intra_op_threads: int = option(
        0, "onnxruntime intra-op threads (0: all cores)", int, flag="--threads"
    )
    out_dir: Path = option(DEFAULT_OUT, "results folder", Path, flag="--out")
    machine_name: str | None = option(
        None, "machine label in the file name (default: from CPU)", parse_optional_str,
        flag="--machine",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_at_least(self, 1, "model_rows")
        check_at_least(self, 0, "intra_op_threads")


# --- measuring ------------------------------------------------------------------------------


def single_model_repo(root: Path, name: str, folder: Path) -> Path:
    """``folder`` as a repository holding only ``name`` (a symlink): the app loads nothing else."""
    (folder / name).symlink_to((root / name).resolve(), target_is_directory=True)
    return folder


def summary(values_ms: Sequence[float]) -> dict:
    values = sorted(values_ms)
    if not values:
        return {"n": 0}
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p90": round(p90, 2),
        "min": round(values[0], 2),
        "mean": round(statistics.fmean(values), 2),
    }


@contextlib.asynccontextmanager
async def in_process_server(repo: Path, name: str, config: ExplainBenchConfig) -> AsyncIterator:
    """``(client, app)``: the real app with its lifespan, reached over ASGI (no sockets)."""
    import httpx

    from serving.app import create_app
    from serving.config import ServerConfig

    server_config = ServerConfig(
        models_dir=repo,
        default_model=name,
        latest_only=True,
        intra_op_threads=config.intra_op_threads,
        lime_max_samples=max(config.num_samples, 1000),
        max_queue_size=max(2048, config.num_samples),
        request_timeout_s=600.0,
        webui_dir=None,
    )
    app = create_app(server_config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=900.0
        ) as client:
            yield client, app


async def timed_post(client, path: str, payload: bytes, content_type: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = await client.post(path, content=payload, headers={"Content-Type": content_type})
    wall_ms = (time.perf_counter() - started) * 1000.0
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return wall_ms, response.json()


async def measure_model(name: str, repo: Path, images, config: ExplainBenchConfig, bar) -> dict:
    """Every measurement of one model (see the module docstring)."""
    payloads, kind = images.payloads, images.content_type
    async with in_process_server(repo, name, config) as (client, app):
        model = app.state.serving.pool.resolve(name)
        for index in range(3):  # warm-up: thread pools, first runs, importing lime
            await timed_post(client, "/v1/predict", payloads[index % len(payloads)], kind)
            await timed_post(client, "/v1/explain?method=cam", payloads[0], kind)
        # a full-size LIME request: its row buffers fault in for the first time (about 100 ms
        # per 40 MB on this VM, once per process), which no measured request should pay
        lime = f"/v1/explain?method=lime&num_samples={config.num_samples}"
        await timed_post(client, lime, payloads[0], kind)
        alternating = await predict_and_cam(client, images, config.predict_repeats, bar)
        lime_runs = {
            segmentation: await lime_requests(client, model, images, config, segmentation, bar)
            for segmentation in config.segmentations
        }
    floors = [run["bare_model_ms_per_row"] for runs in lime_runs.values() for run in runs]
    per_row_ms = statistics.median(floors)
    predict, cam = alternating["predict_ms"], alternating["cam_ms"]
    return {
        "name": name,
        "version": model.version,
        "providers": model.runtime.providers,
        "input_size": model.entry.input_size,
        "cam_shape": next(
            (o["shape"][1:] for o in model.entry.metadata["outputs"] if o["name"] == "cam"), None
        ),
        **alternating,
        "cam_over_predict": round(cam["median"] / predict["median"], 2),
        "cam_jpeg_over_predict": round(alternating["cam_jpeg_ms"]["median"] / predict["median"], 2),
        "lime": {
            segmentation: lime_summary(runs, config.num_samples)
            for segmentation, runs in lime_runs.items()
        },
        "bare_model_ms_per_row": round(per_row_ms, 3),  # median over the LIME requests' floors
        "bare_model_ms_for_lime_samples": round(per_row_ms * config.num_samples, 1),
        "batching": dataclasses.asdict(model.batcher.config),  # bulk run sizes in use
    }


CAM_ROUTES = (
    ("predict", "/v1/predict"),
    ("cam", "/v1/explain?method=cam"),  # PNG overlay, the API's default
    ("cam_jpeg", "/v1/explain?method=cam&overlay=jpeg"),  # what the web page asks for
)


async def predict_and_cam(client, images, repeats: int, bar) -> dict:
    """``repeats`` predict and CAM (PNG, JPEG overlay) requests, alternating: client and
    server times of each."""
    times: dict[str, list[float]] = {}
    for index in range(repeats):
        payload = images.payloads[index % len(images.payloads)]
        for key, path in CAM_ROUTES:
            wall, body = await timed_post(client, path, payload, images.content_type)
            times.setdefault(key, []).append(wall)
            times.setdefault(f"{key}_s", []).append(body["latency_ms"])
        bar.update(len(CAM_ROUTES))
    return {
        **{f"{key}_ms": summary(times[key]) for key, _ in CAM_ROUTES},
        **{f"{key}_server_ms": summary(times[f"{key}_s"]) for key, _ in CAM_ROUTES},
    }


async def lime_requests(
    client, model, images, config: ExplainBenchConfig, segmentation: str, bar
) -> list[dict]:
    """``config.lime_repeats`` LIME requests with one segmentation, the server's breakdown,
    and each request's overhead over the bare model timed right after it."""
    query = f"method=lime&num_samples={config.num_samples}&num_features={config.num_features}"
    path = f"/v1/explain?{query}&segmentation={segmentation}"
    runs = []
    for index in range(config.lime_repeats):
        payload = images.payloads[index % len(images.payloads)]
        wall, body = await timed_post(client, path, payload, images.content_type)
        per_row_ms, batch_size = bare_model_ms_per_row(model, images.payloads, config.model_rows)
        floor_ms = per_row_ms * config.num_samples
        runs.append(
            {
                "wall_ms": round(wall, 2),
                "bare_model_ms_per_row": round(per_row_ms, 6),
                "bare_model_batch_size": batch_size,
                "overhead": round(wall / floor_ms - 1, 4),
                "server_ms": body["latency_ms"],
                "segments": body["lime"]["segments"],
                "batcher_submissions": body["lime"]["batcher_submissions"],
                "timings_ms": body["lime"]["timings_ms"],
            }
        )
        bar.update(1)
    return runs


def lime_summary(runs: list[dict], num_samples: int) -> dict:
    return {
        "num_samples": num_samples,
        "wall_ms": summary([run["wall_ms"] for run in runs]),
        "overhead_median": round(statistics.median(run["overhead"] for run in runs), 4),
        "breakdown_median_ms": {
            key: round(statistics.median(run["timings_ms"][key] for run in runs), 2)
            for key in runs[0]["timings_ms"]
        },
        "runs": runs,
    }


def bare_model_ms_per_row(model, payloads: Sequence[bytes], rows: int) -> tuple[float, int]:
    """The session alone on real inputs, at the batcher's bulk, quiet-bulk and full batch
    sizes: the fastest per-row time and its batch size, the floor under LIME's scoring."""
    from core.preprocessing import PreprocessConfig, preprocess_bytes

    size = model.entry.input_size
    decoded = [preprocess_bytes(p, PreprocessConfig(size=size)) for p in payloads[:8]]
    config = model.batcher.config
    timings = []
    sizes = {config.bulk_batch_size, config.quiet_bulk_batch_size, config.max_batch_size}
    for batch_size in sorted(sizes - {0}):
        batch = np.stack([decoded[i % len(decoded)] for i in range(batch_size)])
        batch = batch.astype(np.float32)
        model.runtime.run(batch)
        runs = max(1, rows // batch_size)
        started = time.perf_counter()
        for _ in range(runs):
            model.runtime.run(batch)
        per_row = (time.perf_counter() - started) * 1000.0 / (runs * batch_size)
        timings.append((per_row, batch_size))
    return min(timings)


# --- targets, table, files ------------------------------------------------------------------


def evaluate_targets(models: list[dict]) -> list[dict]:
    checks = []
    for result in models:
        for key, overlay in (("cam", "PNG overlay, the API default"),
                             ("cam_jpeg", "JPEG overlay, as the web page asks")):  # fmt: skip
            ratio = result[f"{key}_over_predict"]
            checks.append(
                {
                    "target": f"{result['name']}: CAM ({overlay}) <= {CAM_TARGET_RATIO:g}x "
                    "predict (median)",
                    "measured": f"{ratio}x ({result[f'{key}_ms']['median']} vs "
                    f"{result['predict_ms']['median']} ms)",
                    "status": "pass" if ratio <= CAM_TARGET_RATIO else "fail",
                }
            )
        for segmentation, lime in result["lime"].items():
            overhead = lime["overhead_median"]
            each = ", ".join(f"{run['overhead']:+.1%}" for run in lime["runs"])
            checks.append(
                {
                    "target": f"{result['name']}: LIME ({segmentation}) overhead over the bare "
                    f"model scoring its samples <= {LIME_OVERHEAD_TARGET:.0%}",
                    "measured": f"{overhead:+.1%}, the median request ({each}; each over the "
                    "bare model timed right after it)",
                    "status": "pass" if overhead <= LIME_OVERHEAD_TARGET else "fail",
                }
            )
    return checks


def render_table(models: list[dict], segmentations: Sequence[str]) -> str:
    header = ["model", "predict ms", "CAM ms", "CAM/predict", "CAM jpeg/predict"]
    header += [f"LIME {s} ms" for s in segmentations] + ["model-only ms / LIME samples"]
    rows = [header]
    for result in models:
        row = [
            f"{result['name']}:{result['version']}",
            str(result["predict_ms"]["median"]),
            str(result["cam_ms"]["median"]),
            f"{result['cam_over_predict']}x",
            f"{result['cam_jpeg_over_predict']}x",
        ]
        row += [str(result["lime"][s]["wall_ms"]["median"]) for s in segmentations]
        row.append(str(result["bare_model_ms_for_lime_samples"]))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(medians, one request at a time, in-process ASGI)"


def run_benchmark(config: ExplainBenchConfig) -> tuple[dict, Path]:
    """Measure every model, write the JSON (again after each model), return it and its path."""
    from tqdm import tqdm

    from benchmarks.images import load_images
    from benchmarks.sysinfo import describe_machine, machine_slug
    from core.modelrepo import ModelRepository

    machine = describe_machine()
    images = load_images(config.images, config.image_limit)
    created = dt.datetime.now(dt.UTC)
    slug = config.machine_name or machine_slug(machine)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / f"explain-{slug}-{created:%Y-%m-%d}.json"
    report = {
        "benchmark": "explain",
        "created": created.isoformat(timespec="seconds"),
        "complete": False,
        "machine": machine,
        "method": "in-process ASGI (serving.app, no sockets), one request at a time; "
        "predict and CAM requests alternate; wall-clock per request on the client side",
        "notes": [
            "On a shared machine (other work on the same cores) these numbers are noisy: "
            "compare machine.load_average_at_start with load_average_at_end and rerun on a "
            "quiet machine."
        ],
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "images": images.describe(),
        "models": [],
        "targets": [],
    }
    per_model = len(CAM_ROUTES) * config.predict_repeats
    per_model += config.lime_repeats * len(config.segmentations)
    repository = ModelRepository(config.models)
    names = config.names or tuple(repository.names())
    if not names:
        raise FileNotFoundError(f"no model in {config.models}")
    with tqdm(total=per_model * len(names), desc="explain bench", unit="req") as bar:
        for index, name in enumerate(names):
            bar.set_postfix_str(name)
            entry = repository.entry(name)
            with tempfile.TemporaryDirectory(prefix="dfd-explain-") as folder:
                repo = single_model_repo(config.models, name, Path(folder))
                result = asyncio.run(measure_model(name, repo, images, config, bar))
            provenance = {"source": str(entry.path),
                          "training_data": entry.metadata.get("training_data")}  # fmt: skip
            report["models"].append({**result, **provenance})
            report["targets"] = evaluate_targets(report["models"])
            report["complete"] = index == len(names) - 1
            report["load_average_at_end"] = list(os.getloadavg())
            path.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive
    return report, path


# --- CLI ------------------------------------------------------------------------------------


def add_parser(commands) -> argparse.ArgumentParser:
    """Register the ``explain`` subcommand on ``python -m benchmarks``."""
    parser = commands.add_parser(
        "explain",
        help="explanation latency: LIME (1000 samples) and CAM vs plain predict, per model; "
        "writes benchmarks/results/explain-<machine>-<date>.json",
        description="Explanation latency next to a plain prediction, per model: CAM vs "
        "predict (alternating requests) and LIME at --num-samples for each segmentation, "
        "through the real server app in this process.",
    )
    parser.add_config(ExplainBenchConfig)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="pipeline check in about a minute: 5 repeats, 1 LIME run of 200 samples",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ExplainBenchConfig:
    config = options_from(ExplainBenchConfig, args)
    if args.quick:
        config = replace(config, predict_repeats=5, lime_repeats=1, num_samples=200)
    return config


def command(args: argparse.Namespace) -> int:
    """``python -m benchmarks explain``."""
    config = config_from_args(args)
    report, path = run_benchmark(config)
    print(render_table(report["models"], config.segmentations))
    for check in report["targets"]:
        print(f"  [{check['status']}] {check['target']}: {check['measured']}")
    print(f"results: {path}")
    return 0
