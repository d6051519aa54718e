"""The speed targets, checked against a results dict (never against typed numbers).

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
    *,
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


def server_at(item: dict, concurrency: int) -> tuple[float | None, float | None]:
    """One model's server images/s at ``concurrency`` and its fraction of the pipeline limit:
    the median paired round where the rounds ran at that concurrency, else the level's."""
    ratios = item.get("ratios") or {}
    paired = (item.get("server") or {}).get("paired") or {}
    if paired.get("concurrency") == concurrency:
        return paired["server_images_per_s"], ratios.get("paired_server_over_limit")
    found = level(item["server"], concurrency)
    fraction = ratios.get("server_over_limit", {}).get(str(concurrency))
    return (found["images_per_s"] if found else None), fraction


def limits_at(results: dict, concurrency: int) -> list[tuple[str, float | None]]:
    """(model, server images/s over its pipeline limit at ``concurrency``) per shipped model."""
    return [
        (item["model"]["name"], server_at(item, concurrency)[1])
        for item in results.get("limits", [])
    ]


def worst(pairs: list[tuple[str, float | None]], pick) -> float | None:
    """``pick`` (min or max) over every model's value; None unless every model has one."""
    values = [value for _, value in pairs if value is not None]
    return pick(values) if values and len(values) == len(pairs) else None


def check_pipeline_fraction(results: dict) -> dict:
    pairs = limits_at(results, TARGET_CONCURRENCY)
    lowest = worst(pairs, min)
    return _check(
        "pipeline_fraction",
        f"our server at c={TARGET_CONCURRENCY} >= 95% of the in-process pipeline limit "
        "(decode + preprocess + onnxruntime, no HTTP), every shipped model",
        lowest,
        0.95,
        higher_is_better=True,
        measured=", ".join(f"{name} {100 * (v or 0):.0f}%" for name, v in pairs),
        shortfall=f"the worst model is {100 * (0.95 - (lowest or 0)):.0f} points short",
        missing=f"the limits section or its c={TARGET_CONCURRENCY} level is missing",
    )


def check_http_overhead(results: dict) -> dict:
    pairs = [
        (item["model"]["name"], (item.get("ratios") or {}).get("c1_overhead_ms_p50"))
        for item in results.get("limits", [])
    ]
    highest = worst(pairs, max)
    return _check(
        "http_overhead",
        "HTTP overhead at c=1 <= 1 ms p50 over the in-process pipeline at batch 1, every model",
        highest,
        1.0,
        higher_is_better=False,
        measured=", ".join(f"{name} {_n(v, 2)} ms" for name, v in pairs),
        shortfall=f"{(highest or 0) - 1.0:.2f} ms over the 1 ms budget",
        missing="the limits section or its c=1 level is missing",
    )


def check_baseline(results: dict) -> list[dict]:
    conc = load_concurrency(results) or 0
    ours, baseline = level(system(results, OURS), conc), level(system(results, BASELINE), conc)
    ours_ips = ours["images_per_s"] if ours else None
    base_ips = baseline["images_per_s"] if baseline else None
    speedup = _ratio(ours_ips, base_ips)
    ours_p99 = ours["latency_ms"]["p99"] if ours else None
    base_p99 = baseline["latency_ms"]["p99"] if baseline else None
    p99_ratio = _ratio(ours_p99, base_p99)
    return [
        _check(
            "baseline_throughput",
            f"our server >= 10x the seed baseline's throughput at c={conc}",
            speedup,
            10.0,
            higher_is_better=True,
            measured=f"{_n(ours_ips)} vs {_n(base_ips)} img/s = {speedup or 0:.2f}x",
            shortfall=f"short by {10.0 - (speedup or 0):.2f}x",
            missing="our server or the baseline is missing, or the baseline answered nothing",
        ),
        _check(
            "baseline_p99",
            f"our server's p99 <= 1/5 of the seed baseline's p99 at c={conc}",
            p99_ratio,
            1 / 5,
            higher_is_better=False,
            measured=f"{_n(ours_p99)} vs {_n(base_p99)} ms = {p99_ratio or 0:.2f} of baseline",
            shortfall=f"p99 is {(p99_ratio or 0) * 5:.1f}x the limit of 1/5 of the baseline's",
            missing="our server or the baseline is missing",
        ),
    ]


def unexpected_errors(results: dict) -> dict[str, int]:
    """Error statuses other than 503 at any level of our servers (503 is the overload answer)."""
    found: dict[str, int] = {}
    servers = [item["server"] for item in results.get("limits", [])]
    servers += [item for item in results.get("systems", []) if item["name"] != BASELINE]
    for item in servers:
        counts = [lv["errors"] for lv in item.get("levels", [])]
        counts.append({k: v for k, v in (item.get("hey") or {}).get("status_counts", {}).items()
                       if k != "200"})  # fmt: skip
        for errors in counts:
            for status, count in errors.items():
                if status != "503":
                    found[status] = found.get(status, 0) + count
    return found


def check_errors(results: dict) -> dict:
    levels = [lv["concurrency"] for item in results.get("limits", [])
              for lv in item["server"].get("levels", [])]  # fmt: skip
    errors = unexpected_errors(results) if levels else None
    count = None if errors is None else float(sum(errors.values()))
    return _check(
        "no_errors",
        "no error answers up to c=256 except 503 with Retry-After",
        count,
        0.0,
        higher_is_better=False,
        measured=f"up to c={max(levels, default=0)}: "
        + (", ".join(f"{k}: {v}" for k, v in sorted((errors or {}).items())) or "none"),
        shortfall="errors other than 503 were answered",
        missing="the limits section is missing",
    )


def check_mixed(results: dict) -> dict:
    mixed = next((item["server"]["mixed"] for item in results.get("limits", [])
                  if "mixed" in item["server"]), None)  # fmt: skip
    ratio = mixed.get("p99_ratio") if mixed else None
    return _check(
        "predictions_beside_explanations",
        "prediction p99 with LIME explanations in flight <= 2x its p99 alone",
        ratio,
        2.0,
        higher_is_better=False,
        measured=(
            f"c={mixed['concurrency']}, {mixed['explanations_in_flight']} LIME in flight: "
            f"p99 {_n(mixed['beside_explanations']['latency_ms']['p99'])} vs "
            f"{_n(mixed['alone']['latency_ms']['p99'])} ms alone = {ratio or 0:.2f}x"
            if mixed
            else "—"
        ),
        shortfall=f"{(ratio or 0) - 2.0:.2f}x over the 2x budget",
        missing="the mixed-load measurement is missing",
    )


def check_tensorrt(results: dict) -> dict:
    trt = raw_run(results, "fp32", "tensorrt")
    cuda = raw_run(results, "fp32", "cuda")
    gpu_ratio = _ratio(
        trt["best"]["images_per_s"] if trt else None, cuda["best"]["images_per_s"] if cuda else None
    )
    no_gpu = not results.get("machine", {}).get("gpus")
    return _check(
        "tensorrt_fp16",
        "TensorRT FP16 >= 3x ORT-CUDA FP32 throughput (GPU only)",
        gpu_ratio,
        3.0,
        higher_is_better=True,
        measured=f"{gpu_ratio or 0:.2f}x",
        shortfall=f"short by {3.0 - (gpu_ratio or 0):.2f}x",
        missing="not measured: no GPU" if no_gpu else "not measured: TensorRT or CUDA missing",
    )


def evaluate_targets(results: dict) -> list[dict]:
    """Every speed target, in order."""
    return [
        check_pipeline_fraction(results),
        check_http_overhead(results),
        *check_baseline(results),
        check_errors(results),
        check_mixed(results),
        check_tensorrt(results),
    ]
