"""PNG plots from a results dict: throughput vs concurrency, latency CDF per concurrency."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _measured(results: dict) -> list[dict]:
    return [item for item in results.get("systems", []) if item.get("levels")]


def plot_throughput(results: dict, path: Path) -> Path:
    """Images/s against concurrency for every HTTP system, raw onnxruntime as lines."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 5))
    for item in _measured(results):
        levels = item["levels"]
        axis.plot(
            [lv["concurrency"] for lv in levels],
            [lv["images_per_s"] for lv in levels],
            marker="o",
            label=item["name"],
        )
    styles = iter(["--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))] * 4)
    for run in results.get("raw", {}).get("runs", []):
        if "best" in run:
            axis.axhline(
                run["best"]["images_per_s"],
                linestyle=next(styles),
                linewidth=1.2,
                color="black" if run["variant"] == "fp32" else "grey",
                label=f"raw onnxruntime {run['variant']}/{run['provider']} "
                f"(batch {run['best']['batch_size']})",
            )
    axis.set_xscale("log", base=2)
    axis.set_ylim(bottom=0)
    concurrency = results.get("config", {}).get("concurrency") or [1]
    axis.set_xticks(concurrency, [str(c) for c in concurrency])
    axis.set_xlabel("concurrent requests (closed loop)")
    axis.set_ylabel("images / s")
    axis.set_title(f"Throughput — {results.get('machine_name', '')}, model {_model(results)}")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_latency_cdf(results: dict, path: Path) -> Path:
    """Latency CDF of every HTTP system, one panel per concurrency level."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    concurrency = results.get("config", {}).get("concurrency") or [1]
    figure, axes = plt.subplots(
        1, len(concurrency), figsize=(4 * len(concurrency), 4), sharey=True, squeeze=False
    )
    quantiles = None
    for axis, level_c in zip(axes[0], concurrency, strict=True):
        for item in _measured(results):
            level = next((lv for lv in item["levels"] if lv["concurrency"] == level_c), None)
            if not level or not level.get("latency_cdf_ms"):
                continue
            cdf = level["latency_cdf_ms"]
            quantiles = np.linspace(0, 1, len(cdf))
            axis.plot(cdf, quantiles, label=item["name"])
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_title(f"c = {level_c}")
        axis.set_xlabel("latency (ms, log)")
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("fraction of requests")
    if quantiles is not None:
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    figure.suptitle(f"Latency CDF — {results.get('machine_name', '')}, model {_model(results)}")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _model(results: dict) -> str:
    model = results.get("model", {})
    return f"{model.get('name')} v{model.get('version')}"
