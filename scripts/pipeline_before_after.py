"""The in-process pipeline limit before and after the decode and face-search changes.

"Before" replays the old path with today's code: Pillow's JPEG decoder (simplejpeg switched
off) and one Haar-cascade search for faces down to a tenth of the shorter side (the cascade
served before YuNet, kept in ``scripts/compare_face_search.py``), on the model entry of a
given commit; "after" is the shipped path and model. Same images, same sweep
(benchmarks.pipeline).

    git archive 5a2c416 models/lite0 | tar -x -C /tmp/before
    python scripts/pipeline_before_after.py --before-models /tmp/before/models
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import core.facecrop as facecrop
import core.preprocessing as preprocessing
from benchmarks.images import load_images
from benchmarks.pipeline import PipelineConfig, measure_pipeline
from benchmarks.sysinfo import describe_machine, machine_slug
from core.modelrepo import ModelRepository

OLD_MIN_FACE_FRACTION = 0.1


def run(models: Path, name: str, images, config: PipelineConfig, legacy: bool) -> dict:
    """The pipeline limit of ``name`` in ``models``; ``legacy`` restores the old decode/search."""
    turbo, face_region = preprocessing._simplejpeg, facecrop.face_region
    if legacy:
        from compare_face_search import haar_cascade, haar_region  # this folder keeps Haar

        cascades = threading.local()  # a cascade is not thread-safe

        def old_search(rgb):
            if not hasattr(cascades, "one"):
                cascades.one = haar_cascade()
            return haar_region(rgb, cascades.one, False, OLD_MIN_FACE_FRACTION)

        preprocessing._simplejpeg = None
        facecrop.face_region = old_search
    try:
        return measure_pipeline(ModelRepository(models).entry(name), images, config)
    finally:
        preprocessing._simplejpeg, facecrop.face_region = turbo, face_region


def decode_ms(payloads: tuple[bytes, ...], size: int, rounds: int = 5) -> dict:
    """Median ms per upload to decode it at the face-crop draft size, Pillow against
    simplejpeg (one thread; the pixels are the same)."""
    draft = size * preprocessing.FACE_DRAFT_FACTOR
    timings = {}
    turbo = preprocessing._simplejpeg
    for name, module in (("pillow", None), ("simplejpeg", turbo)):
        preprocessing._simplejpeg = module
        runs = []
        for _ in range(rounds):
            started = time.perf_counter()
            for payload in payloads:
                preprocessing.open_image(payload, draft_size=draft).convert("RGB")
            runs.append((time.perf_counter() - started) * 1000.0 / len(payloads))
        timings[name] = round(sorted(runs)[len(runs) // 2], 3)
    preprocessing._simplejpeg = turbo
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-models", type=Path, required=True, help="old model repository")
    parser.add_argument("--models", type=Path, default=Path("models"), help="shipped repository")
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per setting")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    images = load_images(None, 64)
    config = PipelineConfig(batch_sizes=(8, 16, 32), seconds_per_setting=args.seconds,
                            session_variants=())  # fmt: skip
    machine = describe_machine()
    before = run(args.before_models, args.model, images, config, legacy=True)
    after = run(args.models, args.model, images, config, legacy=False)
    gain = after["limit"]["images_per_s"] / before["limit"]["images_per_s"]
    decode = decode_ms(images.payloads, 224)
    report = {
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "images": images.describe(),
        "config": asdict(config),
        "before": {
            "decode": "Pillow",
            "face_search": f"full, >= {OLD_MIN_FACE_FRACTION:g}",
            **before,
        },
        "after": {
            "decode": "simplejpeg (libjpeg-turbo)",
            "face_search": f"{facecrop.DETECTOR_NAME}, >= {facecrop.MIN_FACE_FRACTION:g}",
            **after,
        },  # fmt: skip
        "limit_gain": round(gain, 3),
        "decode_ms_per_upload": decode,
    }
    path = args.out / f"pipeline-before-after-{machine_slug(machine)}-{report['created'][:10]}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{path}: {before['limit']['images_per_s']} -> {after['limit']['images_per_s']} img/s "
          f"({gain:.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
