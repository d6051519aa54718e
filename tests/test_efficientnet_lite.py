"""EfficientNet-Lite0 Keras port (``train.efficientnet_lite``): parity with the PyTorch reference
logits stored in ``tests/data/lite0_reference.npz`` (made by
``tests/data/make_lite0_reference.py``), architecture shape and size, and the torch-free
checkpoint reader's safety."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras", reason="the training extra is not installed")
el = pytest.importorskip("train.efficientnet_lite", reason="the training extra is not installed")

REFERENCE = Path(__file__).parent / "data" / "lite0_reference.npz"
# Counted from efficientnet-lite0-57934424.pth: all tensors but ``num_batches_tracked``
# (= Keras count_params, BatchNorm moving statistics included) and without the running stats
# (= trainable weights = PyTorch ``sum(p.numel() for p in model.parameters())``).
LITE0_IMAGENET_PARAMS = 4_694_024
LITE0_IMAGENET_TRAINABLE = 4_652_008
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def photo(name: str) -> np.ndarray:
    """The reference script's input: a scikit-image photo resized to 224x224 (bilinear)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (serve extra) not installed")
    rgb = getattr(data, name)()
    return np.asarray(Image.fromarray(rgb).resize((224, 224), Image.Resampling.BILINEAR))


def trainable_count(model: keras.Model) -> int:
    """Number of trainable scalars."""
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    """The ImageNet checkpoint from the installed package (a train dependency), without torch."""
    return el.read_torch_checkpoint(el.lite0_checkpoint_path())


def test_parity_with_pytorch_reference(state_dict: dict[str, np.ndarray]) -> None:
    reference = np.load(REFERENCE)
    assert float(reference["mean"]) == el.LITE0_MEAN and float(reference["std"]) == el.LITE0_STD
    model = el.build_lite0_imagenet()
    el.load_lite0_weights(model, state_dict)
    names = [str(name) for name in reference["names"]]
    images = np.stack([photo(name) for name in names]).astype(np.float32)
    logits = np.asarray(model(images, training=False))

    assert logits.shape == reference["logits"].shape == (3, 1000)
    assert np.abs(logits - reference["logits"]).max() <= 1e-4
    top1 = dict(zip(names, logits.argmax(axis=1).tolist(), strict=True))
    assert top1["chelsea"] in CAT_CLASSES
    assert top1["coffee"] in COFFEE_CLASSES
    np.testing.assert_array_equal(np.argsort(-logits, axis=1)[:, :5], reference["top5"])

    tensors = {k: v for k, v in state_dict.items() if not k.endswith(".num_batches_tracked")}
    assert model.count_params() == sum(v.size for v in tensors.values()) == LITE0_IMAGENET_PARAMS
    running = sum(v.size for k, v in tensors.items() if k.endswith(("_mean", "_var")))
    assert trainable_count(model) == LITE0_IMAGENET_PARAMS - running == LITE0_IMAGENET_TRAINABLE


def test_loading_is_strict(state_dict: dict[str, np.ndarray]) -> None:
    base = el.build_lite0_base(64)
    with pytest.raises(ValueError, match="unused"):
        el.load_lite0_weights(base, state_dict)  # the classifier tensors have no layer
    without_fc = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
    el.load_lite0_weights(base, without_fc)
    np.testing.assert_array_equal(
        base.get_layer("stem_conv").kernel.numpy(),
        state_dict["_conv_stem.weight"].transpose(2, 3, 1, 0),
    )
    del without_fc["_blocks.3._bn1.running_var"]
    with pytest.raises(ValueError, match="running_var"):
        el.load_lite0_weights(base, without_fc)


@pytest.mark.parametrize(("size", "side"), [(224, 7), (128, 4)])
def test_base_shape_and_names(size: int, side: int) -> None:
    base = el.build_lite0_base(size)
    features = np.asarray(base(np.full((1, size, size, 3), 127.0, np.float32), training=False))
    assert features.shape == (1, side, side, 1280)
    assert base.layers[0].name == "image"
    assert base.layers[1].name == "normalise"
    assert base.output.shape[1:] == (side, side, 1280)
    assert base.layers[-1].name == "head_relu"
    assert len(el.LITE0_BLOCKS) == 16
    for prefix in el.LITE0_BLOCKS:
        assert any(layer.name.startswith(f"{prefix}_") for layer in base.layers), prefix


def test_param_count_without_weights() -> None:
    model = el.build_lite0_imagenet(128)  # weights do not depend on the input size
    assert model.count_params() == LITE0_IMAGENET_PARAMS
    assert trainable_count(model) == LITE0_IMAGENET_TRAINABLE


class _Evil:
    """Unpickling this runs ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_reader_refuses_disallowed_globals(tmp_path: Path, layout: str) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weight": _Evil(marker)}, protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
    else:
        header = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}]
        path.write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in header) + payload)
    with pytest.raises(pickle.UnpicklingError, match="disallowed global"):
        el.read_torch_checkpoint(path)
    assert not marker.exists()


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _ints(*values: int) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _tensor(
    storage_type: str, key: str, numel: int, offset: int, size: tuple, stride: tuple
) -> bytes:
    """Pickle opcodes of ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""
    storage = b"(" + _text("storage") + _global("torch", storage_type) + _text(key)
    storage += _text("cpu") + _int(numel) + b"tQ"  # BINPERSID: the storage's persistent id
    hooks = _global("collections", "OrderedDict") + b")R"
    args = b"(" + storage + _int(offset) + _ints(*size) + _ints(*stride) + b"\x89" + hooks
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"tR"


def test_reader_zip_format(tmp_path: Path) -> None:
    """A hand-written zip checkpoint (what ``torch.save`` writes): strided and int64 tensors."""
    body = _text("w") + _tensor("FloatStorage", "0", 6, 0, (2, 3), (1, 2))
    body += _text("n") + _tensor("LongStorage", "1", 4, 1, (2,), (2,))
    payload = b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."
    path = tmp_path / "tiny.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tiny/data.pkl", payload)
        archive.writestr("tiny/byteorder", "little")
        archive.writestr("tiny/data/0", np.arange(6, dtype="<f4").tobytes())
        archive.writestr("tiny/data/1", np.array([10, 11, 12, 13], dtype="<i8").tobytes())
    state = el.read_torch_checkpoint(path)
    assert list(state) == ["w", "n"]
    np.testing.assert_array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(3, 2).T)
    assert state["n"].dtype == np.int64
    np.testing.assert_array_equal(state["n"], [11, 13])
