"""``python -m train``: train a detector (texture, Lite0, the custom CNN or Xception) on a split
image folder."""

from __future__ import annotations

import argparse

from core.options import add_options, options_from
from train.cli import run_command
from train.config import AugmentConfig, Lite0Config, TextureConfig, TrainConfig
from train.files import DatasetError

EPILOG = """\
data layout: DATA/{train,val,test}/{real,fake}/<images>  (real = 0, fake = 1)
  make it from a flat DATA/{real,fake}/ folder with:  python -m train.split --help
  evaluate a finished run with:                        python -m train.evaluate --help

examples:
  python -m train --model texture --data data/detector --out runs/texture
  python -m train --model lite0 --data data/detector --out runs/lite0 --cut block6a
  python -m train --model cnn --data data/detector --epochs 20 --out runs/cnn
"""


MODELS = ("cnn", "xception", "lite0", "texture")


def build_parser(model: str) -> argparse.ArgumentParser:
    """The parser for ``--model model``: that model's config fields, one flag each."""
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a deepfake image detector with Keras: the texture detector (a head on\n"
        "the ImageNet EfficientNet-Lite0's early blocks, the default), Lite0 fine-tuned, the\n"
        "small CNN or Xception. Writes OUT/model.keras, OUT/history.csv, OUT/config.json.\n"
        f"The options listed are those of --model {model}; each model has its own --help.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", choices=MODELS, default="cnn", help="which model (cnn)")
    if model == "lite0":
        add_options(parser.add_argument_group("EfficientNet-Lite0"), Lite0Config)
        return parser
    if model == "texture":
        add_options(parser.add_argument_group("texture detector"), TextureConfig)
        return parser
    add_options(parser, TrainConfig)
    group = parser.add_argument_group("augmentation (training split only)")
    group.add_argument("--no-augment", action="store_true", help="turn all augmentation off")
    add_options(group, AugmentConfig)
    return parser


def chosen_model(argv: list[str] | None) -> str:
    """``--model`` alone, so the full parser can be built for that model."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--model", choices=MODELS, default="cnn")
    return first.parse_known_args(argv)[0].model


def parse_config(argv: list[str] | None = None) -> TrainConfig | Lite0Config | TextureConfig:
    """The run's config from ``argv``; raises ValueError for impossible values."""
    model = chosen_model(argv)
    namespace = build_parser(model).parse_args(argv)
    if model == "lite0":
        return options_from(Lite0Config, namespace)
    if model == "texture":
        return options_from(TextureConfig, namespace)
    augment = AugmentConfig.off()
    if not namespace.no_augment:
        augment = options_from(AugmentConfig, namespace)
    return options_from(TrainConfig, namespace, model=model, augment=augment).resolved()


def run(config: TrainConfig | Lite0Config | TextureConfig) -> dict:
    """Train; TensorFlow loads here, not for ``--help``. The summary line to print."""
    if isinstance(config, TextureConfig):
        from train.texture import train_texture

        return {"out": config.out, "stages": train_texture(config)["stages"]}
    if isinstance(config, Lite0Config):
        from train.lite0 import train_lite0

        return {"out": config.out, "stages": train_lite0(config)["stages"]}
    from train.train import train

    summary = train(config)
    return {"out": config.out, "best": summary["best"], "data": summary["data"]["counts"]}


def main(argv: list[str] | None = None) -> int:
    return run_command(
        lambda: run(parse_config(argv)),
        lambda summary: [summary],
        errors=(ValueError, DatasetError, FileNotFoundError),  # bad option, data or path
    )


if __name__ == "__main__":
    raise SystemExit(main())
