"""``python -m benchmarks soak``: minutes of mixed good and bad traffic against a real server.

A real ``python -m serving`` (subprocess, free loopback port, default settings) gets a
seeded mix of requests from ``--concurrency`` keep-alive clients for ``--duration`` seconds:
predictions (raw and multipart), batches with a broken file inside, CAM explanations, KServe
v2 tensors, listings, and hostile requests (garbage, truncated, empty, pixel bomb,
unsupported format, wrong content type, unknown or invalid model, malformed / NaN / deeply
nested JSON, wrong method). Every good answer is checked against the probability computed
for that image without the server (onnxruntime on ``core.preprocessing`` output); every bad
one against its documented status. The server's resident memory (psutil, else
``/proc/<pid>/status`` VmRSS, summed over its process tree) is sampled throughout.

It passes when nothing was lost (a good request without a 200), nothing mismatched, no
5xx and no unexpected status, and the server's RSS at the end is at most its RSS after the
warm-up plus ``--memory-bound-mb``. Results: ``benchmarks/results/soak-<machine>-<date>.json``;
the README's "Reliability" section is then regenerated (:func:`render_reliability_section`).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("benchmarks/results")
CASES_FILE = "reliability-cases.json"
README = Path("README.md")
SECTION_START = "<!-- reliability-table:start (generated from benchmarks/results; do not edit) -->"
SECTION_END = "<!-- reliability-table:end -->"
STANDIN_SIZE, STANDIN_CAM = 64, 8
PROBABILITY_TOLERANCE = 1e-4  # batched vs single runs of a real CNN differ by ~1e-6


@dataclass(frozen=True)
class SoakConfig:
    """One soak run (stored in its results file)."""

    models: Path = Path("models")
    model: str = "cnn"
    synthetic: bool = False  # serve the stand-in model even if the repository has one
    duration_s: float = 180.0
    warmup_s: float = 20.0
    concurrency: int = 8
    bad_fraction: float = 0.3
    memory_bound_mb: float = 50.0
    sample_every_s: float = 0.5
    request_timeout_s: float = 30.0
    seed: int = 0
    server_args: tuple[str, ...] = ()
    out_dir: Path = DEFAULT_OUT
    machine_name: str | None = None
    readme: Path | None = README  # regenerate its Reliability section (None: leave it)

    def to_json(self) -> dict:
        values = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


# --- the stand-in model ----------------------------------------------------------------------


def write_standin_model(root: Path, name: str = "cnn") -> Path:
    """A tiny contract-conforming model (no TensorFlow, no weights to download):
    ``probability_fake = sigmoid(0.05 * (mean brightness - 127.5))`` with an 8x8 ``cam``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from core.preprocessing import PreprocessConfig, contract

    size, cam, block = STANDIN_SIZE, STANDIN_CAM, STANDIN_SIZE // STANDIN_CAM
    constants = [
        numpy_helper.from_array(np.array(127.5, np.float32), "centre"),
        numpy_helper.from_array(np.array(0.05, np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, cam, cam], np.int64), "cam_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axis_one"),
    ]
    node = helper.make_node
    nodes = [
        node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        node("ReduceMean", ["nchw"], ["grey"], axes=[1], keepdims=1),
        node("AveragePool", ["grey"], ["pooled"], kernel_shape=[block] * 2, strides=[block] * 2),
        node("Sub", ["pooled", "centre"], ["centred"]),
        node("Mul", ["centred", "scale"], ["cam_4d"]),
        node("Reshape", ["cam_4d", "cam_shape"], ["cam"]),
        node("ReduceMean", ["cam"], ["logit"], axes=[1, 2], keepdims=0),
        node("Unsqueeze", ["logit", "axis_one"], ["logit_2d"]),
        node("Sigmoid", ["logit_2d"], ["probability_fake"]),
    ]
    graph = helper.make_graph(
        nodes,
        "soak_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])],
        [
            helper.make_tensor_value_info("probability_fake", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", cam, cam]),
        ],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = root / name / "1"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    metadata = {
        "name": name,
        "version": 1,
        "format": "onnx",
        "files": {"onnx": "model.onnx"},
        "inputs": [{"name": "image", "shape": [-1, size, size, 3], "dtype": "float32"}],
        "outputs": [
            {"name": "probability_fake", "shape": [-1, 1], "dtype": "float32"},
            {"name": "cam", "shape": [-1, cam, cam], "dtype": "float32"},
        ],
        "preprocessing": contract(PreprocessConfig(size=size)),
        "class_names": ["REAL", "FAKE"],
        "positive_class": "FAKE",
        "threshold": 0.5,
        "temperature": 1.0,
        "metrics": {},
        "training_data": "none: soak stand-in (sigmoid of the mean brightness)",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return root


# --- traffic -----------------------------------------------------------------------------------


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


class Reference:
    """Expected answers computed without the server: onnxruntime on core.preprocessing."""

    def __init__(self, entry) -> None:
        import onnxruntime as ort

        from core.preprocessing import PreprocessConfig

        self.entry = entry
        self.config = PreprocessConfig(size=entry.input_size)
        self.session = ort.InferenceSession(
            str(entry.onnx_path), providers=["CPUExecutionProvider"]
        )

    def raw_probability(self, rows: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(["probability_fake"], {self.entry.input_name: rows})
        return np.asarray(output, np.float64).reshape(-1)

    def probability(self, data: bytes) -> float:
        from core.decision import calibrate
        from core.preprocessing import preprocess_bytes

        raw = self.raw_probability(preprocess_bytes(data, self.config)[None])[0]
        return float(calibrate(np.float64(raw), self.entry.temperature))


def _prediction_check(expected: float, threshold: float) -> Callable[[dict], str | None]:
    def check(body: dict) -> str | None:
        got = body.get("probability_fake")
        if not isinstance(got, float) or abs(got - expected) > PROBABILITY_TOLERANCE:
            return f"probability {got}, expected {expected:.6f}"
        label = "FAKE" if expected >= threshold else "REAL"
        if abs(expected - threshold) > PROBABILITY_TOLERANCE and body.get("label") != label:
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


def _good_images(seed: int) -> list[tuple[bytes, str]]:
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
    images = _good_images(seed)
    threshold = entry.threshold
    kinds: list[Kind] = []
    for index, (data, content_type) in enumerate(images):
        check = _prediction_check(reference.probability(data), threshold)
        kinds.append(
            Kind(
                f"predict raw #{index}",
                True,
                35 / len(images),
                "POST",
                "/v1/predict",
                data,
                content_type,
                check=check,
            )
        )
        body, form_type = _multipart([("file", f"face{index}.img", content_type, data)])
        kinds.append(
            Kind(
                f"predict multipart #{index}",
                True,
                15 / len(images),
                "POST",
                "/v1/predict",
                body,
                form_type,
                check=check,
            )
        )
        if has_cam:
            explain = _prediction_check(reference.probability(data), threshold)
            kinds.append(
                Kind(
                    f"explain cam #{index}",
                    True,
                    4 / len(images),
                    "POST",
                    "/v1/explain?method=cam",
                    data,
                    content_type,
                    check=lambda body, c=explain: c(body.get("prediction", {})),
                )
            )
    bad = _bad_bodies()
    batch_files = [images[0], (bad["truncated"], "image/jpeg"), images[-1], images[5]]
    batch_body, batch_type = _multipart(
        [("files", f"b{i}", kind, data) for i, (data, kind) in enumerate(batch_files)]
    )
    batch_checks = [
        None
        if data == bad["truncated"]
        else _prediction_check(reference.probability(data), threshold)
        for data, _ in batch_files
    ]

    def check_batch(body: dict) -> str | None:
        results = body.get("results", [])
        if len(results) != len(batch_checks):
            return f"{len(results)} results for {len(batch_checks)} files"
        for result, check in zip(results, batch_checks, strict=True):
            problem = (
                check(result)
                if check
                else (
                    None if result.get("error", {}).get("code") == "bad_image" else "no bad_image"
                )
            )
            if problem:
                return problem
        return None

    kinds.append(
        Kind(
            "batch of 4 with a broken file",
            True,
            8,
            "POST",
            "/v1/predict/batch",
            batch_body,
            batch_type,
            check=check_batch,
        )
    )
    kinds += _v2_kinds(entry, reference)
    kinds += [
        Kind("list models", True, 2.5, "GET", "/v1/models"),
        Kind("ready", True, 2.5, "GET", "/v2/health/ready"),
    ]
    return kinds + _bad_kinds(entry, bad)


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


# --- memory ------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def rss_mb(pid: int) -> tuple[float | None, str]:
    """Resident memory of ``pid`` and its descendants in MB, and how it was measured."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes) / 2**20, "psutil"
        except psutil.Error:
            return None, "psutil"
    total, seen = 0, False
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    seen = True
        except OSError:
            continue
    return (total / 2**20 if seen else None), "/proc/<pid>/status VmRSS"


class MemorySampler(threading.Thread):
    """Samples the server's RSS every ``every_s`` seconds until stopped."""

    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self.source = ""
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def sample(self) -> float | None:
        value, self.source = rss_mb(self.pid)
        if value is not None:
            self.samples.append((round(time.monotonic() - self._t0, 2), round(value, 1)))
        return value

    def run(self) -> None:
        while not self._stop_event.wait(self.every_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Everything counted during the run."""

    sent: Counter = field(default_factory=Counter)  # by kind
    statuses: Counter = field(default_factory=Counter)  # by status ("none": no answer)
    lost: int = 0
    mismatched: int = 0
    unexpected: int = 0
    server_errors: int = 0
    good: int = 0
    bad: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


async def _send(connection, kind: Kind, timeout_s: float) -> tuple[int | None, bytes]:
    try:
        async with asyncio.timeout(timeout_s):
            return await connection.request(kind.method, kind.path, kind.body, kind.content_type)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        await connection.close()  # never reuse a connection whose answer may still arrive
        return None, b""


def _judge(kind: Kind, status: int | None, payload: bytes, seconds: float, tally: Tally) -> None:
    tally.sent[kind.name.split(" #")[0]] += 1  # one count per kind, not per image
    tally.statuses[str(status) if status is not None else "none"] += 1
    if status is not None and status >= 500:
        tally.server_errors += 1
    if not kind.good:
        tally.bad += 1
        if status != kind.expected:
            tally.unexpected += 1
            tally.note(f"{kind.name}: status {status}, expected {kind.expected}")
        return
    tally.good += 1
    if status != 200:
        tally.lost += 1
        tally.note(f"{kind.name}: lost (status {status})")
        return
    tally.latencies_ms.append(seconds * 1000.0)
    if kind.check is None:
        return
    try:
        problem = kind.check(json.loads(payload))
    except (ValueError, AttributeError, TypeError) as exc:
        problem = f"unreadable answer: {exc}"
    if problem:
        tally.mismatched += 1
        tally.note(f"{kind.name}: {problem}")


async def _client(
    base_url: str, kinds: list[Kind], config: SoakConfig, worker: int, deadline: float, tally: Tally
) -> None:
    from benchmarks.rawhttp import RawHttpConnection

    rng = random.Random(config.seed * 1000 + worker)
    good = [kind for kind in kinds if kind.good]
    bad = [kind for kind in kinds if not kind.good]
    connection = RawHttpConnection(base_url)
    try:
        while time.monotonic() < deadline:
            pool = bad if rng.random() < config.bad_fraction else good
            kind = rng.choices(pool, weights=[k.weight for k in pool])[0]
            started = time.perf_counter()
            status, payload = await _send(connection, kind, config.request_timeout_s)
            _judge(kind, status, payload, time.perf_counter() - started, tally)
    finally:
        await connection.close()


async def _traffic(
    base_url: str, kinds: list[Kind], config: SoakConfig, seconds: float, tally: Tally
) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        *(
            _client(base_url, kinds, config, worker, deadline, tally)
            for worker in range(config.concurrency)
        )
    )


async def _prime(base_url: str, kinds: list[Kind], config: SoakConfig, tally: Tally) -> None:
    """Every kind once, so lazily loaded code paths are warm before the memory baseline."""
    from benchmarks.rawhttp import RawHttpConnection

    connection = RawHttpConnection(base_url)
    try:
        for kind in kinds:
            started = time.perf_counter()
            status, payload = await _send(connection, kind, config.request_timeout_s)
            _judge(kind, status, payload, time.perf_counter() - started, tally)
    finally:
        await connection.close()


def _resolve_model(config: SoakConfig, scratch: Path):
    from core.modelrepo import InvalidMetadata, ModelNotFound, ModelRepository

    if not config.synthetic:
        try:
            entry = ModelRepository(config.models).entry(config.model)
            return config.models, entry, "repository"
        except (ModelNotFound, InvalidMetadata, FileNotFoundError):
            pass
    root = write_standin_model(scratch / "models", config.model)
    entry = ModelRepository(root).entry(config.model)
    return root, entry, "synthetic stand-in (no servable model in the repository)"


def _ready(base_url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url + "/v2/health/ready", timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def run_soak(config: SoakConfig, progress: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Run one soak, write its results JSON (and the README section); return both."""
    import tempfile

    from benchmarks.servers import RunningServer, our_server_spec
    from benchmarks.sysinfo import describe_machine, machine_slug

    started_at = datetime.now(UTC)
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        repo, entry, source = _resolve_model(config, Path(scratch))
        reference = Reference(entry)
        kinds = build_traffic(entry, reference, "cam" in entry.output_names(), config.seed)
        args = ("--log-level", "warning", "--webui", "", *config.server_args)
        spec = our_server_spec("soak", repo, args)
        tally = Tally()
        with RunningServer(spec) as server:
            sampler = MemorySampler(server.process.pid, config.sample_every_s)
            start_mb = sampler.sample()
            sampler.start()
            asyncio.run(_prime(server.base_url, kinds, config, tally))
            warmup_s = min(config.warmup_s, config.duration_s / 3)
            progress(f"soak: warm-up {warmup_s:.0f} s, then {config.duration_s:.0f} s of traffic")
            asyncio.run(_traffic(server.base_url, kinds, config, warmup_s, tally))
            warm_mb = sampler.sample()
            asyncio.run(_traffic(server.base_url, kinds, config, config.duration_s, tally))
            time.sleep(1.0)  # let in-flight work and its buffers go
            end_mb = sampler.sample()
            sampler.stop()
            ready_after = _ready(server.base_url)
            exit_code = server.stop()
    limit_mb = (warm_mb or 0.0) + config.memory_bound_mb
    memory = {
        "source": sampler.source,
        "start_mb": start_mb and round(start_mb, 1),
        "after_warmup_mb": warm_mb and round(warm_mb, 1),
        "max_mb": max(value for _, value in sampler.samples),
        "end_mb": end_mb and round(end_mb, 1),
        "bound": f"end <= after_warmup + {config.memory_bound_mb:g} MB",
        "limit_mb": round(limit_mb, 1),
        "within_bound": end_mb is not None and end_mb <= limit_mb,
        "samples": _thin(sampler.samples, 240),
    }
    total = tally.good + tally.bad
    results = {
        "kind": "soak",
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine_name": config.machine_name or machine_slug(machine),
        "machine": machine,
        "config": config.to_json(),
        "model": {
            "name": entry.name,
            "version": entry.version,
            "input_size": entry.input_size,
            "source": source,
        },
        "duration_s": config.duration_s,
        "warmup_s": warmup_s,
        "requests": {
            "total": total,
            "good": tally.good,
            "bad": tally.bad,
            "per_s": round(total / (config.duration_s + warmup_s), 1),
            "by_kind": dict(sorted(tally.sent.items())),
        },
        "errors_by_status": dict(sorted(tally.statuses.items())),
        "lost": tally.lost,
        "mismatched": tally.mismatched,
        "unexpected_status": tally.unexpected,
        "server_errors_5xx": tally.server_errors,
        "problems": tally.problems,
        "good_latency_ms": {
            "p50": _percentile(tally.latencies_ms, 50),
            "p99": _percentile(tally.latencies_ms, 99),
            "max": _percentile(tally.latencies_ms, 100),
        },
        "memory": memory,
        "ready_after": ready_after,
        "server_exit_code": exit_code,
        "load_average_at_end": list(os.getloadavg()),
    }
    results["passed"] = (
        tally.lost == tally.mismatched == tally.unexpected == tally.server_errors == 0
        and memory["within_bound"]
        and ready_after
        and exit_code == 0
        and tally.good > 0
    )
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / f"soak-{results['machine_name']}-{results['started_at'][:10]}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    if config.readme is not None:
        update_readme(config.readme, config.out_dir)
    return results, path


def _thin(samples: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    step = max(1, -(-len(samples) // most))
    return samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else [])


# --- the README section ------------------------------------------------------------------------


def latest_soak(out_dir: Path) -> dict | None:
    """The newest soak results in ``out_dir`` (by start time), or None."""
    found = []
    for path in out_dir.glob("soak-*.json"):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append((results.get("started_at", ""), path.name, results))
    return max(found)[2] if found else None


def soak_line(soak: dict | None) -> str:
    if soak is None:
        return "Soak: not run yet (`python -m benchmarks soak --duration 180`)."
    requests, memory = soak["requests"], soak["memory"]
    by_status = ", ".join(
        f"{status}: {count}" for status, count in soak["errors_by_status"].items()
    )
    verdict = "passed" if soak["passed"] else "FAILED"
    model = soak["model"]["source"].split(" (")[0]
    return (
        f"Soak ({verdict}; `python -m benchmarks soak --duration {soak['duration_s']:g}` on "
        f"{soak['machine_name']}, {soak['started_at'][:10]}, model {model}): "
        f"{requests['total']} requests in {soak['duration_s'] + soak['warmup_s']:g} s "
        f"({requests['good']} good, {requests['bad']} hostile; by status {by_status}); "
        f"**{soak['lost']} lost, {soak['mismatched']} mismatched, {soak['server_errors_5xx']} 5xx, "
        f"{soak['unexpected_status']} unexpected statuses**; server RSS start "
        f"{memory['start_mb']} MB, after warm-up {memory['after_warmup_mb']} MB, max "
        f"{memory['max_mb']} MB, end {memory['end_mb']} MB (bound: {memory['bound']} = "
        f"{memory['limit_mb']} MB, {'met' if memory['within_bound'] else 'NOT met'})."
    )


def _group_rows(cases: list[dict]) -> list[dict]:
    """One row per case; a case tried on several routes ('x on GET /a') becomes one row."""
    rows: dict[tuple[str, str], dict] = {}
    for case in cases:
        label = case["case"].split(" on ")[0]
        row = rows.setdefault(
            (case["group"], label),
            {
                "group": case["group"],
                "case": label,
                "requests": [],
                "expected": set(),
                "observed": set(),
                "outcomes": [],
            },
        )
        row["requests"].append(case["request"])
        row["expected"].add(str(case["expected_status"]))
        row["observed"].add(str(case["observed_status"]))
        row["outcomes"].append(case)
    return list(rows.values())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _result(row: dict) -> str:
    failed = [case for case in row["outcomes"] if not case["passed"]]
    if not failed:
        measured = [re.search(r"\(answered after [^)]*\)", c["detail"]) for c in row["outcomes"]]
        found = [match.group(0) for match in measured if match]
        return "as documented" + (f" {found[0]}" if found else "")
    bugs = {case["known_bug"] for case in failed if case["known_bug"]}
    if len(bugs) == 1 and all(case["known_bug"] for case in failed):
        return f"**known bug**: {bugs.pop()}"
    return "**FAILED**: " + "; ".join(sorted({p for case in failed for p in case["problems"]}))


def render_reliability_section(cases: dict, soak: dict | None) -> str:
    """The generated part of the README's Reliability section (between its markers)."""
    rows = _group_rows(cases["cases"])
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    lines = [
        SECTION_START,
        "",
        f"Recorded {cases['recorded_at'][:10]} on {cases['machine_name']} against a real "
        f"`python -m serving` (`{cases['recorded_by']}`): {len(cases['cases'])} requests, "
        f"{sum(c['passed'] for c in cases['cases'])} answered as documented.",
        "",
        "| group | cases | requests | as documented | known bugs | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group, group_rows in groups.items():
        outcomes = [case for row in group_rows for case in row["outcomes"]]
        known = sum(1 for c in outcomes if not c["passed"] and c["known_bug"])
        failed = sum(1 for c in outcomes if not c["passed"] and not c["known_bug"])
        lines.append(
            f"| {group} | {len(group_rows)} | {len(outcomes)} | "
            f"{sum(c['passed'] for c in outcomes)} | {known} | {failed} |"
        )
    for group, group_rows in groups.items():
        lines += [
            "",
            f"<details><summary>{group}</summary>",
            "",
            "| case | request | expected | observed | result |",
            "|---|---|---|---|---|",
        ]
        for row in group_rows:
            requests = row["requests"]
            shown = (
                requests[0] if len(requests) == 1 else f"{len(requests)} routes, e.g. {requests[0]}"
            )
            lines.append(
                f"| {_cell(row['case'])} | `{_cell(shown)}` | {' / '.join(sorted(row['expected']))}"
                f" | {' / '.join(sorted(row['observed']))} | {_cell(_result(row))} |"
            )
        lines += ["", "</details>"]
    lines += ["", soak_line(soak), "", SECTION_END]
    return "\n".join(lines)


def update_readme(readme: Path, out_dir: Path) -> bool:
    """Replace the README's generated Reliability block; False if the markers are missing."""
    cases_path = out_dir / CASES_FILE
    if not readme.is_file() or not cases_path.is_file():
        return False
    text = readme.read_text()
    pattern = re.compile(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END), re.S)
    if not pattern.search(text):
        return False
    section = render_reliability_section(json.loads(cases_path.read_text()), latest_soak(out_dir))
    readme.write_text(pattern.sub(lambda _: section, text, count=1))
    return True


# --- command line ------------------------------------------------------------------------------


def add_soak_parser(commands) -> None:
    """The ``soak`` subcommand of ``python -m benchmarks``."""
    soak = commands.add_parser(
        "soak",
        help="minutes of mixed good/bad traffic against a real server: lost/mismatched "
        "answers, errors by status, server memory; writes benchmarks/results/soak-*.json",
        description=__doc__.split("\n\n")[1],
    )
    soak.add_argument(
        "--duration",
        type=float,
        default=180.0,
        help="seconds of traffic after the warm-up (default 180)",
    )
    soak.add_argument(
        "--warmup",
        type=float,
        default=20.0,
        help="seconds of traffic before the memory baseline (default 20, at most "
        "a third of --duration)",
    )
    soak.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    soak.add_argument(
        "--bad-fraction", type=float, default=0.3, help="share of hostile requests (default 0.3)"
    )
    soak.add_argument(
        "--memory-bound-mb",
        type=float,
        default=50.0,
        help="allowed RSS growth from after the warm-up to the end (default 50)",
    )
    soak.add_argument(
        "--models",
        type=Path,
        default=Path("models"),
        help="model repository (default models; without a servable --model "
        "there, a synthetic stand-in model is served)",
    )
    soak.add_argument("--model", default="cnn", help="model name (default cnn)")
    soak.add_argument("--synthetic", action="store_true", help="always use the stand-in model")
    soak.add_argument("--seed", type=int, default=0, help="traffic mix seed (default 0)")
    soak.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for the server (repeat; --server-arg=--workers=2)",
    )
    soak.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    soak.add_argument("--machine", help="machine label in the file name (default: from the CPU)")
    soak.add_argument(
        "--no-readme",
        action="store_true",
        help="do not regenerate the README's Reliability section",
    )
    soak.add_argument(
        "--readme-only",
        action="store_true",
        help="only regenerate the README section from the existing results",
    )


def cmd_soak(args) -> int:
    """Run the soak (or only re-render the README); exit 1 if the soak failed."""
    if args.readme_only:
        if not update_readme(README, args.out):
            print(f"error: need {args.out / CASES_FILE} and the markers in {README}")
            return 2
        print(f"regenerated the Reliability section of {README}")
        return 0
    if args.duration <= 0 or args.concurrency < 1 or not 0 <= args.bad_fraction <= 1:
        print("error: --duration > 0, --concurrency >= 1 and 0 <= --bad-fraction <= 1")
        return 2
    config = SoakConfig(
        models=args.models,
        model=args.model,
        synthetic=args.synthetic,
        duration_s=args.duration,
        warmup_s=args.warmup,
        concurrency=args.concurrency,
        bad_fraction=args.bad_fraction,
        memory_bound_mb=args.memory_bound_mb,
        seed=args.seed,
        server_args=tuple(args.server_arg),
        out_dir=args.out,
        machine_name=args.machine,
        readme=None if args.no_readme else README,
    )
    results, path = run_soak(config)
    print(soak_line(results))
    print(f"results: {path}")
    for problem in results["problems"]:
        print(f"  problem: {problem}")
    return 0 if results["passed"] else 1
