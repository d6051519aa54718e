"""The catalogue of hostile requests, how to send them to a real server, and how to judge
the answer. Used by ``test_reliability_hostile.py`` and by ``record_cases.py`` (which writes
``benchmarks/results/reliability-cases.json`` for the README table).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import reliability_images as images
from helpers import TinyModelSpec, png_image, write_model_entry
from helpers import evidence_files as files
from PIL import Image
from reliability_http import Answer, multipart, request, stream_upload

from core.decision import calibrate, decide
from core.preprocessing import PreprocessConfig, preprocess_bytes

MODEL = "cnn"
INPUT_SIZE = 32
MB = 1024 * 1024
UPLOAD_LIMIT = 10 * MB  # the server's default --max-body-bytes
SERVER_ARGS = (
    "--intra-op-threads", "1", "--decode-threads", "2", "--warmup-batch-sizes", "1",
    "--log-level", "warning",
)  # fmt: skip
ERROR_STATUSES = frozenset({400, 404, 405, 413, 415, 422})
DOCUMENTED_STATUSES = frozenset({200, *ERROR_STATUSES, 501, 503, 504})

Build = Callable[[], tuple[bytes, dict[str, str]]]


def write_repository(root: Path) -> Path:
    """The model repository every reliability server serves: the tiny ``cnn/1`` model."""
    write_model_entry(root, MODEL, 1, TinyModelSpec(size=INPUT_SIZE))
    return root


@dataclass(frozen=True)
class Stream:
    """A body too large to hold: ``total_bytes`` streamed (chunked or with Content-Length)."""

    total_bytes: int
    declare_length: bool
    as_multipart: bool = False


@dataclass(frozen=True)
class Case:
    """One hostile (or unusual) request and the answer the contract promises for it."""

    name: str
    group: str
    method: str
    target: str
    expected: int
    code: str | None = None
    build: Build | None = None
    image: Callable[[], bytes] | None = None  # 200 on predict: the answer is checked for this
    tensor: Callable[[], np.ndarray] | None = None  # 200 on v2 infer: checked for this batch
    stream: Stream | None = None
    known_bug: str | None = None  # a deviation in code this suite may not change
    evidence: tuple[str, str] | None = None  # 200 on predict: (kind, strength) of 1st finding

    @property
    def id(self) -> str:
        return f"{self.group}: {self.name}"


@dataclass
class Outcome:
    """What the server answered for one case, and what was wrong with it."""

    case: Case
    status: int | None
    problems: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems

    def record(self) -> dict:
        return {
            "group": self.case.group,
            "case": self.case.name,
            "request": f"{self.case.method} {_short(self.case.target)}",
            "expected_status": self.case.expected,
            "expected_code": self.case.code,
            "observed_status": self.status,
            "passed": self.passed,
            "problems": self.problems,
            "detail": self.detail,
            "known_bug": self.case.known_bug,
        }


def _short(target: str, limit: int = 60) -> str:
    return target if len(target) <= limit else f"{target[:limit]}... ({len(target)} chars)"


# --- request builders ------------------------------------------------------------------------


def raw(data: Callable[[], bytes], content_type: str | None = "image/jpeg") -> Build:
    def build() -> tuple[bytes, dict[str, str]]:
        return data(), ({"Content-Type": content_type} if content_type else {})

    return build


def form(*parts: tuple[str, str | None, str | None, Callable[[], bytes]]) -> Build:
    def build() -> tuple[bytes, dict[str, str]]:
        body, content_type = multipart([(n, f, t, data()) for n, f, t, data in parts])
        return body, {"Content-Type": content_type}

    return build


def as_jpg_upload(data: Callable[[], bytes]) -> Build:
    """The way a disguised file arrives from a browser: ``face.jpg``, ``image/jpeg``."""
    return form(("file", "face.jpg", "image/jpeg", data))


def json_body(payload: object) -> Build:
    return raw(lambda: json.dumps(payload).encode(), "application/json")


def good_tensor() -> np.ndarray:
    values = np.linspace(0.0, 255.0, INPUT_SIZE * INPUT_SIZE * 3 * 2, dtype=np.float32)
    return values.reshape(2, INPUT_SIZE, INPUT_SIZE, 3)


def v2_input(**changes: object) -> dict:
    tensor = {
        "name": "image",
        "shape": [1, INPUT_SIZE, INPUT_SIZE, 3],
        "datatype": "FP32",
        "data": [100.0] * (INPUT_SIZE * INPUT_SIZE * 3),
    }
    return {**tensor, **changes}


GOOD_PNG = png_image(21, mean=150.0)
GOOD_UPLOAD = raw(lambda: GOOD_PNG, "image/png")
GOOD_V2 = json_body({"inputs": [v2_input()]})


# --- the catalogue ---------------------------------------------------------------------------


def upload_cases() -> list[Case]:
    cases = []
    for name, data in images.UNREADABLE.items():
        cases.append(Case(name, "upload", "POST", "/v1/predict", 400, "bad_image",
                          as_jpg_upload(data)))  # fmt: skip
    cases += [
        Case("text bytes as raw octet-stream", "upload", "POST", "/v1/predict", 400, "bad_image",
             raw(images.UNREADABLE["text bytes"], "application/octet-stream")),
        Case("0-byte raw body", "upload", "POST", "/v1/predict", 400, "bad_image",
             raw(lambda: b"", "image/png")),
        Case("20000x20000 1-bit PNG pixel bomb (~50 kB)", "size", "POST", "/v1/predict", 413,
             "image_too_large", as_jpg_upload(images.pixel_bomb)),
        Case("pixel bomb on explain", "size", "POST", "/v1/explain", 413, "image_too_large",
             raw(images.pixel_bomb, "image/png")),
        Case("JPEG header claiming 65000x65000", "size", "POST", "/v1/predict", 413,
             "image_too_large", raw(images.jpeg_claiming_huge_size)),
        Case("100 MB body, chunked", "size", "POST", "/v1/predict", 413, "payload_too_large",
             stream=Stream(100 * MB, declare_length=False)),
        Case("100 MB body, Content-Length", "size", "POST", "/v1/predict", 413,
             "payload_too_large", stream=Stream(100 * MB, declare_length=True)),
        Case("100 MB multipart file, chunked", "size", "POST", "/v1/predict", 413,
             "payload_too_large", stream=Stream(100 * MB, False, as_multipart=True)),
    ]  # fmt: skip
    for name, data in images.LYING_SIZE.items():
        cases.append(Case(name, "size", "POST", "/v1/predict", 413, "image_too_large",
                          as_jpg_upload(data)))  # fmt: skip
    for name, data in images.SUPPORTED.items():
        cases.append(Case(name, "format", "POST", "/v1/predict", 200, None,
                          form(("file", "face.img", "image/jpeg", data)), image=data))  # fmt: skip
    gif = images.SUPPORTED["animated GIF (first frame used)"]
    cases.append(Case("animated GIF on explain", "format", "POST", "/v1/explain", 200, None,
                      raw(gif, "image/gif"), image=gif))  # fmt: skip
    for name, data in images.UNSUPPORTED.items():
        cases.append(Case(name, "format", "POST", "/v1/predict", 415, "unsupported_image_format",
                          raw(data, "image/octet-stream")))  # fmt: skip
    return cases


METADATA = {  # name -> (file, kind and strength of the evidence finding the answer must have)
    "XMP that is not well-formed XML": (
        lambda: files.jpeg_with_xmp(b"<x:xmpmeta><rdf:RDF>"), ("xmp", "unreadable")),
    "XMP with a billion-laughs DTD": (
        lambda: files.jpeg_with_xmp(files.billion_laughs_xmp()), ("xmp", "unreadable")),
    "EXIF without a TIFF header": (files.jpeg_with_broken_exif, ("exif", "unreadable")),
    "2 MB XMP in a PNG iTXt chunk": (lambda: files.png_with_chunks(files.png_chunk(
        b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + b" " * (2 * MB))),
        ("png_text", "unreadable")),
    "corrupt zTXt text chunk": (lambda: files.png_with_chunks(files.png_chunk(
        b"zTXt", b"Comment\x00\x00not zlib")), ("png_text", "unreadable")),
    "300 PNG text chunks": (lambda: files.png_with_chunks(
        *[files.png_chunk(b"tEXt", b"k\x00v")] * 300), ("container", "unreadable")),
    "APP11 C2PA store full of garbage": (files.jpeg_with_bogus_c2pa, ("c2pa", "unreadable")),
    "C2PA manifest, pixels changed after signing": (
        lambda: files.pixels_changed(files.c2pa_signed_jpeg()), ("c2pa", "signed_invalid")),
}  # fmt: skip


def metadata_cases() -> list[Case]:
    """Malformed, huge or forged metadata: the model still answers, the evidence section
    says what could not be read (or did not validate); never a 500."""
    cases = [
        Case(name, "metadata", "POST", "/v1/predict", 200, None,
             form(("file", "face.img", "image/jpeg", data)), image=data, evidence=evidence)
        for name, (data, evidence) in METADATA.items()
    ]  # fmt: skip
    return cases + [
        Case("zTXt inflating to 64 MB (Pillow refuses the image)", "metadata", "POST",
             "/v1/predict", 400, "bad_image",
             raw(lambda: files.png_with_chunks(files.ztxt_bomb()), "image/png")),
        Case("PNG text chunk failing its CRC", "metadata", "POST", "/v1/predict", 400,
             "bad_image", raw(lambda: files.png_with_chunks(files.png_chunk(
                 b"tEXt", b"parameters\x00Steps: 20", crc=1)), "image/png")),
    ]  # fmt: skip


def multipart_cases() -> list[Case]:
    png = lambda: GOOD_PNG  # noqa: E731
    text = lambda: b"just text"  # noqa: E731
    many_fields = [(f"f{i}", None, None, text) for i in range(40)]
    return [
        Case("no file part (text field only)", "multipart", "POST", "/v1/predict", 400,
             "bad_parameter", form(("comment", None, None, text))),
        Case("wrong field name 'image'", "multipart", "POST", "/v1/predict", 400,
             "bad_parameter", form(("image", "a.png", "image/png", png))),
        Case("field 'file' sent as text", "multipart", "POST", "/v1/predict", 400,
             "bad_parameter", form(("file", None, None, text))),
        Case("empty file part", "multipart", "POST", "/v1/predict", 400, "bad_image",
             form(("file", "a.png", "image/png", lambda: b""))),
        Case("multipart without boundary", "multipart", "POST", "/v1/predict", 400,
             "malformed_multipart", raw(lambda: b"--x\r\n", "multipart/form-data")),
        Case("garbage multipart body", "multipart", "POST", "/v1/predict", 400,
             "malformed_multipart",
             raw(lambda: b"\x00\xff" * 50, "multipart/form-data; boundary=zz")),
        Case("40 text fields", "multipart", "POST", "/v1/predict", 400, "malformed_multipart",
             form(*many_fields)),
        Case("65 files in one batch", "multipart", "POST", "/v1/predict/batch", 422,
             "parameter_out_of_range", form(*[("files", f"{i}.png", "image/png", png)
                                              for i in range(65)])),
        Case("batch without files", "multipart", "POST", "/v1/predict/batch", 400,
             "bad_parameter", form(("other", "a.png", "image/png", png))),
        Case("raw body to batch", "multipart", "POST", "/v1/predict/batch", 415,
             "unsupported_media_type", GOOD_UPLOAD),
        Case("Content-Type text/plain", "multipart", "POST", "/v1/predict", 415,
             "unsupported_media_type", raw(png, "text/plain")),
        Case("no Content-Type", "multipart", "POST", "/v1/predict", 415,
             "unsupported_media_type", raw(png, None)),
    ]  # fmt: skip


def v2_cases() -> list[Case]:
    infer = f"/v2/models/{MODEL}/infer"
    size = INPUT_SIZE * INPUT_SIZE * 3
    deep = b"[" * 200_000 + b"]" * 200_000
    deep_data = b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 32, 32, 3], '
    deep_data += b'"data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}"
    nan_json = json.dumps({"inputs": [v2_input(data=[float("nan")] * size)]}).encode()
    inf_cam = json.dumps(
        {"inputs": [v2_input(data=[1e39] * size)], "outputs": [{"name": "cam"}]}
    ).encode()
    tensor = good_tensor()
    good = {"inputs": [v2_input(shape=list(tensor.shape), data=tensor.reshape(-1).tolist())]}
    return [
        Case("two images, both outputs", "v2 infer", "POST", infer, 200,
             build=json_body({**good, "outputs": [{"name": "probability_fake"}, {"name": "cam"}]}),
             tensor=good_tensor),
        Case("malformed JSON", "v2 infer", "POST", infer, 400, "malformed_json",
             raw(lambda: b'{"inputs": [', "application/json")),
        Case("not UTF-8", "v2 infer", "POST", infer, 400, "malformed_json",
             raw(lambda: b"\xff\xfe{}", "application/json")),
        Case("200000-deep nested JSON", "v2 infer", "POST", infer, 400, "malformed_json",
             raw(lambda: deep, "application/json")),
        Case("50000-deep nested data", "v2 infer", "POST", infer, 400, "malformed_json",
             raw(lambda: deep_data, "application/json")),
        Case("JSON list instead of object", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body([1, 2, 3])),
        Case("no inputs", "v2 infer", "POST", infer, 400, "bad_parameter", json_body({})),
        Case("wrong input name", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(name="pixels")]})),
        Case("wrong shape 16x16", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(shape=[1, 16, 16, 3], data=[1.0] * 768)]})),
        Case("rank-3 shape", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(shape=[32, 32, 3])]})),
        Case("batch of 0", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(shape=[0, 32, 32, 3], data=[])]})),
        Case("negative batch", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(shape=[-1, 32, 32, 3])]})),
        Case("datatype INT8", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(datatype="INT8")]})),
        Case("data too short", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(data=[1.0, 2.0])]})),
        Case("data too long", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(data=[1.0] * (size + 1))]})),
        Case("data as strings", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(data=["x"] * size)]})),
        Case("data as an object", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(data={"a": 1})]})),
        Case("ragged nested data", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(data=[[1.0, 2.0], [3.0]])]})),
        Case("NaN values", "v2 infer", "POST", infer, 400, "bad_parameter",
             raw(lambda: nan_json, "application/json")),
        Case("values beyond float32 (inf) with cam", "v2 infer", "POST", infer, 400,
             "bad_parameter", raw(lambda: inf_cam, "application/json")),
        Case("shape [true, 32, 32, 3]", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input(shape=[True, INPUT_SIZE, INPUT_SIZE, 3])]})),
        Case("Infinity literal", "v2 infer", "POST", infer, 400, "bad_parameter",
             raw(lambda: nan_json.replace(b"NaN", b"Infinity"), "application/json")),
        Case("unknown output name", "v2 infer", "POST", infer, 400, "bad_parameter",
             json_body({"inputs": [v2_input()], "outputs": [{"name": "logits"}]})),
        Case("Content-Type text/plain", "v2 infer", "POST", infer, 415,
             "unsupported_media_type", raw(lambda: b"{}", "text/plain")),
    ]  # fmt: skip


NAME_ROUTES = (  # (method, target template, body) for every route that takes a model name
    ("POST", "/v1/predict?model={}", GOOD_UPLOAD),
    ("POST", "/v1/predict/batch?model={}", form(("files", "a.png", "image/png", lambda: GOOD_PNG))),
    ("POST", "/v1/explain?model={}", GOOD_UPLOAD),
    ("GET", "/v2/models/{}", None),
    ("GET", "/v2/models/{}/ready", None),
    ("POST", "/v2/models/{}/infer", GOOD_V2),
    ("GET", "/v2/models/{}/versions/1", None),
    ("GET", "/v2/models/{}/versions/1/ready", None),
    ("POST", "/v2/models/{}/versions/1/infer", GOOD_V2),
)
# (label, as sent, status in a query, code in a query, status in a path, code in a path):
# in a path, '/' (also as %2F, which uvicorn decodes) leaves the route's pattern: no route.
BAD_NAMES = (
    ("unknown name", "nope", 404, "model_not_found", 404, "model_not_found"),
    ("../x", "../x", 400, "invalid_model_name", 404, "not_found"),
    ("..%2F..%2Fetc", "..%2F..%2Fetc", 400, "invalid_model_name", 404, "not_found"),
    ("%00", "%00", 400, "invalid_model_name", 400, "invalid_model_name"),
    ("5000-char name", "a" * 5000, 400, "invalid_model_name", 400, "invalid_model_name"),
    ("unicode 'été'", "%C3%A9t%C3%A9", 400, "invalid_model_name", 400, "invalid_model_name"),
    ("fullwidth 'ｃｎｎ'", "%EF%BD%83%EF%BD%8E%EF%BD%8E", 400, "invalid_model_name", 400,
     "invalid_model_name"),
)  # fmt: skip
VERSION_ROUTES = (
    ("POST", "/v1/predict?version={}", GOOD_UPLOAD),
    ("GET", f"/v2/models/{MODEL}/versions/{{}}", None),
    ("GET", f"/v2/models/{MODEL}/versions/{{}}/ready", None),
    ("POST", f"/v2/models/{MODEL}/versions/{{}}/infer", GOOD_V2),
)
BAD_VERSIONS = (
    ("version 0", "0", 400, "invalid_model_name"),
    ("version -1", "-1", 400, "invalid_model_name"),
    ("version 1.0", "1.0", 400, "invalid_model_name"),
    ("version 'x'", "x", 400, "invalid_model_name"),
    ("version 99", "99", 404, "model_not_found"),
    ("version 10^26", "9" * 26, 400, "invalid_model_name"),  # versions have at most 9 digits
    ("version %00", "%00", 400, "invalid_model_name"),
)


def name_cases() -> list[Case]:
    cases = []
    for method, template, body in NAME_ROUTES:
        in_query = "?" in template
        for label, sent, q_status, q_code, p_status, p_code in BAD_NAMES:
            status, code = (q_status, q_code) if in_query else (p_status, p_code)
            route = template.format("<name>")
            cases.append(Case(f"{label} on {method} {route}", "model name", method,
                              template.format(sent), status, code, body))  # fmt: skip
        if template in ("/v1/predict?model={}", "/v2/models/{}"):
            cases.append(Case(f"'cnn\\n' on {method} {template.format('<name>')}", "model name",
                              method, template.format("cnn%0A"), 400, "invalid_model_name",
                              body))  # fmt: skip
    for method, template, body in VERSION_ROUTES:
        route = template.format("<version>")
        for label, sent, status, code in BAD_VERSIONS:
            cases.append(Case(f"{label} on {method} {route}", "model version", method,
                              template.format(sent), status, code, body))  # fmt: skip
        cases.append(Case(f"version '²' on {method} {route}", "model version", method,
                          template.format("%C2%B2"), 400, "invalid_model_name", body))  # fmt: skip
    return cases


METHOD_MISUSE = (
    ("GET", "/v1/predict"), ("PUT", "/v1/predict"), ("DELETE", "/v1/predict"),
    ("PATCH", "/v1/predict"), ("OPTIONS", "/v1/predict"), ("GET", "/v1/predict/batch"),
    ("GET", "/v1/explain"), ("DELETE", "/v1/models"), ("POST", "/v1/models"),
    ("POST", "/v2/health/live"), ("POST", "/v2/health/ready"), ("PUT", f"/v2/models/{MODEL}"),
    ("DELETE", f"/v2/models/{MODEL}"), ("GET", f"/v2/models/{MODEL}/infer"),
    ("DELETE", f"/v2/models/{MODEL}/infer"), ("POST", "/metrics"), ("DELETE", "/"),
)  # fmt: skip


def method_cases() -> list[Case]:
    return [
        Case(f"{method} {target}", "method", method, target, 405, "method_not_allowed")
        for method, target in METHOD_MISUSE
    ]


def video_cases() -> list[Case]:
    """Broken, disguised and oversized clips: a clear error, never a 500, no temp file left."""
    cases = [
        Case(name, "video", "POST", "/v1/predict/video", status, code,
             form(("file", "clip.mp4", "video/mp4", data)))
        for name, (data, status, code) in images.HOSTILE_VIDEOS.items()
    ]  # fmt: skip
    cases.append(Case("MP4 clip sent to the image route", "video", "POST", "/v1/predict", 400,
                      "bad_image", raw(images.mp4_clip, "image/jpeg")))  # fmt: skip
    return cases


def all_cases() -> list[Case]:
    return (upload_cases() + metadata_cases() + multipart_cases() + v2_cases() + name_cases()
            + method_cases() + video_cases())  # fmt: skip


# --- running and judging ---------------------------------------------------------------------


def multipart_envelope(content_type: str = "image/jpeg") -> tuple[bytes, bytes, str]:
    """(prefix, suffix, Content-Type) around the data of a one-file multipart body."""
    marker = b"\x00MARKER\x00"
    body, form_type = multipart([("file", "big.jpg", content_type, marker)])
    prefix, suffix = body.split(marker)
    return prefix, suffix, form_type


def send(case: Case, port: int, timeout_s: float = 30.0) -> Answer:
    """Send ``case`` to the server on ``port``; streamed bodies never exist in memory."""
    if case.stream is not None:
        prefix, suffix, kind = b"", b"", "image/jpeg"
        if case.stream.as_multipart:
            prefix, suffix, kind = multipart_envelope()
        result = stream_upload(
            port, case.target, kind, case.stream.total_bytes,
            declare_length=case.stream.declare_length, prefix=prefix, suffix=suffix,
            timeout_s=timeout_s,
        )  # fmt: skip
        answer = Answer(result.status or 0, result.headers, result.body, result.seconds)
        answer.headers["x-test-sent-bytes"] = str(result.sent_bytes)
        return answer
    body, headers = case.build() if case.build else (b"", {})
    return request(port, case.method, case.target, body, headers, timeout_s)


class Reference:
    """The expected answers, computed without the server: onnxruntime on core.preprocessing."""

    def __init__(self, repository: Path) -> None:
        import onnxruntime as ort

        folder = repository / MODEL / "1"
        self.metadata = json.loads((folder / "metadata.json").read_text())
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )

    def outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        names = [output.name for output in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, {"image": batch}), strict=True))

    def probabilities(self, images: list[bytes]) -> list[float]:
        """Calibrated probabilities for many uploads, in one model run."""
        rows = np.stack(
            [preprocess_bytes(data, PreprocessConfig(size=INPUT_SIZE)) for data in images]
        )
        raw_p = self.outputs(rows)["probability_fake"].reshape(-1).astype(np.float64)
        temperature = float(self.metadata["temperature"])
        return [float(calibrate(p, temperature)) for p in raw_p]

    def prediction(self, data: bytes) -> dict:
        """label, calibrated probability and confidence /v1/predict must answer for ``data``."""
        row = preprocess_bytes(data, PreprocessConfig(size=INPUT_SIZE))
        raw_p = float(self.outputs(row[None])["probability_fake"][0, 0])
        probability = float(calibrate(np.float64(raw_p), float(self.metadata["temperature"])))
        label, confidence = decide(probability, float(self.metadata["threshold"]))
        return {"label": label, "probability_fake": probability, "confidence": confidence}


def judge(case: Case, answer: Answer, reference: Reference) -> Outcome:
    """Compare an answer with what the case expects; problems are plain sentences."""
    outcome = Outcome(case, answer.status or None)
    problems = outcome.problems
    if answer.status != case.expected:
        problems.append(f"status {answer.status}, expected {case.expected}")
    if answer.status >= 400 or case.expected >= 400:
        error = answer.error()
        if error is None:
            problems.append(f"body is not the contract's error JSON: {answer.body[:120]!r}")
        else:
            outcome.detail = f"{error['code']}: {error['message'][:100]}"
            if case.code and error["code"] != case.code:
                problems.append(f"error code {error['code']!r}, expected {case.code!r}")
    if answer.status == 200 and case.expected == 200:
        problems += _check_success(case, answer, reference)
        if case.evidence:
            outcome.detail = "evidence: " + "; ".join(
                str(finding.get("says", ""))[:90] for finding in answer.json().get("evidence", [])
            )
    if case.stream is not None:
        sent = int(answer.headers.get("x-test-sent-bytes", "0"))
        total = case.stream.total_bytes
        outcome.detail += f" (answered after {sent / MB:.1f} MB of {total / MB:.0f})"
        if sent >= case.stream.total_bytes // 2:
            problems.append(f"the server read {sent} bytes before answering")
    return outcome


def _check_success(case: Case, answer: Answer, reference: Reference) -> list[str]:
    body = answer.json()
    if case.image is not None:
        expected = reference.prediction(case.image())
        got = body.get("prediction", body)
        if "width" in body:  # explain: the overlay has the (first frame's) upload size
            size = Image.open(io.BytesIO(case.image())).size
            if (body["width"], body["height"]) != size:
                return [f"overlay {body['width']}x{body['height']}, upload {size}"]
        if got["label"] != expected["label"]:
            return [f"label {got['label']}, expected {expected['label']}"]
        if abs(got["probability_fake"] - expected["probability_fake"]) > 1e-5:
            want = expected["probability_fake"]
            return [f"probability {got['probability_fake']}, expected {want}"]
        return _check_evidence(case, body)
    return _check_tensor(case, body, reference)


def _check_evidence(case: Case, body: dict) -> list[str]:
    if case.evidence is None:
        return []
    findings = body.get("evidence") or [{}]
    got = (findings[0].get("kind"), findings[0].get("strength"))
    return [] if got == case.evidence else [f"evidence {got}, expected {case.evidence}"]


def _check_tensor(case: Case, body: dict, reference: Reference) -> list[str]:
    if case.tensor is not None:
        direct = reference.outputs(case.tensor())
        problems = []
        for output in body["outputs"]:
            want = direct[output["name"]]
            if output["shape"] != list(want.shape):
                problems.append(f"{output['name']} shape {output['shape']} != {list(want.shape)}")
            elif not np.allclose(output["data"], want.reshape(-1), atol=1e-5):
                problems.append(f"{output['name']} differs from a direct onnxruntime run")
        return problems
    return []


def still_serving(port: int, reference: Reference) -> list[str]:
    """Problems with a normal prediction right after a hostile request (none: it works)."""
    answer = request(port, "POST", "/v1/predict", GOOD_PNG, {"Content-Type": "image/png"})
    if answer.status != 200:
        return [f"normal prediction afterwards answered {answer.status}"]
    expected = reference.prediction(GOOD_PNG)["probability_fake"]
    if abs(answer.json()["probability_fake"] - expected) > 1e-5:
        return ["normal prediction afterwards gave a wrong probability"]
    return []
