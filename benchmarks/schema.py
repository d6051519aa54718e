"""Check that a results dict is complete: every section and every number the summary needs."""

from __future__ import annotations

Number = int | float

TOP_LEVEL = {
    "schema": int,
    "created": str,
    "machine": dict,
    "machine_name": str,
    "config": dict,
    "model": dict,
    "images": dict,
    "raw": dict,
    "systems": list,
    "targets": list,
    "duration_s": Number,
}
MACHINE = {
    "cpu": str,
    "cores": int,
    "memory_gib": Number,
    "os": str,
    "python": str,
    "packages": dict,
    "gpus": list,
}
MODEL = {
    "name": str,
    "version": int,
    "entry": str,
    "variants": list,
    "test_metrics": dict,
    "trained": bool,
}
LEVEL = {
    "concurrency": int,
    "requests": int,
    "ok": int,
    "errors": dict,
    "wall_s": Number,
    "images_per_s": Number,
    "latency_ms": dict,
    "latency_cdf_ms": list,
    "client_cpu_s": Number,
    "client_cpu_percent": Number,
}
RAW_RUN = {
    "variant": str,
    "provider": str,
    "batches": list,
    "best": dict,
    "batch1_latency_ms": Number | None,
}
PIPELINE_LIMIT = {
    "batch_size": int,
    "decode_threads": int,
    "intra_op_threads": int,
    "images_per_s": Number,
}
PAIRED_ROUND = {
    "limit_images_per_s": Number,
    "server_images_per_s": Number,
    "server_over_limit": Number,
    "in_process_ms_p50": Number,
    "server_c1_ms_p50": Number,
    "c1_overhead_ms_p50": Number,
}
PAIRED = {"concurrency": int, "rounds": list, **PAIRED_ROUND}  # medians of the rounds
TARGET_IDS = (
    "pipeline_fraction",
    "http_overhead",
    "baseline_throughput",
    "baseline_p99",
    "no_errors",
    "predictions_beside_explanations",
    "tensorrt_fp16",
)


def _check(where: str, data: object, spec: dict, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append(f"{where} is not an object")
        return
    for key, kind in spec.items():
        if key not in data:
            problems.append(f"{where}.{key} is missing")
        elif not isinstance(data[key], kind) or isinstance(data[key], bool) is not (kind is bool):
            problems.append(f"{where}.{key} has type {type(data[key]).__name__}")


def _check_limit(item: dict, problems: list[str]) -> None:
    """One model of the limits section: its pipeline limit, latency and server levels."""
    name = item.get("model", {}).get("name", "?")
    pipeline = item.get("pipeline", {})
    _check(f"limits[{name}].pipeline.limit", pipeline.get("limit"), PIPELINE_LIMIT, problems)
    _check(f"limits[{name}].pipeline.batch1_latency", pipeline.get("batch1_latency"),
           {"ms_p50": Number}, problems)  # fmt: skip
    server = item.get("server", {})
    if not server.get("error"):
        for level in server.get("levels", []):
            _check(f"limits[{name}].c{level.get('concurrency')}", level, LEVEL, problems)
    paired = server.get("paired")
    if paired is not None:  # optional (--paired-rounds 0), complete when present
        _check(f"limits[{name}].paired", paired, PAIRED, problems)
        for index, row in enumerate(paired.get("rounds") or []):
            _check(f"limits[{name}].paired.rounds[{index}]", row, PAIRED_ROUND, problems)


def validate_results(results: dict) -> list[str]:
    """Problems found in ``results`` (an empty list means valid and complete)."""
    problems: list[str] = []
    _check("results", results, TOP_LEVEL, problems)
    if problems:
        return problems
    _check("machine", results["machine"], MACHINE, problems)
    _check("model", results["model"], MODEL, problems)
    for index, run in enumerate(results["raw"].get("runs", [])):
        if "error" not in run:
            _check(f"raw.runs[{index}]", run, RAW_RUN, problems)
    if not results["raw"].get("runs"):
        problems.append("raw.runs is empty")
    if "ms_p50" not in results["raw"].get("preprocessing", {}):
        problems.append("raw.preprocessing.ms_p50 is missing")
    concurrency = results["config"].get("concurrency") or []
    for system in results["systems"]:
        name = system.get("name", "?")
        if system.get("error"):
            continue
        measured = [level.get("concurrency") for level in system.get("levels", [])]
        if measured != list(concurrency):
            problems.append(f"system {name} measured c={measured}, configured {concurrency}")
        for level in system.get("levels", []):
            where = f"systems[{name}].c{level.get('concurrency')}"
            _check(where, level, LEVEL, problems)
            latency = level.get("latency_ms", {})
            if level.get("ok") and any(
                latency.get(k) is None for k in ("p50", "p95", "p99", "max")
            ):
                problems.append(f"{where}.latency_ms lacks percentiles")
            if level.get("ok") and len(level.get("latency_cdf_ms", [])) != 101:
                problems.append(f"{where}.latency_cdf_ms must hold 101 quantiles")
            if level.get("ok", 0) + sum(level.get("errors", {}).values()) != level.get("requests"):
                problems.append(f"{where}: ok + errors != requests")
    for item in results.get("limits", []):
        _check_limit(item, problems)
    ids = [target.get("id") for target in results["targets"]]
    if tuple(ids) != TARGET_IDS:
        problems.append(f"targets are {ids}, expected {list(TARGET_IDS)}")
    return problems
