"""``python -m export``: a trained Keras model -> one entry of the model repository."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import DEFAULT_OPSET, DEFAULT_TOLERANCE, OPTIMIZATION_LEVELS, ExportConfig, ExportError

EPILOG = """\
example:
  python -m export --model runs/cnn/model.keras --name cnn --repo models \\
      --report runs/cnn/report.json --parity-images data/faces/test --fp16 --int8 \\
      --training-data "what the model was trained on"

Writes <repo>/<name>/<version>/{model.onnx, model.portable.onnx, metadata.json}
(+ model.fp16.onnx / model.int8.onnx) and <repo>/<name>/config.pbtxt (Triton) only after
ONNX Runtime reproduces Keras within --tolerance at batch 1 and at --parity-batch; otherwise
nothing is written and the exit status is 1.
"""


def parse_args(argv: list[str] | None = None) -> ExportConfig:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a trained Keras model to ONNX (with a CAM output), check parity\n"
        "with Keras, and write a model-repository entry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, type=Path, metavar="PATH", help="the trained .keras file"
    )
    parser.add_argument("--name", required=True, help="model name in the repository, e.g. cnn")
    parser.add_argument(
        "--repo", type=Path, default=Path("models"), metavar="DIR", help="repository root"
    )
    parser.add_argument(
        "--version", type=int, metavar="N", help="version number (default: next free)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="evaluation report.json (threshold, temperature, metrics)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing version")
    parser.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx")
    parser.add_argument(
        "--parity-images",
        type=Path,
        metavar="DIR",
        help="folder of images for the parity check (labelled if in real/ and fake/); "
        "default: seeded synthetic images",
    )
    parser.add_argument(
        "--parity-count", type=int, default=16, metavar="N", help="images to compare"
    )
    parser.add_argument(
        "--parity-batch", type=int, default=7, metavar="N", help="batch size besides 1"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="X",
        help="max |Δp| Keras vs ONNX",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, metavar="N", help="ONNX opset (>= 17)"
    )
    parser.add_argument(
        "--optimization",
        choices=OPTIMIZATION_LEVELS,
        default="extended",
        help="onnxruntime graph optimisation saved into model.onnx",
    )
    parser.add_argument(
        "--training-data", metavar="TEXT", help="honest description of the training data"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the synthetic images"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    return ExportConfig(
        model_path=args.model,
        name=args.name,
        repo=args.repo,
        version=args.version,
        report_path=args.report,
        force=args.force,
        fp16=args.fp16,
        int8=args.int8,
        parity_images=args.parity_images,
        parity_count=args.parity_count,
        parity_batch=args.parity_batch,
        tolerance=args.tolerance,
        opset=args.opset,
        optimization=args.optimization,
        training_data=args.training_data,
        seed=args.seed,
        progress=not args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
        from .pipeline import export_model
        from .triton import write_config

        result = export_model(config)
        triton_config = write_config(config.repo, config.name)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return exc.exit_code
    parity = result.metadata["parity"]
    summary = {
        "entry": str(result.path),
        "version": result.version,
        "files": result.metadata["files"],
        "triton_config": str(triton_config),
        "parity_fp32_max_abs_diff": parity["fp32_max_abs_diff"],
        "cam_max_abs_diff": parity["cam_max_abs_diff"],
        **{
            f"{key}_max_abs_diff_vs_fp32": parity[key]["max_abs_diff_vs_fp32"]
            for key in ("fp16", "int8")
            if key in parity
        },
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
