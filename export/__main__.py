"""``python -m export``: a trained Keras model -> one entry of the model repository."""

from __future__ import annotations

import argparse
import json
import sys

from core.options import add_options, options_from

from .config import ExportConfig, ExportError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a trained Keras model to ONNX (with a CAM output), check parity\n"
        "with Keras, and write a model-repository entry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, ExportConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        config = options_from(ExportConfig, build_parser().parse_args(argv))
    except ValueError as exc:  # a value out of its range
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
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
