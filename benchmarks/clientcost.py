"""How much CPU the load generator itself spends per request: raw asyncio client vs httpx.

On a 2-core machine the client competes with the server for CPU, so the cheaper client
is the default. This measures both against the same running server and the same images.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.images import load_images
from benchmarks.loadgen import CLIENTS, LoadConfig, run_level_sync
from benchmarks.runner import OUR_COMMON_ARGS
from benchmarks.servers import RunningServer, our_server_spec


def _measure(base_url: str, concurrency: tuple[int, ...], requests: int) -> list[dict]:
    images = load_images(None)
    rows = []
    for level in concurrency:
        for client in CLIENTS:
            config = LoadConfig(
                base_url=base_url,
                concurrency=level,
                requests=requests,
                duration_s=30.0,
                warmup_requests=max(8, level),
                client=client,
                metrics_path=None,
            )
            result = run_level_sync(config, images)
            rows.append(
                {
                    "client": client,
                    "concurrency": level,
                    "ok": result["ok"],
                    "images_per_s": result["images_per_s"],
                    "p50_ms": result["latency_ms"]["p50"],
                    "client_cpu_ms_per_request": result["client_cpu_ms_per_request"],
                    "client_cpu_percent": result["client_cpu_percent"],
                }
            )
    return rows


def compare_clients(
    models: Path, url: str | None, concurrency: tuple[int, ...], requests: int
) -> dict:
    """Both clients at each concurrency against ``url``, or against our server on ``models``."""
    if url:
        return {"server": url, "rows": _measure(url, concurrency, requests)}
    spec = our_server_spec("ours-clients", models, OUR_COMMON_ARGS)
    with RunningServer(spec) as server:
        return {
            "server": "our server, defaults",
            "rows": _measure(server.base_url, concurrency, requests),
        }
