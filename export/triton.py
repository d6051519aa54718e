"""``config.pbtxt`` beside each model, so NVIDIA Triton (or KServe's Triton runtime) can serve
``models/`` unchanged: ``models/<name>/config.pbtxt`` + ``models/<name>/<version>/model.onnx``
is Triton's own layout; the other files of a version folder are ignored by Triton.

Input and output names, data types and dims come from the ONNX graph of the latest version;
Triton loads the portable graph (``model.portable.onnx``: no onnxruntime CPU-only fused
operators, so it also runs on Triton's GPU instances); the batching settings are our server's
defaults.

    python -m export.triton --repo models          # (re)write every model's config.pbtxt
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from core.modelrepo import ModelRepository

CONFIG_FILE = "config.pbtxt"
ONNX_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64", 6: "TYPE_INT32", 7: "TYPE_INT64",
              3: "TYPE_INT8", 2: "TYPE_UINT8", 9: "TYPE_BOOL"}  # fmt: skip


@dataclass(frozen=True)
class TritonSettings:
    """What Triton is told beyond the graph: batching and which versions to serve."""

    max_batch_size: int = 32
    max_queue_delay_ms: float = 5.0
    latest_versions: int = 1

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_delay_ms < 0 or self.latest_versions < 1:
            raise ValueError(
                "need max_batch_size >= 1, max_queue_delay_ms >= 0 and latest_versions >= 1, "
                f"got {self.max_batch_size}, {self.max_queue_delay_ms}, {self.latest_versions}"
            )


def graph_tensors(onnx_path: Path) -> tuple[list[tuple[str, str, list[int]]], ...]:
    """(name, Triton data type, dims without the batch axis) of the graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {item.name for item in graph.initializer}

    def describe(values) -> list[tuple[str, str, list[int]]]:
        found = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = [dim.dim_value if dim.dim_value > 0 else -1 for dim in tensor.shape.dim[1:]]
            found.append((value.name, ONNX_TYPES[tensor.elem_type], dims))
        return found

    return describe(graph.input), describe(graph.output)


def _tensor_block(kind: str, tensors: list[tuple[str, str, list[int]]]) -> list[str]:
    lines = [f"{kind} ["]
    for index, (name, data_type, dims) in enumerate(tensors):
        comma = "," if index < len(tensors) - 1 else ""
        lines += [
            "  {",
            f'    name: "{name}"',
            f"    data_type: {data_type}",
            f"    dims: [ {', '.join(str(d) for d in dims)} ]",
            f"  }}{comma}",
        ]
    return [*lines, "]"]


def render_config(name: str, onnx_path: Path, settings: TritonSettings) -> str:
    """The ``config.pbtxt`` text for model ``name`` whose graph is ``onnx_path`` (the file name
    Triton loads from every version folder)."""
    inputs, outputs = graph_tensors(onnx_path)
    delay_us = round(settings.max_queue_delay_ms * 1000)
    lines = [
        "# Written by python -m export.triton (do not edit): Triton / KServe serve models/ as is.",
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {settings.max_batch_size}",
        f"version_policy: {{ latest: {{ num_versions: {settings.latest_versions} }} }}",
        f'default_model_filename: "{onnx_path.name}"',
        *_tensor_block("input", inputs),
        *_tensor_block("output", outputs),
        "dynamic_batching {",
        f"  max_queue_delay_microseconds: {delay_us}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_config(repo: Path, name: str, settings: TritonSettings | None = None) -> Path:
    """Write ``<repo>/<name>/config.pbtxt`` from the graph of the model's latest version."""
    entry = ModelRepository(repo).entry(name)
    portable = entry.metadata.get("files", {}).get("onnx_portable")
    onnx_path = entry.path / portable if portable else entry.onnx_path
    path = repo / name / CONFIG_FILE
    path.write_text(render_config(name, onnx_path, settings or TritonSettings()))
    return path


def write_configs(repo: Path, settings: TritonSettings | None = None) -> list[Path]:
    """:func:`write_config` for every model of the repository."""
    return [write_config(repo, name, settings) for name in ModelRepository(repo).names()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.triton",
        description="Write a Triton config.pbtxt beside every model of a model repository.",
    )
    parser.add_argument("--repo", type=Path, default=Path("models"), help="model repository")
    parser.add_argument("--max-batch-size", type=int, default=TritonSettings.max_batch_size)
    parser.add_argument(
        "--max-queue-delay-ms", type=float, default=TritonSettings.max_queue_delay_ms
    )
    args = parser.parse_args(argv)
    settings = TritonSettings(args.max_batch_size, args.max_queue_delay_ms)
    for path in write_configs(args.repo, settings):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
