"""The request mix: every kind of good and hostile request, with its expected answer.

Expected answers are computed without the server (:class:`Reference`: onnxruntime on
``core.preprocessing`` output); hostile requests expect their documented status.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.decision import NO_FACE, DecisionRule, decide

PROBABILITY_TOLERANCE = 1e-4  # batched vs single runs of a real CNN differ by ~1e-6


@dataclass(frozen=True)
class Kind:
    """One kind of request: how to send it and what the answer must be."""

    name: str
    good: bool
    weight: float
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/octet-stream"
    expected: int = 200
    check: Callable[[dict], str | None] | None = None  # a problem sentence, or None
    auth: str = "client"  # key sent: "client" (its own, when keys are on), "none" or "wrong"


class Reference:
    """Expected answers computed without the server: onnxruntime on core.preprocessing."""

    def __init__(self, entry) -> None:
        import onnxruntime as ort

        self.entry = entry
        self.config = entry.preprocess_config()  # the model's own contract (face crop too)
        self.session = ort.InferenceSession(
            str(entry.onnx_path), providers=["CPUExecutionProvider"]
        )

    def raw_probability(self, rows: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(["probability_fake"], {self.entry.input_name: rows})
        return np.asarray(output, np.float64).reshape(-1)

    def probability(self, data: bytes) -> float | None:
        """The calibrated P(fake) the server must answer (its most suspicious face's), or
        None where the contract looks for a face and finds none (a NO_FACE answer)."""
        from core.decision import calibrate
        from core.preprocessing import preprocess_upload

        upload = preprocess_upload(data, self.config)
        if upload.no_face:
            return None
        raw = self.raw_probability(upload.model_rows()).max()
        return float(calibrate(np.float64(raw), self.entry.temperature))


def prediction_check(expected: float | None, rule: DecisionRule) -> Callable[[dict], str | None]:
    """A check of one prediction: ``expected`` P(fake) and the model's own verdict for it, or
    NO_FACE without a probability where ``expected`` is None."""

    def check(body: dict) -> str | None:
        got = body.get("probability_fake")
        if expected is None:
            if body.get("label") != NO_FACE or got is not None:
                return f"label {body.get('label')}, probability {got}; expected NO_FACE"
            return None
        if not isinstance(got, float) or abs(got - expected) > PROBABILITY_TOLERANCE:
            return f"probability {got}, expected {expected:.6f}"
        label, _ = decide(expected, rule)
        edges = (rule.real_below, rule.fake_from)
        clear = all(abs(expected - edge) > PROBABILITY_TOLERANCE for edge in edges)
        if clear and body.get("label") != label:
            return f"label {body.get('label')}, expected {label}"
        return None

    return check


def _multipart(parts: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "soakBoundary7d1e"
    chunks = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
        for field_name, filename, kind, data in parts
    ]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def good_images(seed: int) -> list[tuple[bytes, str]]:
    from PIL import Image

    from benchmarks.images import synthetic_jpegs

    images = [(data, "image/jpeg") for data in synthetic_jpegs(12, 256, seed)]
    rng = np.random.default_rng(seed + 1)
    for index in range(6):
        rgb = rng.integers(0, 256, (40 + 17 * index, 64 + 9 * index, 3), dtype=np.uint8)
        rgb = np.clip(rgb * (0.3 + 0.12 * index), 0, 255).astype(np.uint8)
        mode = ("RGB", "RGBA", "L")[index % 3]
        buffer = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buffer, format="PNG")
        images.append((buffer.getvalue(), "image/png"))
    return images + face_images(seed)


def face_images(seed: int, count: int = 6) -> list[tuple[bytes, str]]:
    """Photos with one real face each (the uploads benchmark's astronaut on a noisy
    background, at several sizes, places and JPEG qualities): what a face-crop model judges;
    the images above get NO_FACE from it."""
    from benchmarks.uploads import background, encode, with_faces

    rng = np.random.default_rng(seed + 2)
    images = []
    for index in range(count):
        side = int(rng.integers(160, 300))
        width, height = side + int(rng.integers(40, 200)), side + int(rng.integers(40, 200))
        place = (int(rng.integers(0, width - side)), int(rng.integers(0, height - side)))
        photo = with_faces(background(width, height, seed + index, False), side, [place])
        images.append((encode(photo, "JPEG", quality=int(rng.integers(70, 96))), "image/jpeg"))
    return images


def _bad_bodies() -> dict[str, bytes]:
    import struct
    import zlib

    from PIL import Image

    from benchmarks.images import synthetic_jpegs

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
    ppm = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(ppm, format="PPM")
    jpeg = synthetic_jpegs(1, 64, 99)[0]
    return {"bomb": bomb + chunk(b"IEND", b""), "ppm": ppm.getvalue(), "truncated": jpeg[:300]}


def build_traffic(entry, reference: Reference, has_cam: bool, seed: int) -> list[Kind]:
    """The request kinds of the mix, with their expected answers precomputed."""
    images = good_images(seed)
    # each image's expected answer, computed once (a face search and a model run each)
    checks = [prediction_check(reference.probability(data), entry.decision) for data, _ in images]
    kinds: list[Kind] = []
    for index, (data, content_type) in enumerate(images):
        kinds += _image_kinds(index, data, content_type, checks[index], len(images), has_cam)
    bad = _bad_bodies()
    kinds.append(_batch_kind(images, checks, bad))
    kinds += _v2_kinds(entry, reference)
    kinds += [
        Kind("list models", True, 2.5, "GET", "/v1/models"),
        Kind("ready", True, 2.5, "GET", "/v2/health/ready"),
    ]
    return kinds + _bad_kinds(entry, bad)


def _image_kinds(
    index: int,
    data: bytes,
    content_type: str,
    check: Callable[[dict], str | None],
    count: int,
    has_cam: bool,
) -> list[Kind]:
    """One good image as a raw upload, a multipart upload and (with a CAM) an explanation,
    each answer judged by ``check``."""
    body, form_type = _multipart([("file", f"face{index}.img", content_type, data)])
    kinds = [
        Kind(f"predict raw #{index}", True, 35 / count, "POST", "/v1/predict", data,
             content_type, check=check),
        Kind(f"predict multipart #{index}", True, 15 / count, "POST", "/v1/predict", body,
             form_type, check=check),
    ]  # fmt: skip
    if has_cam:
        kinds.append(
            Kind(f"explain cam #{index}", True, 4 / count, "POST", "/v1/explain?method=cam",
                 data, content_type, check=lambda body: check(body.get("prediction", {})))
        )  # fmt: skip
    return kinds


def _batch_kind(images: list, checks: list, bad: dict) -> Kind:
    """A batch of four files, one of them truncated: three results and one bad_image
    (``checks`` judge ``images``' answers, one each)."""
    batch_files = [images[0], (bad["truncated"], "image/jpeg"), images[-1], images[5]]
    batch_body, batch_type = _multipart(
        [("files", f"b{i}", kind, data) for i, (data, kind) in enumerate(batch_files)]
    )
    batch_checks = [checks[0], None, checks[-1], checks[5]]  # None: the truncated file

    def check_batch(body: dict) -> str | None:
        results = body.get("results", [])
        if len(results) != len(batch_checks):
            return f"{len(results)} results for {len(batch_checks)} files"
        for result, check in zip(results, batch_checks, strict=True):
            if check:
                problem = check(result)
            else:
                code = result.get("error", {}).get("code")
                problem = None if code == "bad_image" else "no bad_image"
            if problem:
                return problem
        return None

    return Kind("batch of 4 with a broken file", True, 8, "POST", "/v1/predict/batch",
                batch_body, batch_type, check=check_batch)  # fmt: skip


def _v2_kinds(entry, reference: Reference) -> list[Kind]:
    size = entry.input_size
    rng = np.random.default_rng(3)
    rows = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    expected = reference.raw_probability(rows)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": entry.input_name,
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.reshape(-1).tolist(),
                }
            ]
        }
    )

    def check(answer: dict) -> str | None:
        data = answer.get("outputs", [{}])[0].get("data", [])
        if len(data) != 2 or np.abs(np.asarray(data) - expected).max() > PROBABILITY_TOLERANCE:
            return f"v2 outputs {data}, expected {expected.tolist()}"
        return None

    return [
        Kind(
            "v2 infer, 2 rows",
            True,
            3,
            "POST",
            f"/v2/models/{entry.name}/infer",
            body.encode(),
            "application/json",
            check=check,
        )
    ]


def _bad_kinds(entry, bad: dict[str, bytes]) -> list[Kind]:
    size = entry.input_size * entry.input_size * 3
    nan = json.dumps(
        {
            "inputs": [
                {
                    "name": entry.input_name,
                    "datatype": "FP32",
                    "shape": [1, entry.input_size, entry.input_size, 3],
                    "data": [float("nan")] * size,
                }
            ]
        }
    ).encode()
    infer = f"/v2/models/{entry.name}/infer"
    empty_form, empty_type = _multipart([("file", "empty.png", "image/png", b"")])
    garbage = random.Random(7).randbytes(2048)
    rows = [  # (name, method, path, body, content type, expected status)
        ("garbage bytes", "POST", "/v1/predict", garbage, "image/jpeg", 400),
        ("truncated JPEG", "POST", "/v1/predict", bad["truncated"], "image/jpeg", 400),
        ("empty file", "POST", "/v1/predict", empty_form, empty_type, 400),
        ("pixel bomb header", "POST", "/v1/predict", bad["bomb"], "image/png", 413),
        ("PPM (unsupported)", "POST", "/v1/predict", bad["ppm"], "image/x-portable-pixmap", 415),
        ("text/plain upload", "POST", "/v1/predict", bad["truncated"], "text/plain", 415),
        ("unknown model", "POST", "/v1/predict?model=nope", bad["truncated"], "image/jpeg", 404),
        ("path traversal name", "POST", "/v1/predict?model=..%2F..%2Fetc", b"x", "image/png", 400),
        ("malformed JSON", "POST", infer, b'{"inputs": [', "application/json", 400),
        ("NaN tensor", "POST", infer, nan, "application/json", 400),
        (
            "deeply nested JSON",
            "POST",
            infer,
            b"[" * 100_000 + b"]" * 100_000,
            "application/json",
            400,
        ),
        ("GET on predict", "GET", "/v1/predict", b"", "", 405),
    ]
    return [
        Kind(name, False, 1.0, method, path, body, kind, expected)
        for name, method, path, body, kind, expected in rows
    ]


def access_kinds() -> list[Kind]:
    """Hostile requests for a server with API keys: no key, a wrong key (401 each)."""
    return [
        Kind("no API key", False, 1.0, "GET", "/v1/models", expected=401, auth="none"),
        Kind("wrong API key", False, 1.0, "POST", "/v1/predict", b"x", "image/png", 401,
             auth="wrong"),
    ]  # fmt: skip
