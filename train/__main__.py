"""``python -m train``: train the custom CNN or Xception on a split image folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from train.files import DatasetError

EPILOG = """\
data layout: DATA/{train,val,test}/{real,fake}/<images>  (real = 0, fake = 1)
  make it from a flat DATA/{real,fake}/ folder with:  python -m train.split --help
  evaluate a finished run with:                        python -m train.evaluate --help

examples:
  python -m train --model cnn --data data/faces --epochs 20 --out runs/cnn
  python -m train --model xception --data data/faces --epochs 5 --fine-tune-epochs 5 \\
      --out runs/xception
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a deepfake image detector (custom CNN or Xception) with Keras.\n"
        "Writes OUT/model.keras (best validation loss), OUT/history.csv, OUT/config.json.\n"
        "Xception trains its new head on a frozen base first, then fine-tunes the top blocks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        choices=("cnn", "xception", "lite0"),
        default="cnn",
        help="which model (cnn); lite0 = ImageNet EfficientNet-Lite0 on cached activations",
    )
    parser.add_argument("--data", required=True, help="dataset folder with train/ val/ test/")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs; Xception and Lite0: of the head (10; Lite0 40)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, metavar="N", help="images per batch (32)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument(
        "--image-size", type=int, default=224, metavar="PX", help="square input size (224)"
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="W",
        help="Xception: imagenet (default), a .weights.h5 PATH, or none; "
        "Lite0: lite0-imagenet (default), a .pth PATH, or none",
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=None,
        metavar="N",
        help="Xception/Lite0: epochs with the top blocks unfrozen after the head "
        "(5; Lite0 6; 0 = skip)",
    )
    parser.add_argument(
        "--fine-tune-lr",
        type=float,
        default=None,
        metavar="LR",
        help="fine-tuning learning rate (lr / 10)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--patience", type=int, default=5, metavar="N", help="early-stopping patience in epochs (5)"
    )
    parser.add_argument(
        "--cnn-filters",
        default=None,
        metavar="F,F,..",
        help="CNN filters per block, comma-separated, e.g. 8,16 (the model's default)",
    )
    parser.add_argument(
        "--dropout", type=float, default=0.3, metavar="P", help="head dropout (0.3)"
    )
    parser.add_argument(
        "--no-class-weights",
        action="store_true",
        help="do not weight classes by inverse frequency",
    )
    parser.add_argument(
        "--cache",
        choices=("memory", "none"),
        default="memory",
        help="keep decoded images in memory after the first epoch, about 150 kB each at "
        "224 px; none decodes every epoch (memory)",
    )
    parser.add_argument(
        "--workers", type=int, default=4, metavar="N", help="threads for the image check (4)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    lite0 = parser.add_argument_group("EfficientNet-Lite0 (--model lite0)")
    lite0.add_argument(
        "--cut", default="block5a", metavar="BLOCK", help="first fine-tuned block (block5a)"
    )
    lite0.add_argument(
        "--views",
        type=int,
        default=2,
        metavar="N",
        help="cached views per training image: 1 clean + N-1 augmented (2)",
    )
    lite0.add_argument(
        "--limit", type=int, default=None, metavar="N", help="images per split (all)"
    )

    group = parser.add_argument_group("augmentation (training split only)")
    group.add_argument("--no-augment", action="store_true", help="turn all augmentation off")
    group.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    group.add_argument(
        "--rotation", metavar="F", type=float, default=0.05, help="+- turn fraction (0.05)"
    )
    group.add_argument(
        "--zoom", metavar="F", type=float, default=0.1, help="+- zoom fraction (0.1)"
    )
    group.add_argument(
        "--shift", metavar="F", type=float, default=0.1, help="+- translation fraction (0.1)"
    )
    group.add_argument(
        "--jpeg-quality",
        type=int,
        nargs=2,
        default=(30, 95),
        metavar=("LOW", "HIGH"),
        help="random JPEG re-compression quality range (30 95)",
    )
    group.add_argument(
        "--jpeg-prob",
        type=float,
        default=0.5,
        metavar="P",
        help="share of images re-compressed (0.5; 0 = off)",
    )
    group.add_argument(
        "--blur-sigma",
        type=float,
        nargs=2,
        default=(0.1, 1.5),
        metavar=("LOW", "HIGH"),
        help="random Gaussian blur sigma range in pixels (0.1 1.5)",
    )
    group.add_argument(
        "--blur-prob",
        type=float,
        default=0.3,
        metavar="P",
        help="share of images blurred (0.3; 0 = off)",
    )
    return parser.parse_args(argv)


def augment_config(args: argparse.Namespace):
    """The :class:`train.augment.AugmentConfig` the options ask for."""
    from train.augment import AugmentConfig

    if args.no_augment:
        return AugmentConfig.off()
    return AugmentConfig(
        flip=not args.no_flip,
        rotation=args.rotation,
        zoom=args.zoom,
        translation=args.shift,
        jpeg_quality=tuple(args.jpeg_quality),
        jpeg_probability=args.jpeg_prob,
        blur_sigma=tuple(args.blur_sigma),
        blur_probability=args.blur_prob,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        filters = tuple(int(w) for w in args.cnn_filters.split(",")) if args.cnn_filters else None
    except ValueError:
        message = f"error: --cnn-filters must be integers like 32,64: {args.cnn_filters!r}"
        print(message, file=sys.stderr)
        return 2

    if args.model == "lite0":
        return main_lite0(args)
    from train.train import TrainConfig, train  # TensorFlow loads only after --help

    config = TrainConfig(
        data=args.data,
        out=args.out,
        model=args.model,
        epochs=args.epochs or 10,
        batch_size=args.batch_size,
        lr=args.lr,
        image_size=args.image_size,
        weights=args.weights,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_lr=args.fine_tune_lr,
        seed=args.seed,
        patience=args.patience,
        cnn_filters=filters,
        dropout=args.dropout,
        balance_classes=not args.no_class_weights,
        cache=args.cache,
        workers=args.workers,
        progress=not args.no_progress,
        augment=augment_config(args),
    )
    try:
        config = config.resolved()
    except ValueError as exc:  # an impossible combination of options
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = train(config)
    except (DatasetError, FileNotFoundError) as exc:  # bad data or weights path
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "best": summary["best"], "data": summary["data"]["counts"]}))
    return 0


def main_lite0(args: argparse.Namespace) -> int:
    """``--model lite0``: :func:`train.lite0.train_lite0` (views replace the augment flags)."""
    from train.lite0 import Lite0Config, train_lite0

    try:
        config = Lite0Config(
            data=args.data,
            out=args.out,
            weights=args.weights or "lite0-imagenet",
            cut=args.cut,
            views=args.views,
            head_epochs=args.epochs or 40,
            fine_tune_epochs=6 if args.fine_tune_epochs is None else args.fine_tune_epochs,
            lr=args.lr,
            fine_tune_lr=args.fine_tune_lr or args.lr / 10,
            batch_size=args.batch_size,
            dropout=args.dropout,
            patience=args.patience,
            seed=args.seed,
            limit=args.limit,
            workers=args.workers,
            progress=not args.no_progress,
        )
        summary = train_lite0(config)
    except (ValueError, DatasetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "stages": summary["stages"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
