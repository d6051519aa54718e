"""An outside check on our load generator: the same server driven by ``hey`` (rakyll/hey).

``hey -o csv`` prints one line per request (response time, status code, offset); throughput,
percentiles and status counts are computed here from those lines, the same way for every run.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class HeyConfig:
    """One ``hey`` run: how many requests at what concurrency, against which path."""

    concurrency: int = 64
    requests: int = 1000
    path: str = "/v1/predict"
    timeout_s: int = 20

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.requests < self.concurrency:
            raise ValueError(
                f"need concurrency >= 1 and requests >= concurrency, got "
                f"concurrency={self.concurrency}, requests={self.requests}"
            )


def hey_available() -> str | None:
    """Path of the ``hey`` executable, or None."""
    return shutil.which("hey")


def parse_csv(text: str) -> dict:
    """Summary of ``hey -o csv`` output: requests, statuses, images/s and latency percentiles."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError("hey printed no request lines")
    seconds = np.asarray([float(row["response-time"]) for row in rows])
    ends = np.asarray([float(row["offset"]) for row in rows]) + seconds
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status-code"]] = statuses.get(row["status-code"], 0) + 1
    ok = statuses.get("200", 0)
    wall = float(ends.max())
    return {
        "requests": len(rows),
        "status_counts": dict(sorted(statuses.items())),
        "wall_s": round(wall, 3),
        "images_per_s": round(ok / wall, 2) if wall > 0 else 0.0,
        "latency_ms": {
            name: round(float(np.percentile(seconds, q)) * 1000.0, 2)
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99))
        },
    }


def run_hey(base_url: str, payload: bytes, content_type: str, config: HeyConfig) -> dict:
    """POST ``payload`` ``config.requests`` times at ``config.concurrency`` with hey."""
    executable = hey_available()
    if executable is None:
        return {"error": "hey is not installed (Debian package 'hey')"}
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "body"
        body.write_bytes(payload)
        argv = [
            executable, "-n", str(config.requests), "-c", str(config.concurrency),
            "-t", str(config.timeout_s), "-m", "POST", "-T", content_type, "-D", str(body),
            "-o", "csv", base_url + config.path,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": f"hey exited {done.returncode}: {done.stderr.strip()[-500:]}"}
    summary = parse_csv(done.stdout)
    return {
        "tool": "hey",
        "concurrency": config.concurrency,
        "payload_bytes": len(payload),
        **summary,
    }
