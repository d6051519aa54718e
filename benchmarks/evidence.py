"""``python -m benchmarks evidence``: what reading provenance evidence costs per image, next
to the model's preprocessing of the same bytes (both single-threaded, in process), and
what the server's on-the-loop check (``EvidenceReader.nothing_to_read``) costs.

Files are made on the spot (:mod:`benchmarks.evidence_files`) at a photo-like size: a plain
JPEG without metadata (the common case: only the container walk runs), a camera JPEG with
EXIF and GPS, a Stable Diffusion PNG, a JPEG with XMP, and a C2PA-signed JPEG (signature and
hard-binding hash checked). Writes ``benchmarks/results/evidence-<machine>-<date>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import evidence_files as files
from benchmarks.cli import ResultsConfig, add_command, positive_int, utc_stamp, write_results
from benchmarks.sysinfo import describe_machine, machine_slug
from core.options import check_at_least, check_positive, option, options_from
from core.preprocessing import PreprocessConfig, preprocess_bytes
from core.provenance import EvidenceReader

SAMPLES: dict[str, Callable[[int], bytes]] = {
    "plain JPEG, no metadata": lambda side: files.plain_jpeg(side=side),
    "camera JPEG (EXIF, GPS)": lambda side: files.camera_jpeg(side=side),
    "PNG with SD parameters": lambda side: files.png_with_parameters(side=side),
    "JPEG with XMP source type": lambda side: files.jpeg_with_xmp(side=side),
    "C2PA-signed JPEG": lambda side: files.c2pa_signed_jpeg(side=side),
}


def median_us(function: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Median wall time of one call in microseconds, over as many calls as fit ``seconds``."""
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e6, 1), len(times)


def measure(side: int, seconds: float) -> list[dict]:
    reader = EvidenceReader()
    config = PreprocessConfig()
    rows = []
    try:
        for name, make in SAMPLES.items():
            data = make(side)
            quick_us, _ = median_us(lambda data=data: reader.nothing_to_read(data), seconds / 4)
            evidence_us, calls = median_us(lambda data=data: reader.read(data), seconds)
            preprocess_us, _ = median_us(lambda data=data: preprocess_bytes(data, config), seconds)
            findings = reader.read(data)
            rows.append({
                "file": name, "bytes": len(data), "quick_check_us": quick_us,
                "nothing_to_read": reader.nothing_to_read(data),
                "evidence_us": evidence_us, "calls": calls,
                "preprocess_us": preprocess_us,
                "evidence_over_preprocess": round(evidence_us / preprocess_us, 4),
                "findings": [f"{f['kind']}:{f['strength']}" for f in findings],
            })  # fmt: skip
    finally:
        reader.close()
    return rows


@dataclass(frozen=True)
class EvidenceBenchConfig(ResultsConfig):
    """What ``python -m benchmarks evidence`` measures."""

    side: int = option(1024, "image side in pixels", positive_int, metavar="N")
    seconds: float = option(2.0, "time per measurement", float)

    def __post_init__(self) -> None:
        check_positive(self, "seconds")
        check_at_least(self, 1, "side")


def add_parser(commands) -> argparse.ArgumentParser:
    """Register the ``evidence`` subcommand on ``python -m benchmarks``."""
    return add_command(
        commands, "evidence", description=__doc__.split("\n\n")[0],
        help="cost of reading provenance evidence per image vs preprocessing; writes "
        "benchmarks/results/evidence-<machine>-<date>.json",
        configs=(EvidenceBenchConfig,),
    )  # fmt: skip


def command(args: argparse.Namespace) -> int:
    """``python -m benchmarks evidence``."""
    config = options_from(EvidenceBenchConfig, args)
    machine = describe_machine()
    report = {
        "benchmark": "evidence",
        "created": utc_stamp(),
        "machine": machine,
        "side": config.side,
        "rows": measure(config.side, config.seconds),
    }
    print(write_results(config.out_dir, "evidence", machine_slug(machine), report))
    for row in report["rows"]:
        print(f"  {row['file']:<28} {row['bytes'] / 1024:6.0f} KiB  check "
              f"{row['quick_check_us']:5.1f} us  evidence "
              f"{row['evidence_us']:9.1f} us  preprocess {row['preprocess_us'] / 1000:7.2f} ms  "
              f"({row['evidence_over_preprocess']:.2%})")  # fmt: skip
    return 0
