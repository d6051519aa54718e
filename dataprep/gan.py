"""Generate StyleGAN2-family face images on the CPU with MobileStyleGAN (OpenVINO IR).

The generator ships inside PyPI ``random-face==2021.7.21.1`` (``random_face/data/``:
``MappingNetwork`` and ``SynthesisNetwork`` as OpenVINO IR; MobileStyleGAN, a StyleGAN2
distilled from FFHQ). Install it with ``pip install --no-deps random-face==2021.7.21.1``
plus ``openvino`` (``make data-deps``). The package's own loader imports the removed
``openvino.inference_engine`` API, so the IR is read here with ``openvino.Core``.

Every face is reproducible from its row in ``manifest.jsonl``: face ``i`` draws its latent
from ``numpy.random.default_rng([seed, i])`` and uses truncation ``psi[i % len(psi)]``
around a style mean computed from 4,096 latents of ``rng([seed, 2**32 - 1])``. Faces are written
the way photos arrive: JPEG at a recorded quality. Re-running skips faces already in the
manifest whose file exists (resumable; Ctrl-C loses at most the face in flight).

    python -m dataprep.gan --out data/gan --count 6000 --psi 0.7,1.0
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.options import option, options_parser, parse_config, parse_floats, parse_optional_path
from core.preprocessing import encode_jpeg

STYLE_DIM = 512
STYLE_MEAN_SAMPLES = 4096
STYLE_MEAN_STREAM = 2**32 - 1  # rng stream of the style-mean latents (no face index)
GENERATOR = "MobileStyleGAN (random-face==2021.7.21.1, OpenVINO IR)"
LICENCE = "random-face: Apache-2.0; StyleGAN2/FFHQ teacher: NVIDIA Source Code License-NC"


Synthesise = Callable[[np.ndarray, float], np.ndarray]  # (1, 512) latent, psi -> HxWx3 uint8


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and where."""

    out: Path = option(Path("data/gan"), "output folder", Path, metavar="DIR")
    count: int = option(6000, "faces in total", int)
    psi: tuple[float, ...] = option(
        (0.7, 1.0), "truncation values; face i uses psi[i %% len]", parse_floats
    )
    seed: int = option(0, "base seed", int)
    quality: int = option(95, "JPEG quality", int)
    model_dir: Path | None = option(
        None, "folder with the IR (default: random_face/data in the installed package)",
        parse_optional_path, metavar="DIR",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if not self.psi or any(not 0.0 < p <= 1.5 for p in self.psi):
            raise ValueError(f"psi values must lie in (0, 1.5], got {self.psi}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")


def package_model_dir() -> Path:
    """``random_face/data`` of the installed package, found without importing it (its
    ``__init__`` needs ``gdown`` and the removed OpenVINO API)."""
    spec = importlib.util.find_spec("random_face")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "random-face is not installed: pip install --no-deps random-face==2021.7.21.1"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def latent(seed: int, index: int) -> np.ndarray:
    """The (1, 512) latent of face ``index``; independent of every other face."""
    return np.random.default_rng([seed, index]).standard_normal((1, STYLE_DIM), np.float32)


def tensor_to_rgb(tensor: np.ndarray) -> np.ndarray:
    """Generator output (3, H, W) in [-1, 1] to an HxWx3 ``uint8`` RGB image."""
    scaled = (np.clip(tensor, -1.0, 1.0) + 1.0) * 127.5 + 0.5
    return np.clip(scaled, 0, 255).astype(np.uint8).transpose(1, 2, 0)


class OpenVinoGenerator:
    """MobileStyleGAN's mapping and synthesis networks compiled for the CPU."""

    def __init__(self, model_dir: Path, seed: int) -> None:
        import openvino as ov

        core = ov.Core()
        mapping = core.read_model(model_dir / "MappingNetwork.xml")
        self._mapping = core.compile_model(mapping, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        many = core.read_model(model_dir / "MappingNetwork.xml")
        many.reshape({"var": [STYLE_MEAN_SAMPLES, STYLE_DIM]})
        latents = np.random.default_rng([seed, STYLE_MEAN_STREAM]).standard_normal(
            (STYLE_MEAN_SAMPLES, STYLE_DIM), np.float32
        )
        styles = core.compile_model(many, "CPU")(latents)[0]
        self.style_mean = styles.mean(axis=0, keepdims=True)
        synthesis = core.read_model(model_dir / "SynthesisNetwork.xml")
        self._synthesis = core.compile_model(synthesis, "CPU", {"PERFORMANCE_HINT": "LATENCY"})

    def __call__(self, z: np.ndarray, psi: float) -> np.ndarray:
        style = self._mapping(z)[0]
        style = self.style_mean + psi * (style - self.style_mean)
        return tensor_to_rgb(self._synthesis(style)[0][0])


def read_manifest(path: Path) -> dict[int, dict]:
    """Rows already written, by face index (a torn last line is ignored)."""
    rows: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[int(row["index"])] = row
    return rows


def generate(config: GenerateConfig, synthesise: Synthesise) -> int:
    """Write the faces that are missing; returns how many were written this run."""
    images = config.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    manifest = config.out / "manifest.jsonl"
    done = {i for i, row in read_manifest(manifest).items() if (config.out / row["file"]).exists()}
    todo = [i for i in range(config.count) if i not in done]
    with manifest.open("a") as sink:
        for index in tqdm(todo, desc="faces", unit="face", initial=len(done), total=config.count):
            psi = config.psi[index % len(config.psi)]
            data = encode_jpeg(synthesise(latent(config.seed, index), psi), config.quality)
            name = f"images/{index:06d}.jpg"
            (config.out / name).write_bytes(data)
            row = {
                "index": index,
                "file": name,
                "seed": [config.seed, index],
                "psi": psi,
                "jpeg_quality": config.quality,
                "sha256": hashlib.sha256(data).hexdigest(),
                "generator": GENERATOR,
                "licence": LICENCE,
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()
    return len(todo)


def parse_args(argv: Sequence[str] | None = None) -> GenerateConfig:
    parser = options_parser(
        "python -m dataprep.gan",
        "Generate GAN faces (MobileStyleGAN via OpenVINO) as JPEGs + manifest.",
        GenerateConfig,
    )
    return parse_config(parser, GenerateConfig, argv)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    generator = OpenVinoGenerator(config.model_dir or package_model_dir(), config.seed)
    written = generate(config, generator)
    print(f"wrote {written} faces; {config.count} in {config.out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main(sys.argv[1:])
