"""Describe the machine and software a benchmark ran on (stored in every results file)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "numpy",
    "pillow",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "starlette",
    "uvicorn",
    "httpx",
    "flask",
    "werkzeug",
    "tensorflow",
    "keras",
    "tensorrt",
    "matplotlib",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def gpus() -> list[str]:
    """NVIDIA GPU names from ``nvidia-smi``, or an empty list."""
    try:
        answer = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in answer.stdout.splitlines() if line.strip()]


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> str | None:
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip() or None


def describe_machine() -> dict:
    """CPU, cores, memory, OS, GPUs, Python and package versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "gpus": gpus(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def machine_slug(machine: dict) -> str:
    """A short file-name-safe machine label, e.g. ``intel-xeon-platinum-8481c-2c``."""
    cpu = re.sub(r"\((r|tm)\)|cpu|@.*$|processor", "", machine.get("cpu", ""), flags=re.I)
    words = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
    words = "-".join(words.split("-")[:4]) or "machine"
    gpu = machine.get("gpus") or []
    suffix = f"{machine.get('cores_usable') or machine.get('cores')}c"
    if gpu:
        suffix += "-" + re.sub(r"[^a-z0-9]+", "-", gpu[0].split(",")[0].lower()).strip("-")
    return f"{words}-{suffix}"
