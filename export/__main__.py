"""``python -m export``: a trained Keras model -> one entry of the model repository."""

from __future__ import annotations

import argparse
import json
import sys

from core.options import options_parser

from .config import ExportConfig, run_export_command

EPILOG = """\
example:
  python -m export --model runs/texture/model.keras --name texture --repo models \\
      --report runs/texture/report.json --parity-images data/detector/test --fp16 --int8 \\
      --training-data "what the model was trained on"

Writes <repo>/<name>/<version>/{model.onnx, model.portable.onnx, metadata.json}
(+ model.fp16.onnx / model.int8.onnx) and <repo>/<name>/config.pbtxt (Triton) only after
ONNX Runtime reproduces Keras within --tolerance at batch 1 and at --parity-batch; otherwise
nothing is written and the exit status is 1.
"""


def build_parser() -> argparse.ArgumentParser:
    return options_parser(
        "python -m export",
        "Export a trained Keras model to ONNX (with a CAM output), check parity\n"
        "with Keras, and write a model-repository entry.",
        ExportConfig,
        epilog=EPILOG,
    )


def export(config: ExportConfig) -> str:
    """The entry and Triton's config written; their summary as JSON."""
    from .pipeline import export_model
    from .triton import write_config

    result = export_model(config)
    triton_config = write_config(config.repo, config.name)
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
    return json.dumps(summary, indent=2)


def main(argv: list[str] | None = None) -> int:
    return run_export_command(build_parser(), ExportConfig, argv, export, failed="export failed")


if __name__ == "__main__":
    sys.exit(main())
