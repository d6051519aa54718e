"""Render ``SUMMARY.md`` from a results dict. Every number in it comes from the JSON.

Regenerate with ``python -m benchmarks summary [results.json]``; never edit by hand.
"""

from __future__ import annotations

from benchmarks.targets import evaluate_targets

STATUS_MARK = {"met": "✅ met", "missed": "❌ missed", "not measured": "— not measured"}
CLIENT_CPU_WARNING = 80.0  # client above this % of one core may be limiting the load


def fmt(value, digits: int = 1) -> str:
    """A number for a table cell (``—`` when absent)."""
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:.{digits}f}"
    return str(value)


def _machine(results: dict) -> str:
    machine = results["machine"]
    packages = machine.get("packages", {})
    versions = ", ".join(
        f"{name} {packages[name]}"
        for name in ("onnxruntime", "onnxruntime-gpu", "uvicorn", "starlette", "tensorflow")
        if name in packages
    )
    gpus = "; ".join(machine.get("gpus") or []) or "no GPU"
    load = machine.get("load_average_at_start")
    load_text = f"; load average at start {fmt(load[0], 2)}" if load else ""
    return (
        f"**Machine** `{results['machine_name']}`: {machine.get('cpu')}, "
        f"{machine.get('cores_usable')} usable of {machine.get('cores')} cores, "
        f"{fmt(machine.get('memory_gib'))} GiB RAM, {gpus}, {machine.get('os')}; "
        f"Python {machine.get('python')}, {versions}{load_text}."
    )


def _model(results: dict) -> str:
    model = results["model"]
    metrics = model.get("test_metrics") or {}
    if model.get("trained") and metrics:
        shown = ", ".join(f"{key} {fmt(value, 3)}" for key, value in sorted(metrics.items()))
        quality = f"test metrics (from its metadata.json): {shown}"
    else:
        quality = "**untrained model**: these numbers measure speed only, no accuracy claim"
    data = model.get("training_data")
    data_text = f" Training data: {data}." if data else ""
    return (
        f"**Model** `{model['name']}` v{model['version']} (`{model['entry']}`, files: "
        f"{', '.join(model.get('variants') or [])}); {quality}.{data_text}"
    )


def _load(results: dict) -> str:
    config, images = results["config"], results["images"]
    return (
        f"**Load**: {images['count']} images ({images['source']}, mean {images['mean_bytes']} "
        f"bytes) sent one per `POST /v1/predict`, closed loop at concurrency "
        f"{', '.join(str(c) for c in config['concurrency'])} with a raw asyncio HTTP/1.1 client "
        "in its own process; "
        f"each level up to {config['requests']} requests or {fmt(config['duration_s'])} s after "
        f"{config['warmup_requests']} warm-up requests. "
        f"Whole run: {fmt(results.get('duration_s'))} s."
    )


def _targets(results: dict) -> list[str]:
    lines = ["| target | measured | status |", "|---|---|---|"]
    for check in evaluate_targets(results):
        status = STATUS_MARK[check["status"]]
        if check["shortfall"]:
            status += f": {check['shortfall']}"
        lines.append(f"| {check['target']} | {check['measured']} | {status} |")
    return lines


def _http_table(results: dict) -> list[str]:
    lines = [
        "| system | c | images/s | p50 ms | p95 ms | p99 ms | max ms | errors | mean batch "
        "| server CPU % | client CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for item in results.get("systems", []):
        if item.get("error"):
            first_line = item["error"].splitlines()[0]
            lines.append(f"| {item['name']} | — | failed to start: {first_line} |||||||||")
            continue
        for level in item["levels"]:
            latency = level["latency_ms"]
            errors = ", ".join(f"{key}: {n}" for key, n in level["errors"].items()) or "0"
            batches = level.get("batch_sizes") or {}
            lines.append(
                f"| {item['name']} | {level['concurrency']} | {fmt(level['images_per_s'])} "
                f"| {fmt(latency['p50'], 2)} | {fmt(latency['p95'], 2)} | {fmt(latency['p99'], 2)} "
                f"| {fmt(latency['max'], 2)} | {errors} | {fmt(batches.get('mean'), 2)} "
                f"| {fmt(level.get('server_cpu_percent'))} "
                f"| {fmt(level.get('client_cpu_percent'))} |"
            )
    return lines


def _raw_table(results: dict) -> list[str]:
    raw = results.get("raw", {})
    lines = [
        "| variant | provider | best batch | images/s | batch-1 latency ms "
        "| images/s by batch size |",
        "|---|---|---:|---:|---:|---|",
    ]
    for run in raw.get("runs", []):
        if "error" in run:
            lines.append(f"| {run['variant']} | {run['provider']} | failed: {run['error']} ||||")
            continue
        by_size = ", ".join(
            f"{row['batch_size']}: {fmt(row['images_per_s'])}" for row in run["batches"]
        )
        lines.append(
            f"| {run['variant']} | {run['provider']} | {run['best']['batch_size']} "
            f"| {fmt(run['best']['images_per_s'])} | {fmt(run['batch1_latency_ms'], 2)} "
            f"| {by_size} |"
        )
    pre = raw.get("preprocessing") or {}
    lines += [
        "",
        f"In-process decode + resize (`core.preprocessing.preprocess_bytes`) of one upload: "
        f"p50 {fmt(pre.get('ms_p50'), 2)} ms; the raw numbers above exclude it.",
    ]
    return lines


def rounds_text(paired: dict, key: str, digits: int = 1) -> str:
    """A paired figure's median and, in brackets, each round's value."""
    each = " / ".join(fmt(row[key], digits) for row in paired["rounds"])
    return f"{fmt(paired[key], digits)} ({each})"


def limit_text(item: dict) -> str:
    """The limit the ratios use: the paired rounds' median (each round in brackets) where
    they ran, else the best setting's confirming run before the server."""
    paired = item["server"].get("paired")
    if paired:
        return rounds_text(paired, "limit_images_per_s")
    return fmt(item["pipeline"]["limit"]["images_per_s"])


def _paired_lines(results: dict) -> list[str]:
    """Each model's paired rounds: limit and server at c=64, then batch-1 and c=1, in turn."""
    items = [item for item in results.get("limits", []) if item["server"].get("paired")]
    if not items:
        return []
    loaded = items[0]["server"]["paired"]["concurrency"]  # one suite setting for every model
    lines = [
        "",
        "Paired rounds: in each round the in-process limit at its best setting, the server at "
        "the same concurrency, the in-process batch-1 latency and the server at c=1 are timed "
        "one after the other while the server runs, so the machine's drift over minutes "
        "cancels out of each round's ratio; the median round is reported.",
        "",
        f"| model | round | limit img/s | server c={loaded} img/s | ÷ limit "
        "| in-process batch-1 p50 ms | server c=1 p50 ms | overhead ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in items:
        paired = item["server"]["paired"]
        rows = [(str(i + 1), row) for i, row in enumerate(paired["rounds"])]
        for label, row in [*rows, ("median", paired)]:
            lines.append(
                f"| {item['model']['name']} | {label} | {fmt(row['limit_images_per_s'])} "
                f"| {fmt(row['server_images_per_s'])} | {fmt(row['server_over_limit'], 2)} "
                f"| {fmt(row['in_process_ms_p50'], 2)} | {fmt(row['server_c1_ms_p50'], 2)} "
                f"| {fmt(row['c1_overhead_ms_p50'], 2)} |"
            )
    return lines


def _first_upload_text(first: dict) -> str:
    """The first upload after idle and the ones after it (and the server's own times)."""
    if "first_ms" not in first:
        return "—"
    text = (
        f"{fmt(first['first_ms'], 1)} after {fmt(first['idle_s'], 0)} s "
        f"({fmt(first['following_ms_p50'], 1)})"
    )
    if first.get("first_server_ms") is not None:
        text += (
            f"; in the server {fmt(first['first_server_ms'], 1)} "
            f"({fmt(first.get('following_server_ms_p50'), 1)})"
        )
    return text


def _limits_table(results: dict) -> list[str]:
    lines = [
        "| model | test ROC-AUC | pipeline limit img/s (paired rounds) "
        "| best setting | in-process batch-1 p50 ms "
        "| server c=1 p50 ms (overhead) | hey c=64 img/s (÷ limit), p50 / p99 ms "
        "| first upload after idle ms (next ones p50) |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for item in results.get("limits", []):
        pipeline, ratios = item["pipeline"], item.get("ratios") or {}
        best = pipeline["limit"]
        hey = item["server"].get("hey") or {}
        first_text = _first_upload_text(item["server"].get("first_request") or {})
        hey_text = hey.get("error", "—")
        if "images_per_s" in hey:
            hey_text = (
                f"{fmt(hey['images_per_s'])} ({fmt(ratios.get('hey_over_limit'), 2)}), "
                f"{fmt(hey['latency_ms']['p50'], 2)} / {fmt(hey['latency_ms']['p99'], 2)}"
            )
        served = f" (`{pipeline['model_file']}`)" if pipeline.get("model_file") else ""
        spin = ", spin-wait" if best.get("spin_wait") else ""
        lines.append(
            f"| {item['model']['name']}{served} "
            f"| {fmt(item['model']['test_metrics'].get('roc_auc'), 3)} "
            f"| {limit_text(item)} | batch {best['batch_size']}, "
            f"{best['decode_threads']} decode, {best['intra_op_threads']} intra-op{spin} "
            f"| {fmt(ratios.get('in_process_ms_p50'), 2)} "
            f"| {fmt(ratios.get('server_c1_ms_p50'), 2)} "
            f"({fmt(ratios.get('c1_overhead_ms_p50'), 2)}) | {hey_text} | {first_text} |"
        )
    lines += [
        "",
        "| model | c | server img/s | ÷ limit | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for item in results.get("limits", []):
        server = item["server"]
        if server.get("error"):
            lines.append(f"| {item['model']['name']} | — | failed to start ||||")
            continue
        ratios = (item.get("ratios") or {}).get("server_over_limit", {})
        for level in server.get("levels", []):
            errors = ", ".join(f"{key}: {n}" for key, n in level["errors"].items()) or "0"
            lines.append(
                f"| {item['model']['name']} | {level['concurrency']} "
                f"| {fmt(level['images_per_s'])} | {fmt(ratios.get(str(level['concurrency'])), 2)} "
                f"| {fmt(level['latency_ms']['p50'], 2)} | {fmt(level['latency_ms']['p99'], 2)} "
                f"| {errors} |"
            )
    return [*lines, *_paired_lines(results)]


def _batch_table(results: dict) -> list[str]:
    lines = [
        "| system | c | batches | batch-size distribution (size: runs) |",
        "|---|---:|---:|---|",
    ]
    for item in results.get("systems", []):
        for level in item.get("levels", []):
            batches = level.get("batch_sizes")
            if not batches:
                continue
            spread = ", ".join(f"{size}: {n}" for size, n in batches["distribution"].items())
            lines.append(
                f"| {item['name']} | {level['concurrency']} | {batches['batches']} | {spread} |"
            )
    return lines


def _notes(results: dict) -> list[str]:
    notes = []
    for item in results.get("systems", []):
        info = item.get("info") or {}
        if item["name"].startswith("baseline") and info:
            match = (
                "the same weights" if info.get("weights_match_onnx") else "**different weights**"
            )
            notes.append(
                f"- Baseline Keras model: {info.get('origin')} ({match} as the ONNX model)."
            )
        busy = [
            level["concurrency"]
            for level in item.get("levels", [])
            if (level.get("client_cpu_percent") or 0) > CLIENT_CPU_WARNING
        ]
        if busy:
            notes.append(
                f"- Client CPU above {fmt(CLIENT_CPU_WARNING, 0)}% of a core for {item['name']} "
                f"at c={', '.join(map(str, busy))}: the load generator may have limited it."
            )
    cores = results["machine"].get("cores_usable") or results["machine"].get("cores")
    start = (results["machine"].get("load_average_at_start") or [0.0])[0]
    end = (results.get("load_average_at_end") or [0.0])[0]
    if cores and max(start, end) > cores:
        notes.append(
            f"- **The machine was busy** (1-minute load average {fmt(start, 2)} at start, "
            f"{fmt(end, 2)} at end, on {cores} cores): other processes competed for the CPU, "
            "so these numbers are noisy. Rerun on a quiet machine before quoting them."
        )
    notes.append(
        f"- Client, server and (for the raw numbers) onnxruntime share {cores} cores; "
        "HTTP numbers include the client's CPU competing with the server."
    )
    return notes


def render_summary(results: dict, json_name: str, plots: dict[str, str] | None = None) -> str:
    """The complete SUMMARY.md text for ``results`` (stored as ``json_name``)."""
    plots = plots or {}
    lines = [
        "# Benchmark summary",
        "",
        f"_Generated by `python -m benchmarks summary` from [`{json_name}`]({json_name}) "
        f"(run of {results['created']}). Do not edit by hand._",
        "",
        _machine(results),
        "",
        _model(results),
        "",
        _load(results),
        "",
        "## Targets",
        "",
        *_targets(results),
        "",
        "## Against the in-process pipeline limit (every shipped model)",
        "",
        "The limit: the server's own decode, preprocessing (face crop where the model's "
        "contract asks for it) and onnxruntime session in one process, decode threads "
        "overlapped with inference, no HTTP; the best of the swept settings, timed again in "
        "each paired round (below). `hey` sends the median-size image over and over; our "
        "load generator cycles through all of them.",
        "",
        *_limits_table(results),
        "",
        "## HTTP systems (one image per request)",
        "",
        *_http_table(results),
        "",
        "## Raw onnxruntime in-process (pre-decoded batches, no HTTP)",
        "",
        *_raw_table(results),
        "",
        "## Batch sizes the server ran (from its /metrics, per level)",
        "",
        *_batch_table(results),
        "",
    ]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{key.replace('_', ' ')}]({name})" for key, name in plots.items()]
        lines.append("")
    lines += ["## Notes", "", *_notes(results), ""]
    return "\n".join(lines)
