"""Training settings: one frozen dataclass per kind of run; each field is one flag of
``python -m train`` (:mod:`core.options`). No TensorFlow here, so ``--help`` stays fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.options import option, parse_bool, parse_floats, parse_ints
from train.views import ViewConfig

DEFAULT_CNN_FILTERS = (16, 32, 64, 128, 256)
XCEPTION_MIN_SIZE = 71
LITE0_WEIGHTS = ("lite0-imagenet", "none")


def _check_range(name: str, pair: tuple | None, low: float, high: float) -> None:
    if pair is None:
        return
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"{name} must be two values LOW,HIGH within {low:g}..{high:g}, got {pair}")


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within 0..1, got {value}")


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation of the CNN/Xception training split; ``0`` / ``None`` /
    ``False`` turns one off."""

    flip: bool = option(True, "random horizontal flip", parse_bool)
    rotation: float = option(0.05, "+- turn fraction", float)
    zoom: float = option(0.1, "+- zoom fraction", float)
    translation: float = option(0.1, "+- translation fraction", float, flag="--shift")
    jpeg_quality: tuple[int, int] | None = option(
        (30, 95), "random JPEG re-compression quality range", parse_ints, metavar="LOW,HIGH"
    )
    jpeg_probability: float = option(
        0.5, "share of images re-compressed (0 = off)", float, flag="--jpeg-prob"
    )
    blur_sigma: tuple[float, float] | None = option(
        (0.1, 1.5), "random Gaussian blur sigma range in pixels", parse_floats, metavar="LOW,HIGH"
    )
    blur_probability: float = option(
        0.3, "share of images blurred (0 = off)", float, flag="--blur-prob"
    )

    def __post_init__(self) -> None:
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        _check_range("blur_sigma", self.blur_sigma, 0.0, 100.0)
        _check_share("jpeg_probability", self.jpeg_probability)
        _check_share("blur_probability", self.blur_probability)
        for name in ("rotation", "zoom", "translation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(False, 0.0, 0.0, 0.0, None, 0.0, None, 0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one CNN or Xception run depends on (stored in ``config.json``)."""

    data: str = option(help="dataset folder with train/ val/ test/", metavar="DIR")
    out: str = option(help="run folder to write", metavar="DIR")
    model: str = "cnn"  # cnn | xception: chosen by --model
    epochs: int = option(10, "epochs; Xception: of the head", int)
    batch_size: int = option(32, "images per batch", int)
    lr: float = option(1e-3, "Adam learning rate", float)
    image_size: int = option(224, "square input size", int, metavar="PX")
    weights: str | None = option(
        None, "Xception: imagenet (default), a .weights.h5 PATH, or none", metavar="W"
    )
    fine_tune_epochs: int | None = option(
        None, "Xception: epochs with the top blocks unfrozen after the head (5; 0 = skip)", int
    )
    fine_tune_lr: float | None = option(None, "fine-tuning learning rate (lr / 10)", float)
    seed: int = option(0, "random seed", int)
    patience: int = option(5, "early-stopping patience in epochs", int)
    cnn_filters: tuple[int, ...] | None = option(
        None, f"CNN filters per block, e.g. 8,16 ({','.join(map(str, DEFAULT_CNN_FILTERS))})",
        parse_ints,
    )  # fmt: skip
    dropout: float = option(0.3, "head dropout", float, metavar="P")
    balance_classes: bool = option(
        True, "weight classes by inverse frequency", parse_bool, flag="--class-weights"
    )
    cache: str = option(
        "memory",
        "keep decoded images in memory after the first epoch, about 150 kB each at 224 px; "
        "none decodes every epoch",
        choices=("memory", "none"),
    )
    workers: int = option(4, "threads for the image check", int)
    progress: bool = option(True, "progress bars", parse_bool)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.model not in ("cnn", "xception"):
            raise ValueError(f"unknown model {self.model!r}: use 'cnn' or 'xception'")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch size must be >= 1 and the learning rate > 0")

    def resolved(self) -> TrainConfig:
        """Fill model-dependent defaults and check the combination; raises ValueError."""
        values = asdict(self) | {"augment": self.augment}
        if self.model == "xception":
            if self.image_size < XCEPTION_MIN_SIZE:
                raise ValueError(f"Xception needs --image-size >= {XCEPTION_MIN_SIZE}")
            values["weights"] = self.weights or "imagenet"
            if self.fine_tune_epochs is None:
                values["fine_tune_epochs"] = 5
        else:
            if self.weights not in (None, "none"):
                raise ValueError("--weights applies to xception only; the cnn starts from scratch")
            if self.fine_tune_epochs:
                raise ValueError("--fine-tune-epochs applies to xception only")
            filters = self.cnn_filters or DEFAULT_CNN_FILTERS
            smallest = 2 ** (len(filters) - 1)
            if self.image_size < smallest:
                raise ValueError(f"--image-size must be >= {smallest} for these cnn filters")
            values["weights"], values["fine_tune_epochs"] = "none", 0
        values["fine_tune_lr"] = self.fine_tune_lr or self.lr / 10.0
        values["cnn_filters"] = tuple(self.cnn_filters or DEFAULT_CNN_FILTERS)
        return TrainConfig(**values)


@dataclass(frozen=True)
class Lite0Config:
    """Everything one EfficientNet-Lite0 run depends on (stored in ``config.json``)."""

    data: str = option(help="dataset folder with train/ val/ test/", metavar="DIR")
    out: str = option(help="run folder to write", metavar="DIR")
    weights: str = option(
        "lite0-imagenet", "lite0-imagenet, none, or a .pth checkpoint PATH", metavar="W"
    )
    cut: str = option("block5a", "first fine-tuned block", metavar="BLOCK")
    views: int = option(2, "cached views per training image: 1 clean + N-1 augmented", int)
    head_epochs: int = option(40, "epochs of the head on cached activations", int, flag="--epochs")
    fine_tune_epochs: int = option(6, "epochs with the blocks from --cut unfrozen (0 = skip)", int)
    lr: float = option(1e-3, "Adam learning rate", float)
    fine_tune_lr: float | None = option(None, "fine-tuning learning rate (lr / 10)", float)
    batch_size: int = option(64, "images per batch", int)
    dropout: float = option(0.3, "head dropout", float, metavar="P")
    patience: int = option(5, "early-stopping patience in epochs", int)
    seed: int = option(0, "random seed", int)
    limit: int | None = option(None, "images per split (all)", int)
    face_crop: bool = True  # the data are core.facecrop crops: the contract says so
    workers: int = option(2, "threads for decoding and the image check", int)
    progress: bool = option(True, "progress bars", parse_bool)
    augment: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        from train.efficientnet_lite import LITE0_BLOCKS  # Keras: only when a run is built

        if self.cut not in LITE0_BLOCKS:
            raise ValueError(f"cut must be one of {', '.join(LITE0_BLOCKS)}, got {self.cut!r}")
        if self.views < 1 or self.batch_size < 1 or self.head_epochs < 1:
            raise ValueError("views, batch size and head epochs must be >= 1")
        if self.fine_tune_lr is None:
            object.__setattr__(self, "fine_tune_lr", self.lr / 10.0)
        if self.fine_tune_epochs < 0 or self.lr <= 0 or self.fine_tune_lr <= 0:
            raise ValueError("fine-tune epochs must be >= 0 and learning rates > 0")
        if self.weights not in LITE0_WEIGHTS and not Path(self.weights).is_file():
            raise ValueError(
                f"weights must be {' | '.join(LITE0_WEIGHTS)} or a .pth file: {self.weights!r}"
            )


@dataclass(frozen=True)
class TextureConfig:
    """Everything one texture-detector run depends on (stored in ``config.json``)."""

    data: str = option(help="dataset folder with train/ val/ test/", metavar="DIR")
    out: str = option(help="run folder to write", metavar="DIR")
    c: float = option(0.05, "logistic regression's inverse regularisation strength", float)
    face_crop: bool = True  # the data are aligned face crops: the contract says so
    workers: int = option(2, "threads for the image check", int)
    progress: bool = option(True, "progress bars", parse_bool)

    def __post_init__(self) -> None:
        if self.c <= 0:
            raise ValueError(f"c must be > 0, got {self.c}")
