"""How much of the time does a thread of the loaded server hold the GIL? (py-spy)

Starts our server on the default model, drives it with ``hey`` at c=64, and samples it twice
with ``py-spy record`` (100 Hz): once every active thread, once only the thread holding the
GIL. GIL busy = GIL samples / (rate x seconds); near 100 % would mean Python-level work is the
bottleneck and decoding should move to processes. Writes
``benchmarks/results/gil-<machine>-<date>.json``.

    python scripts/gil_profile.py [--model lite0] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.hey import HeyConfig, run_hey
from benchmarks.images import load_images
from benchmarks.runner import median_payload
from benchmarks.servers import RunningServer, our_server_spec
from benchmarks.sysinfo import describe_machine, machine_slug

RATE_HZ = 100


def record(pid: int, seconds: float, gil_only: bool) -> Counter:
    """py-spy samples per leaf function (``raw`` collapsed stacks)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "stacks.txt"
        argv = [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(RATE_HZ),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ]
        argv += ["--gil"] if gil_only else []  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True)
        leaves: Counter = Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            leaves[stack.split(";")[-1]] += int(count)
    return leaves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each py-spy run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    images = load_images(None, 64)
    spec = our_server_spec("gil", args.models, ("--default-model", args.model, "--webui", "",
                                                "--log-level", "warning"))  # fmt: skip
    with RunningServer(spec) as server:
        load = HeyConfig(concurrency=64, requests=100_000)
        hey = threading.Thread(
            target=run_hey,
            args=(server.base_url, median_payload(images), images.content_type, load),
            daemon=True,
        )
        pid = server.process.pid
        hey.start()
        every = record(pid, args.seconds, gil_only=False)
        gil = record(pid, args.seconds, gil_only=True)
        server.stop()
    gil_samples = sum(gil.values())
    machine = describe_machine()
    report = {
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "model": args.model,
        "load": "hey, c=64, POST /v1/predict",
        "seconds": args.seconds,
        "rate_hz": RATE_HZ,
        "active_thread_samples": sum(every.values()),
        "gil_samples": gil_samples,
        "gil_busy_fraction": round(gil_samples / (RATE_HZ * args.seconds), 3),
        "top_active": every.most_common(12),
        "top_holding_gil": gil.most_common(12),
    }
    path = args.out / f"gil-{machine_slug(machine)}-{report['created'][:10]}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{path}: GIL busy {report['gil_busy_fraction']:.0%} of the time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
