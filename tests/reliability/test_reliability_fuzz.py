"""Property-based fuzzing (hypothesis) of ``core.preprocessing`` and of a live server.

Properties: preprocessing of *any* bytes either returns a model input or raises
``core.preprocessing.ImageError`` (never another exception) within a time bound; the live
server answers every fuzzed request with a documented status (never 500) and, for errors,
the contract's JSON shape. Runs are derandomised (the same examples on every run, no
``.hypothesis`` folder in the shared tree); set ``FUZZ_EXAMPLES`` for a longer, random hunt:
``FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/reliability/test_reliability_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
from helpers import evidence_files as files
from helpers import jpeg_image, noise_rgb, png_image
from helpers.formats import avif, heic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability_cases import ERROR_STATUSES, INPUT_SIZE, MODEL
from reliability_http import Answer, multipart, request

from core.preprocessing import ImageError, PreprocessConfig, preprocess_bytes
from core.provenance import EvidenceReader, Finding

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # corrupt EXIF
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
SECONDS_PER_CALL = 2.0  # generous: the 2-core machine is shared with training jobs
CONFIG = PreprocessConfig(size=INPUT_SIZE)


def fuzz_settings(examples: int):
    return settings(
        max_examples=EXAMPLES or examples,
        derandomize=not EXAMPLES,
        database=None,
        deadline=None,  # timing is asserted explicitly, with a bound that fits a busy machine
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _save(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise_rgb(9, 24, 20)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _animated_gif() -> bytes:
    frames = [Image.fromarray(noise_rgb(i, 16, 16, mean=60.0 + 50 * i)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


SEEDS = {
    "jpeg": jpeg_image(1, 24, 20),
    "png": png_image(2, 24, 20),
    "gif": _save("GIF"),
    "animated-gif": _animated_gif(),
    "webp": _save("WEBP", lossless=True),
    "tiff": _save("TIFF"),
    "bmp": _save("BMP"),
    "heic": heic(noise_rgb(3, 24, 20)),
    "avif": avif(noise_rgb(4, 24, 20)),
}


EVIDENCE_SEEDS = {  # files whose metadata the evidence reader parses
    "c2pa-jpeg": files.c2pa_signed_jpeg(),
    "sd-png": files.png_with_parameters(),
    "xmp-jpeg": files.jpeg_with_xmp(),
    "camera-jpeg": files.camera_jpeg(software="Midjourney"),
    "xmp-webp": files.webp_with_xmp(files.xmp_packet()),
}


@st.composite
def mutated_images(draw, seeds: dict[str, bytes] = SEEDS) -> bytes:
    """A valid image with a few byte-level mutations, mostly in its header."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        header = draw(st.booleans())
        limit = min(len(data), 96) if header else len(data)
        position = draw(st.integers(0, limit - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[position] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            del data[position:]
    return bytes(data)


def preprocess_or_image_error(data: bytes) -> float:
    """Preprocess ``data``; any exception but ImageError fails the test. Returns seconds."""
    started = time.perf_counter()
    try:
        result = preprocess_bytes(data, CONFIG)
    except ImageError as exc:
        assert exc.status in (400, 413, 415), exc.status
    else:
        assert result.shape == (INPUT_SIZE, INPUT_SIZE, 3) and result.dtype == np.float32
        assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 255
    return time.perf_counter() - started


@fuzz_settings(150)
@given(st.binary(max_size=4096))
def test_preprocessing_of_random_bytes_raises_only_image_error(data):
    assert preprocess_or_image_error(data) < SECONDS_PER_CALL


@fuzz_settings(300)
@given(mutated_images())
def test_preprocessing_of_mutated_images_raises_only_image_error(data):
    assert preprocess_or_image_error(data) < SECONDS_PER_CALL


@pytest.fixture(scope="module")
def evidence_reader():
    reader = EvidenceReader()
    yield reader
    reader.close()


@fuzz_settings(200)
@given(data=st.one_of(mutated_images(EVIDENCE_SEEDS), st.binary(max_size=2048)))
def test_evidence_of_mutated_metadata_is_findings_never_an_exception(evidence_reader, data):
    """C2PA, XMP, EXIF and PNG text damaged anywhere: well-formed findings, fast."""
    started = time.perf_counter()
    findings = evidence_reader.read(data)
    assert time.perf_counter() - started < SECONDS_PER_CALL
    for found in findings:
        assert Finding(**{("field_name" if key == "field" else key): value
                          for key, value in found.items()})  # fmt: skip


@fuzz_settings(60)
@given(st.sampled_from(sorted(SEEDS)), st.integers(1, 65535), st.integers(1, 65535))
def test_preprocessing_of_any_claimed_size_is_bounded(kind, width, height):
    """A header claiming any size: refused (413 over the pixel limit) or decoded fast."""
    data = bytearray(SEEDS[kind])
    if kind == "png":
        data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    elif kind == "jpeg":
        sof = data.index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    elif kind in ("gif", "animated-gif"):
        data[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif kind == "bmp":
        data[18:26] = width.to_bytes(4, "little") + height.to_bytes(4, "little")
    assert preprocess_or_image_error(bytes(data)) < SECONDS_PER_CALL


# --- the live server -------------------------------------------------------------------------

CONTENT_TYPES = ["image/jpeg", "image/png", "application/octet-stream", "image/x-anything",
                 "text/plain", "application/json", "", "multipart/form-data"]  # fmt: skip
ALLOWED = ERROR_STATUSES | {200}
query_values = st.one_of(st.none(), st.just(MODEL), st.text(max_size=12))
version_values = st.one_of(st.none(), st.just("1"), st.text(max_size=12))


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _assert_documented(answer: Answer, allowed: frozenset[int] | set[int] = ALLOWED) -> None:
    assert answer.status in allowed, (answer.status, answer.body[:300])
    if answer.status != 200:
        assert answer.error() is not None, answer.body[:300]


@fuzz_settings(40)
@given(
    body=st.one_of(mutated_images(), st.binary(max_size=512)),
    route=st.sampled_from(["/v1/predict", "/v1/explain", "/v1/predict/batch"]),
    content_type=st.sampled_from(CONTENT_TYPES),
    as_form=st.booleans(),
    model=query_values,
    version=version_values,
)
def test_live_server_answers_fuzzed_uploads_with_documented_statuses(
    live_server, body, route, content_type, as_form, model, version
):
    params = [f"{k}={_quote(v)}" for k, v in (("model", model), ("version", version)) if v]
    target = route + ("?" + "&".join(params) if params else "")
    headers = {"Content-Type": content_type} if content_type else {}
    if as_form:
        field = "files" if route.endswith("batch") else "file"
        body, form_type = multipart([(field, "x.jpg", content_type or None, body)])
        headers = {"Content-Type": form_type}
    _assert_documented(request(live_server.port, "POST", target, body, headers))


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    keys = st.text(max_size=8)
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    _containers,
    max_leaves=20,
)
odd_numbers = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 1e39, -1e39, 1e-45, -0.0, True, None, "1",
     [1.0], 2**64]
) | st.floats()  # fmt: skip
odd_shapes = st.sampled_from(
    [[True, 32, 32, 3], [1.0, 32, 32, 3], [1, 32, 32], [1, 32, 32, 3, 1], [2**63, 32, 32, 3],
     [-1, 32, 32, 3], [1, "32", 32, 3], None]
) | json_values  # fmt: skip
OUTPUT_CHOICES = [[{"name": "cam"}], [{"name": "probability_fake"}, {"name": "cam"}], [], None]


@st.composite
def near_valid_infer(draw) -> dict:
    """A correct v2 request with a few odd values, and sometimes one field replaced."""
    rows = draw(st.integers(1, 2))
    size = rows * INPUT_SIZE * INPUT_SIZE * 3
    data: list = [100.0] * size
    for _ in range(draw(st.integers(0, 3))):
        data[draw(st.integers(0, size - 1))] = draw(odd_numbers)
    tensor = {"name": "image", "datatype": "FP32", "shape": [rows, INPUT_SIZE, INPUT_SIZE, 3],
              "data": data}  # fmt: skip
    broken = draw(st.sampled_from([None, "name", "datatype", "shape", "data", "drop"]))
    if broken == "shape":
        tensor["shape"] = draw(odd_shapes)
    elif broken == "drop":
        del tensor[draw(st.sampled_from(sorted(tensor)))]
    elif broken:
        tensor[broken] = draw(json_values)
    payload: dict = {"inputs": [tensor]}
    if draw(st.booleans()):
        payload["outputs"] = draw(st.sampled_from(OUTPUT_CHOICES) | json_values)
    return payload


@fuzz_settings(80)
@given(payload=st.one_of(json_values, near_valid_infer()))
def test_live_server_answers_fuzzed_v2_infer_with_documented_statuses(live_server, payload):
    body = json.dumps(payload).encode()  # NaN / Infinity included, as Python writes them
    answer = request(live_server.port, "POST", f"/v2/models/{MODEL}/infer", body,
                     {"Content-Type": "application/json"})  # fmt: skip
    _assert_documented(answer, {200, 400})


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_fuzz_seed_is_a_valid_image(seed):
    """The mutations start from real images (else the fuzz would only test garbage)."""
    assert preprocess_bytes(SEEDS[seed], CONFIG).shape == (INPUT_SIZE, INPUT_SIZE, 3)
