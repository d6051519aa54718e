"""The seed-style baseline: Flask + Keras ``model.predict`` per request, no batching.

This is what a first prototype of the product looks like, kept minimal on purpose so the
benchmark can show what the real server buys: one request -> decode -> ``model.predict``
on a batch of one -> JSON. It is served by Werkzeug's threaded WSGI server, which is what
Flask's own ``app.run()`` uses (threaded by default since Flask 1.0), i.e. the seed-like
choice. Preprocessing is the shared ``core.preprocessing`` with the model's contract (the
entry's ``face_crop``), so only the serving differs.

    python -m benchmarks.baseline_flask --keras runs/texture/model.keras --port 8100
    python -m benchmarks.baseline_flask --entry models/texture/1 --port 8100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from core.decision import calibrate, decide
from core.modelrepo import ModelEntry
from core.preprocessing import ImageError, PreprocessConfig, preprocess_bytes


def resolve_keras_source(entry: Path | None, keras_path: Path | None) -> tuple[Path | None, str]:
    """Which ``.keras`` file to serve, and a sentence saying where it came from.

    ``--keras`` wins; else ``metadata.json``'s ``source.keras_model`` (relative paths are
    tried against the working directory and the entry folder). ``None`` means none exists.
    """
    if keras_path is not None:
        if not keras_path.is_file():
            raise FileNotFoundError(f"Keras model not found: {keras_path}")
        return keras_path, f"--keras {keras_path}"
    if entry is None:
        return None, "no --keras and no repository entry given"
    metadata = json.loads((entry / "metadata.json").read_text())
    source = (metadata.get("source") or {}).get("keras_model")
    if not source:
        return None, f"{entry}/metadata.json has no source.keras_model"
    for candidate in (Path(source), entry / source):
        if candidate.is_file():
            return candidate, f"source.keras_model of {entry}/metadata.json"
    return None, f"source.keras_model {source!r} of {entry}/metadata.json does not exist"


def load_model(entry: Path | None, keras_path: Path | None):
    """The Keras model and a dict saying whether its weights match the ONNX model."""
    import keras

    path, origin = resolve_keras_source(entry, keras_path)
    if path is not None:
        model = keras.models.load_model(path, compile=False)
        return model, {"keras_model": str(path), "origin": origin, "weights_match_onnx": True}
    from train.zoo import build_model

    kind = "cnn"
    if entry is not None:
        name = json.loads((entry / "metadata.json").read_text()).get("name", "cnn")
        kinds = ("xception", "lite0", "texture")
        kind = next((k for k in kinds if k in str(name).lower()), "cnn")
    model = build_model(kind, weights=None)
    return model, {
        "keras_model": None,
        "origin": f"{origin}; built train.zoo.build_model({kind!r}) with random weights",
        "weights_match_onnx": False,
    }


def create_app(model, info: dict, threshold: float = 0.5, temperature: float = 1.0,
               config: PreprocessConfig | None = None):  # fmt: skip
    """The Flask app: ``POST /v1/predict`` (raw body or multipart ``file``) and health.
    ``config``: the model's contract (the same face crop and alignment as our server's)."""
    from flask import Flask, jsonify, request

    app = Flask("baseline_flask")
    config = config or PreprocessConfig(size=int(model.input_shape[1]))

    @app.get("/v2/health/ready")
    @app.get("/v2/health/live")
    def health():
        return jsonify({"ready": True})

    @app.get("/v1/info")
    def describe():
        return jsonify(info)

    @app.post("/v1/predict")
    def predict():
        started = time.perf_counter()
        upload = request.files.get("file")
        data = upload.read() if upload is not None else request.get_data()
        try:
            image = preprocess_bytes(data, config)
        except ImageError as exc:
            error = {"code": "bad_image", "message": str(exc)}
            return jsonify({"error": error}), exc.status
        probability = float(model.predict(image[None], verbose=0)[0, 0])
        p_cal = float(calibrate(probability, temperature))
        label, confidence = decide(p_cal, threshold)
        return jsonify(
            {
                "label": label,
                "probability_fake": p_cal,
                "confidence": confidence,
                "threshold": threshold,
                "model": "baseline-keras",
                "version": 0,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
            }
        )

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.baseline_flask",
        description="Seed-style baseline: Flask + Keras model.predict per request, no batching, "
        "served by Werkzeug's threaded WSGI server (what Flask's app.run() uses).",
    )
    parser.add_argument("--entry", type=Path, help="model repository entry, e.g. models/texture/1")
    parser.add_argument("--keras", type=Path, help="the .keras file (overrides the entry's)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        model, info = load_model(args.entry, args.keras)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    threshold, temperature = 0.5, 1.0
    config = PreprocessConfig(size=int(model.input_shape[1]))
    if args.entry is not None:  # its contract, read as the server reads it
        metadata = json.loads((args.entry / "metadata.json").read_text())
        entry = ModelEntry(args.entry.parent.name, 0, args.entry, metadata)  # name, version unused
        threshold, temperature = entry.threshold, entry.temperature
        config = entry.preprocess_config()
    info["face_crop"], info["face_align"] = config.face_crop, config.face_align
    model.predict(np.zeros((1, *model.input_shape[1:]), np.float32), verbose=0)  # warm-up
    print(json.dumps(info), flush=True)
    from werkzeug.serving import run_simple

    app = create_app(model, info, threshold, temperature, config)
    run_simple(args.host, args.port, app, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
