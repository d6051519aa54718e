"""``python -m train``: each option comes from its config field; no TensorFlow for --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from train import __main__ as train_cli
from train.config import AugmentConfig, TrainConfig


def test_help_lists_the_chosen_models_options_without_tensorflow():
    code = (
        "import sys; from train.__main__ import build_parser; "
        "build_parser('lite0').format_help(); build_parser('cnn').format_help(); "
        "sys.exit('tensorflow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    lite0 = train_cli.build_parser("lite0").format_help()
    cnn = train_cli.build_parser("cnn").format_help()
    assert "--cut BLOCK" in lite0 and "--views N" in lite0 and "--jpeg-prob" not in lite0
    assert "--jpeg-quality LOW,HIGH" in cnn and "--cut BLOCK" not in cnn
    assert "(default: 40)" in lite0 and "(default: 10)" in cnn, "each model's own epochs"


def test_cnn_options_become_a_resolved_train_config():
    argv = ["--data", "d", "--out", "o", "--cnn-filters", "8,16", "--jpeg-quality", "50,90"]
    config = train_cli.parse_config([*argv, "--no-flip", "--shift", "0", "--no-class-weights"])
    assert isinstance(config, TrainConfig)
    assert config.cnn_filters == (8, 16) and config.fine_tune_lr == pytest.approx(1e-4)
    assert config.augment == AugmentConfig(flip=False, translation=0.0, jpeg_quality=(50, 90))
    assert config.balance_classes is False
    off = train_cli.parse_config(["--data", "d", "--out", "o", "--no-augment"])
    assert off.augment == AugmentConfig.off()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jpeg-quality", "95,30"], "jpeg_quality must be two values LOW,HIGH within 1..100"),
        (["--blur-prob", "1.5"], "blur_probability must be within 0..1"),
        (["--cnn-filters", "8,x"], "--cnn-filters"),
        (["--model", "xception", "--image-size", "32"], "Xception needs --image-size >= 71"),
        (["--weights", "imagenet"], "--weights applies to xception only"),
    ],
)
def test_impossible_options_are_errors_that_say_why(argv, message, capsys):
    assert train_cli.main(["--data", "d", "--out", "o", *argv]) == 2
    assert message in capsys.readouterr().err
