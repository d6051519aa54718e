"""The issue's speed targets, checked against a results dict (never against typed numbers).

Every check returns ``status`` = ``met`` | ``missed`` | ``not measured`` and, when
missed, a ``shortfall`` sentence saying by how much.
"""

from __future__ import annotations

OURS = "ours-batching-on"
BASELINE = "baseline-flask"
TARGET_CONCURRENCY = 64


def system(results: dict, name: str) -> dict | None:
    """The measured system called ``name`` (None if absent or failed to start)."""
    for item in results.get("systems", []):
        if item.get("name") == name and item.get("levels"):
            return item
    return None


def level(item: dict | None, concurrency: int) -> dict | None:
    if item is None:
        return None
    return next((lv for lv in item["levels"] if lv["concurrency"] == concurrency), None)


def raw_run(results: dict, variant: str = "fp32", provider: str | None = None) -> dict | None:
    """The raw onnxruntime run of ``variant`` on ``provider`` (default: the first measured)."""
    runs = [run for run in results.get("raw", {}).get("runs", []) if "error" not in run]
    for run in runs:
        if run["variant"] == variant and (provider is None or run["provider"] == provider):
            return run
    return None


def load_concurrency(results: dict) -> int | None:
    """64 when measured, else the highest concurrency of the configuration."""
    levels = results.get("config", {}).get("concurrency") or []
    if not levels:
        return None
    return TARGET_CONCURRENCY if TARGET_CONCURRENCY in levels else max(levels)


def _check(
    key: str,
    target: str,
    value: float | None,
    limit: float,
    higher_is_better: bool,
    measured: str,
    shortfall: str,
    missing: str,
) -> dict:
    if value is None:
        return {
            "id": key,
            "target": target,
            "status": "not measured",
            "measured": missing,
            "value": None,
            "limit": limit,
            "shortfall": None,
        }
    met = value >= limit if higher_is_better else value <= limit
    return {
        "id": key,
        "target": target,
        "status": "met" if met else "missed",
        "measured": measured,
        "value": round(value, 4),
        "limit": limit,
        "shortfall": None if met else shortfall,
    }


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def evaluate_targets(results: dict) -> list[dict]:
    """All four targets of the issue, in order."""
    conc = load_concurrency(results)
    ours = system(results, OURS)
    baseline = system(results, BASELINE)
    ours_hi, base_hi = level(ours, conc or 0), level(baseline, conc or 0)
    provider = raw_run(results)["provider"] if raw_run(results) else None
    raw = raw_run(results, "fp32", provider)
    checks = []

    raw_best = raw["best"]["images_per_s"] if raw else None
    ours_ips = ours_hi["images_per_s"] if ours_hi else None
    fraction = _ratio(ours_ips, raw_best)
    checks.append(
        _check(
            "raw_fraction",
            f"our server at c={conc} >= 90% of raw in-process onnxruntime throughput",
            fraction,
            0.90,
            True,
            measured=f"{_n(ours_ips)} vs {_n(raw_best)} img/s = {100 * (fraction or 0):.0f}%",
            shortfall=f"short by {100 * (0.90 - (fraction or 0)):.0f} percentage points",
            missing="our server or the raw measurement is missing",
        )
    )

    base_ips = base_hi["images_per_s"] if base_hi else None
    speedup = _ratio(ours_ips, base_ips)
    checks.append(
        _check(
            "baseline_throughput",
            f"our server >= 5x the seed baseline's throughput at c={conc}",
            speedup,
            5.0,
            True,
            measured=f"{_n(ours_ips)} vs {_n(base_ips)} img/s = {speedup or 0:.2f}x",
            shortfall=f"short by {5.0 - (speedup or 0):.2f}x (reached {speedup or 0:.2f}x of 5x)",
            missing="our server or the baseline is missing, or the baseline answered nothing",
        )
    )

    ours_p99 = ours_hi["latency_ms"]["p99"] if ours_hi else None
    base_p99 = base_hi["latency_ms"]["p99"] if base_hi else None
    p99_ratio = _ratio(ours_p99, base_p99)
    checks.append(
        _check(
            "baseline_p99",
            f"our server's p99 <= 1/3 of the seed baseline's p99 at c={conc}",
            p99_ratio,
            1 / 3,
            False,
            measured=f"{_n(ours_p99)} vs {_n(base_p99)} ms = {p99_ratio or 0:.2f} of baseline",
            shortfall=(
                f"p99 is {_n(ours_p99)} ms, {(ours_p99 or 0) - (base_p99 or 0) / 3:.1f} ms over "
                f"the limit of {(base_p99 or 0) / 3:.1f} ms"
            ),
            missing="our server or the baseline is missing",
        )
    )

    ours_c1 = level(ours, 1)
    p50_c1 = ours_c1["latency_ms"]["p50"] if ours_c1 else None
    raw_b1 = raw["batch1_latency_ms"] if raw else None
    overhead = p50_c1 - raw_b1 if p50_c1 is not None and raw_b1 is not None else None
    pre = results.get("raw", {}).get("preprocessing", {}).get("ms_p50")
    checks.append(
        _check(
            "http_overhead",
            "HTTP overhead at c=1 <= 2 ms over raw onnxruntime (p50, batch 1)",
            overhead,
            2.0,
            False,
            measured=(
                f"server p50 {_n(p50_c1, 2)} ms - raw batch-1 {_n(raw_b1, 2)} ms "
                f"= {overhead or 0:.2f} ms "
                f"(decode + resize alone: {_n(pre, 2)} ms in-process)"
            ),
            shortfall=f"{(overhead or 0) - 2.0:.2f} ms over the 2 ms budget",
            missing="our server at c=1 or the raw batch-1 measurement is missing",
        )
    )

    trt = raw_run(results, "fp32", "tensorrt")
    cuda = raw_run(results, "fp32", "cuda")
    gpu_ratio = _ratio(
        trt["best"]["images_per_s"] if trt else None, cuda["best"]["images_per_s"] if cuda else None
    )
    no_gpu = not results.get("machine", {}).get("gpus")
    checks.append(
        _check(
            "tensorrt_fp16",
            "TensorRT FP16 >= 3x ORT-CUDA FP32 throughput (GPU only)",
            gpu_ratio,
            3.0,
            True,
            measured=f"{gpu_ratio or 0:.2f}x",
            shortfall=f"short by {3.0 - (gpu_ratio or 0):.2f}x",
            missing="not measured: no GPU"
            if no_gpu
            else "not measured: TensorRT or CUDA provider unavailable",
        )
    )
    return checks
