"""One soak run: start the server, prime, warm up, load it, judge; write the results JSON."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.cli import write_results
from drills.soak.config import SoakConfig
from drills.soak.memory import MemorySampler
from drills.soak.mix import Kind, Reference, access_kinds, build_traffic
from drills.soak.report import update_readme
from drills.soak.slowclients import SlowClients, SlowClientSettings
from drills.soak.standin import STANDIN_NAME, write_standin_model
from drills.soak.traffic import Keys, Tally, prime, run_traffic


def resolve_model(config: SoakConfig, scratch: Path):
    """``(repository, entry, source)``: ``config.model`` (default: the model the server would
    choose) from the repository, else a synthetic stand-in written under ``scratch``."""
    from core.modelrepo import InvalidMetadata, ModelNotFound, ModelRepository
    from serving.models import preferred_default

    repository = ModelRepository(config.models)
    name = config.model or preferred_default(repository.names())
    if not config.synthetic and name is not None:
        try:
            return config.models, repository.entry(name), "repository"
        except (ModelNotFound, InvalidMetadata, FileNotFoundError):
            pass
    name = name or STANDIN_NAME
    root = write_standin_model(scratch / "models", name)
    entry = ModelRepository(root).entry(name)
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
        repo, entry, source = resolve_model(config, Path(scratch))
        reference = Reference(entry)
        kinds = build_traffic(entry, reference, "cam" in entry.output_names(), config.seed)
        keys, access_args = _access_setup(config, Path(scratch))
        kinds += access_kinds() if config.access else []
        # requests name no model: make the one the expected answers are computed for the default
        args = ("--log-level", "warning", "--webui", "", "--default-model", entry.name,
                *access_args, *config.server_args)  # fmt: skip
        tally = Tally()
        with RunningServer(our_server_spec("soak", repo, args)) as server:
            run = _drive(server, kinds, config, tally, keys, progress)
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
        "nice": os.nice(0),
    }
    if config.access:
        elapsed_s = config.duration_s + run["warmup_s"]
        results["access"] = _access_results(config, tally, run["slow"], elapsed_s)
    results["passed"] = (
        tally.lost == tally.mismatched == tally.unexpected == tally.server_errors == 0
        and run["memory"]["within_bound"]
        and run["ready_after"]
        and run["exit_code"] == 0
        and tally.good > 0
        and results.get("access", {}).get("passed", True)
    )
    path = write_results(
        config.out_dir, "soak", results["machine_name"], results, stamp_key="started_at"
    )
    if config.readme is not None:
        update_readme(config.readme, config.out_dir)
    return results, path


def _drive(
    server, kinds: list[Kind], config: SoakConfig, tally: Tally, keys: Keys, progress
) -> dict:
    """Prime, warm up, soak (with the slow clients held open), then stop the server: its
    memory along the way and its end."""
    warmup_s = min(config.warmup_s, config.duration_s / 3)
    with _slow_clients(config, server, warmup_s) as slow:
        sampler = MemorySampler(server.process.pid, config.sample_every_s)
        start_mb = sampler.sample()
        sampler.start()
        asyncio.run(prime(server.base_url, kinds, config, tally, keys))
        progress(f"soak: warm-up {warmup_s:.0f} s, then {config.duration_s:.0f} s of traffic")
        asyncio.run(run_traffic(server.base_url, kinds, config, warmup_s, tally, keys))
        warm_mb = sampler.sample()
        asyncio.run(run_traffic(server.base_url, kinds, config, config.duration_s, tally, keys))
        time.sleep(1.0)  # let in-flight work and its buffers go
        end_mb = sampler.sample()
        sampler.stop()
        if slow is not None:
            slow.open_now()
        ready_after = _ready(server.base_url)
        exit_code = server.stop()
    return {
        "warmup_s": warmup_s,
        "memory": _memory_report(sampler, (start_mb, warm_mb, end_mb), config.memory_bound_mb),
        "ready_after": ready_after,
        "exit_code": exit_code,
        "slow": slow,
    }


def _memory_report(sampler: MemorySampler, marks: tuple, bound_mb: float) -> dict:
    """Server RSS at start, after the warm-up and at the end, judged against the bound."""
    start_mb, warm_mb, end_mb = marks
    limit_mb = (warm_mb or 0.0) + bound_mb
    return {
        "source": sampler.source,
        "start_mb": start_mb and round(start_mb, 1),
        "after_warmup_mb": warm_mb and round(warm_mb, 1),
        "max_mb": max(value for _, value in sampler.samples),
        "end_mb": end_mb and round(end_mb, 1),
        "bound": f"end <= after_warmup + {bound_mb:g} MB",
        "limit_mb": round(limit_mb, 1),
        "within_bound": end_mb is not None and end_mb <= limit_mb,
        "samples": _thin(sampler.samples, 240),
    }


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


def _access_setup(config: SoakConfig, scratch: Path) -> tuple[Keys, tuple[str, ...]]:
    """With ``access``: a key per good client and one for the flooder, their hash file, and
    the server flags turning keys and rate limits on."""
    if not config.access:
        return Keys(), ()
    from serving.auth import hash_line, new_key

    clients = tuple(new_key() for _ in range(config.concurrency))
    flooder = new_key()
    names = [f"client-{index}" for index in range(len(clients))] + ["flooder"]
    path = scratch / "api-keys.txt"
    lines = [hash_line(key, name) for key, name in zip((*clients, flooder), names, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    args = ("--api-keys", str(path), "--rate", str(config.rate), "--burst", str(config.burst),
            "--header-timeout-s", str(config.header_timeout_s))  # fmt: skip
    return Keys(clients, flooder), args


@contextlib.contextmanager
def _slow_clients(config: SoakConfig, server, warmup_s: float) -> Iterator[SlowClients | None]:
    """Slow-header connections held open for the whole run (with ``access``)."""
    if not config.access or config.slow_clients < 1:
        yield None
        return
    settings = SlowClientSettings("127.0.0.1", server.port, config.slow_clients)
    with SlowClients(settings, config.duration_s + warmup_s + 30.0) as slow:
        slow.wait_until_open(config.slow_clients)
        yield slow


def _access_results(config: SoakConfig, tally: Tally, slow, elapsed_s: float) -> dict:
    """The flooder's answers and the slow clients' fate, with their checks."""
    flood = dict(sorted(tally.flood.items()))
    ok, limited = flood.get("200", 0), flood.get("429", 0)
    # a token bucket never lets more through than its burst plus rate x time (+ the prime)
    bound = config.burst + config.rate * (elapsed_s + 5.0)
    slow_summary = slow.summary() if slow is not None else None
    held_max = (slow_summary or {}).get("held_s", {}).get("max")
    checks = {
        "flood_only_200_or_429": set(flood) <= {"200", "429"},
        "flood_got_429": limited > 0,
        "flood_ok_within_rate_bound": ok <= bound,
        "slow_clients_cut_off_at_deadline": slow_summary is None
        or (slow_summary["cut_off_by_server"] > 0 and held_max <= config.header_timeout_s + 5.0),
    }
    return {
        "keys": config.concurrency + 1,
        "rate": config.rate,
        "burst": config.burst,
        "client_rate": config.client_rate,
        "flood_rate": config.flood_rate,
        "flood_by_status": flood,
        "flood_ok_bound": round(bound, 1),
        "slow_clients": slow_summary,
        "header_timeout_s": config.header_timeout_s,
        "checks": checks,
        "passed": all(checks.values()),
    }


def _thin(samples: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    step = max(1, -(-len(samples) // most))
    return samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else [])
