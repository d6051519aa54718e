"""One soak run: start the server, prime, warm up, load it, judge; write the results JSON."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.cli import write_results
from benchmarks.soak.config import SoakConfig
from benchmarks.soak.memory import MemorySampler
from benchmarks.soak.mix import Kind, Reference, build_traffic
from benchmarks.soak.report import update_readme
from benchmarks.soak.standin import write_standin_model
from benchmarks.soak.traffic import Tally, _prime, _traffic


def _resolve_model(config: SoakConfig, scratch: Path):
    from core.modelrepo import InvalidMetadata, ModelNotFound, ModelRepository

    if not config.synthetic:
        try:
            entry = ModelRepository(config.models).entry(config.model)
            return config.models, entry, "repository"
        except (ModelNotFound, InvalidMetadata, FileNotFoundError):
            pass
    root = write_standin_model(scratch / "models", config.model)
    entry = ModelRepository(root).entry(config.model)
    return root, entry, "synthetic stand-in (no servable model in the repository)"


def _ready(base_url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url + "/v2/health/ready", timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def run_soak(config: SoakConfig, progress: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Run one soak, write its results JSON (and the README section); return both."""
    import tempfile

    from benchmarks.servers import RunningServer, our_server_spec
    from benchmarks.sysinfo import describe_machine, machine_slug

    started_at = datetime.now(UTC)
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        repo, entry, source = _resolve_model(config, Path(scratch))
        reference = Reference(entry)
        kinds = build_traffic(entry, reference, "cam" in entry.output_names(), config.seed)
        args = ("--log-level", "warning", "--webui", "", *config.server_args)
        tally = Tally()
        with RunningServer(our_server_spec("soak", repo, args)) as server:
            run = _drive(server, kinds, config, tally, progress)
    results = {
        "kind": "soak",
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine_name": config.machine_name or machine_slug(machine),
        "machine": machine,
        "config": config.to_json(),
        "model": {
            "name": entry.name,
            "version": entry.version,
            "input_size": entry.input_size,
            "source": source,
        },
        "duration_s": config.duration_s,
        "warmup_s": run["warmup_s"],
        **_tally_report(tally, config.duration_s + run["warmup_s"]),
        "memory": run["memory"],
        "ready_after": run["ready_after"],
        "server_exit_code": run["exit_code"],
        "load_average_at_end": list(os.getloadavg()),
    }
    results["passed"] = (
        tally.lost == tally.mismatched == tally.unexpected == tally.server_errors == 0
        and run["memory"]["within_bound"]
        and run["ready_after"]
        and run["exit_code"] == 0
        and tally.good > 0
    )
    path = write_results(
        config.out_dir, "soak", results["machine_name"], results, stamp_key="started_at"
    )
    if config.readme is not None:
        update_readme(config.readme, config.out_dir)
    return results, path


def _drive(server, kinds: list[Kind], config: SoakConfig, tally: Tally, progress) -> dict:
    """Prime, warm up, soak, then stop the server: its memory along the way and its end."""
    sampler = MemorySampler(server.process.pid, config.sample_every_s)
    start_mb = sampler.sample()
    sampler.start()
    asyncio.run(_prime(server.base_url, kinds, config, tally))
    warmup_s = min(config.warmup_s, config.duration_s / 3)
    progress(f"soak: warm-up {warmup_s:.0f} s, then {config.duration_s:.0f} s of traffic")
    asyncio.run(_traffic(server.base_url, kinds, config, warmup_s, tally))
    warm_mb = sampler.sample()
    asyncio.run(_traffic(server.base_url, kinds, config, config.duration_s, tally))
    time.sleep(1.0)  # let in-flight work and its buffers go
    end_mb = sampler.sample()
    sampler.stop()
    ready_after = _ready(server.base_url)
    limit_mb = (warm_mb or 0.0) + config.memory_bound_mb
    memory = {
        "source": sampler.source,
        "start_mb": start_mb and round(start_mb, 1),
        "after_warmup_mb": warm_mb and round(warm_mb, 1),
        "max_mb": max(value for _, value in sampler.samples),
        "end_mb": end_mb and round(end_mb, 1),
        "bound": f"end <= after_warmup + {config.memory_bound_mb:g} MB",
        "limit_mb": round(limit_mb, 1),
        "within_bound": end_mb is not None and end_mb <= limit_mb,
        "samples": _thin(sampler.samples, 240),
    }
    return {"warmup_s": warmup_s, "memory": memory, "ready_after": ready_after,
            "exit_code": server.stop()}  # fmt: skip


def _tally_report(tally: Tally, seconds: float) -> dict:
    """What the traffic counted: requests by kind, statuses, failures, good latency."""
    total = tally.good + tally.bad
    return {
        "requests": {
            "total": total,
            "good": tally.good,
            "bad": tally.bad,
            "per_s": round(total / seconds, 1),
            "by_kind": dict(sorted(tally.sent.items())),
        },
        "errors_by_status": dict(sorted(tally.statuses.items())),
        "lost": tally.lost,
        "mismatched": tally.mismatched,
        "unexpected_status": tally.unexpected,
        "server_errors_5xx": tally.server_errors,
        "problems": tally.problems,
        "good_latency_ms": {
            "p50": _percentile(tally.latencies_ms, 50),
            "p99": _percentile(tally.latencies_ms, 99),
            "max": _percentile(tally.latencies_ms, 100),
        },
    }


def _thin(samples: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    step = max(1, -(-len(samples) // most))
    return samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else [])
