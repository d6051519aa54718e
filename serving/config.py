"""Server configuration: one frozen dataclass, filled from CLI flags, ``DFD_*`` variables, defaults.

Every field is one flag (``--max-batch-size``) and one environment variable
(``DFD_MAX_BATCH_SIZE``); a flag beats a variable, a variable beats the default. Uvicorn
worker processes rebuild the same config from the environment (see :meth:`ServerConfig.to_env`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.preprocessing import DEFAULT_MAX_PIXELS

ENV_PREFIX = "DFD_"
PROVIDER_CHOICES = ("tensorrt", "cuda", "cpu")
GRAPH_OPTIMIZATION_CHOICES = ("disable", "basic", "extended", "all")
PRECISION_CHOICES = ("fp32", "fp16", "int8")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_WEBUI_DIR = Path(__file__).resolve().parent.parent / "webui"


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _parse_strs(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def _parse_optional_path(text: str) -> Path | None:
    return Path(text) if text.strip() else None


def _parse_optional_file(text: str) -> Path | None:
    return Path(text) if text.strip() else None


def _parse_optional_str(text: str) -> str | None:
    return text.strip() or None


def _parse_origins(text: str) -> tuple[str, ...]:
    """Comma-separated browser origins, kept as written (``https://a.example``) or ``*``."""
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"an origin is 'http(s)://host[:port]' or '*', got {origin!r}")
    return origins


def _option(
    default: Any,
    help: str,
    parse: Callable[[str], Any] = str,
    flag: str | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """A config field with its CLI/env description."""
    return field(
        default=default,
        metadata={"help": help, "parse": parse, "flag": flag, "choices": choices},
    )


def _render(value: Any) -> str:
    """A field value as the text its flag or environment variable would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the inference server can be told."""

    models_dir: Path = _option(
        Path("models"), "model repository folder <name>/<version>/", Path, flag="--models"
    )
    host: str = _option("127.0.0.1", "address to listen on")
    port: int = _option(8000, "TCP port to listen on", int)
    workers: int = _option(1, "uvicorn worker processes (each loads every model)", int)
    max_batch_size: int = _option(32, "most image rows per model run", int)
    max_queue_delay_ms: float = _option(
        5.0,
        "longest wait for more rows after the first one of a batch "
        "(only while other requests are still being decoded)",
        float,
    )
    max_queue_size: int = _option(
        2048, "most rows waiting per model; beyond that requests get 503", int
    )
    bulk_batch_size: int = _option(
        8,
        "most rows of an explanation (bulk work) per model run while predictions are on "
        "their way, so they never wait behind a long bulk run",
        int,
    )
    request_timeout_s: float = _option(
        30.0, "longest time a request may wait for its model run before 504", float
    )
    max_body_bytes: int = _option(10 * 1024 * 1024, "largest request body in bytes (413)", int)
    max_pixels: int = _option(
        DEFAULT_MAX_PIXELS, "largest image in pixels, checked from the header (413)", int
    )
    max_batch_files: int = _option(64, "most files in one /v1/predict/batch request", int)
    decode_threads: int = _option(
        4, "threads decoding and preprocessing uploads (the whole server's, shared by workers)", int
    )
    intra_op_threads: int = _option(
        0,
        "onnxruntime intra-op threads (the whole server's, shared by workers; 0: all cores)",
        int,
    )
    graph_optimization: str = _option(
        "all", "onnxruntime graph optimisation level", choices=GRAPH_OPTIMIZATION_CHOICES
    )
    memory_arena: bool = _option(
        True, "onnxruntime's CPU memory arena (buffers reused across runs)", _parse_bool
    )
    providers: tuple[str, ...] = _option(
        PROVIDER_CHOICES,
        "execution provider preference, comma separated; unavailable ones are skipped",
        _parse_strs,
    )
    device_id: int = _option(0, "GPU index for the CUDA and TensorRT providers", int)
    trt_fp16: bool = _option(True, "let TensorRT use fp16 kernels", _parse_bool)
    trt_cache_dir: Path | None = _option(
        None, "TensorRT engine cache folder (default: <models>/.trt_cache)", _parse_optional_path
    )
    precision: str = _option(
        "fp32",
        "which ONNX file of each entry to serve (falls back to fp32 if absent)",
        choices=PRECISION_CHOICES,
    )
    latest_only: bool = _option(False, "load only the latest version of each model", _parse_bool)
    default_model: str | None = _option(
        None,
        "model used when a request names none (default: cnn, else the first)",
        _parse_optional_str,
    )
    warmup_batch_sizes: tuple[int, ...] = _option(
        (), "batch sizes run once at start (default: 1 and max batch size)", _parse_ints
    )
    lime_concurrency: int = _option(2, "LIME explanations running at once per worker", int)
    keep_warm_s: float = _option(
        0.5,
        "after this many idle seconds, run each model once on a tiny image, and again every "
        "as long (0: off); keeps the first request after a pause fast on machines that "
        "reclaim an idle process's memory",
        float,
    )
    lime_max_samples: int = _option(
        1000, "upper bound of the num_samples parameter (also capped by the queue size)", int
    )
    explain_max_features: int = _option(50, "upper bound of the num_features parameter", int)
    retry_after_s: int = _option(1, "Retry-After seconds sent with 503 answers", int)
    graceful_timeout_s: float = _option(
        30.0, "on SIGTERM, how long in-flight requests may take to finish", float
    )
    webui_dir: Path | None = _option(
        DEFAULT_WEBUI_DIR,
        "folder served at / and /static/ (empty: no web UI)",
        _parse_optional_path,
        flag="--webui",
    )
    log_level: str = _option("info", "log level", choices=LOG_LEVELS)
    # --- access control and abuse resistance (serving/auth.py, ratelimit.py, protocol.py) ---
    api_keys: Path | None = _option(
        None,
        "file of SHA-256 key hashes, one 'sha256:<hex> [name]' a line (python -m serving.auth "
        "new writes one); when set, every API route needs 'Authorization: Bearer <key>'",
        _parse_optional_file,
        flag="--api-keys",
    )
    rate_limit: float = _option(
        0.0,
        "tokens per second per API key (per client address without keys); 0: no rate limit",
        float,
        flag="--rate",
    )
    rate_burst: int = _option(20, "token bucket size: most tokens spent at once", int, "--burst")
    rate_lime_cost: int = _option(
        10, "tokens a LIME explanation costs (every other request costs 1; capped at --burst)", int
    )
    cors_origins: tuple[str, ...] = _option(
        (), "origins allowed to call the API from a browser, comma separated (empty: CORS off)",
        _parse_origins,
    )  # fmt: skip
    header_timeout_s: float = _option(
        10.0,
        "a request head not complete this long after the connection opened or the previous "
        "answer closes the connection",
        float,
    )
    body_timeout_s: float = _option(
        60.0, "a request body not complete this long after its head closes the connection", float
    )
    keep_alive_timeout_s: float = _option(
        5.0, "idle keep-alive connections are closed after this long (uvicorn)", float
    )
    max_connections: int = _option(
        1000,
        "open connections (or running requests) per worker beyond which new requests get "
        "uvicorn's 503 (0: no cap)",
        int,
    )
    max_header_bytes: int = _option(
        16384, "largest request head in bytes; beyond it uvicorn answers 400 (h11)", int
    )

    def __post_init__(self) -> None:
        positive = (
            "port", "workers", "max_batch_size", "max_queue_size", "max_body_bytes",
            "max_pixels", "max_batch_files", "decode_threads", "lime_concurrency",
            "bulk_batch_size", "lime_max_samples", "explain_max_features", "retry_after_s",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_queue_delay_ms", "intra_op_threads", "device_id", "graceful_timeout_s",
                     "keep_warm_s", "rate_limit", "max_connections"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be positive, got {self.request_timeout_s}")
        if self.max_queue_size < self.max_batch_size:
            raise ValueError("max_queue_size must be at least max_batch_size")
        unknown = [p for p in self.providers if p not in PROVIDER_CHOICES]
        if unknown or not self.providers:
            raise ValueError(f"providers must be some of {', '.join(PROVIDER_CHOICES)}")
        if any(size < 1 for size in self.warmup_batch_sizes):
            raise ValueError("warmup batch sizes must be positive")
        self._check_access_settings()

    def _check_access_settings(self) -> None:
        for name in ("rate_burst", "rate_lime_cost", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def warmup_sizes(self) -> tuple[int, ...]:
        """Batch sizes used for warm-up: the configured ones, or 1 and the max batch size."""
        return self.warmup_batch_sizes or tuple(sorted({1, self.max_batch_size}))

    @property
    def worker_decode_threads(self) -> int:
        """Decode threads of one worker process: the server's budget shared out."""
        return max(1, self.decode_threads // self.workers)

    @property
    def worker_intra_op_threads(self) -> int:
        """Intra-op threads of one worker: the setting itself with one worker (0: onnxruntime's
        default), else the budget (0: every core) shared out."""
        if self.workers == 1:
            return self.intra_op_threads
        budget = self.intra_op_threads or os.cpu_count() or 1
        return max(1, budget // self.workers)

    @property
    def engine_cache_dir(self) -> Path:
        return self.trt_cache_dir or self.models_dir / ".trt_cache"

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """Every field as a ``DFD_*`` variable (how worker processes receive the config)."""
        return {env_name(item.name): _render(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Defaults overridden by the ``DFD_*`` variables present in ``environ``."""
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            text = environ.get(env_name(item.name))
            if text is not None:
                values[item.name] = _parse_field(item, text)
        return cls(**values)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _flag(item: dataclasses.Field) -> str:
    return item.metadata["flag"] or "--" + item.name.replace("_", "-")


def _parse_field(item: dataclasses.Field, text: str) -> Any:
    choices = item.metadata["choices"]
    try:
        value = item.metadata["parse"](text)
    except ValueError as exc:
        raise ValueError(f"{_flag(item)} / {env_name(item.name)}: {exc}") from None
    if choices and value not in choices:
        raise ValueError(
            f"{_flag(item)} / {env_name(item.name)}: {text!r} is not one of {', '.join(choices)}"
        )
    return value


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The ``python -m serving`` argument parser; defaults already reflect ``environ``."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description=(
            "Deepfake detection inference server: ONNX Runtime sessions behind a dynamic "
            "batcher, HTTP API per docs/CONTRACTS.md. Every flag can also be set with the "
            f"environment variable shown (prefix {ENV_PREFIX}); flags win."
        ),
    )
    for item in fields(ServerConfig):
        name = env_name(item.name)
        default = environ.get(name, _render(item.default))
        shown = f"; default {default}" if default else ""
        parser.add_argument(
            _flag(item),
            dest=item.name,
            default=default,
            metavar=_metavar(item),
            help=f"{item.metadata['help']} [env {name}{shown}]",
        )
    return parser


def _metavar(item: dataclasses.Field) -> str:
    if item.metadata["choices"]:
        return "{" + ",".join(item.metadata["choices"]) + "}"
    names = {
        _parse_bool: "{true,false}",
        int: "N",
        float: "NUMBER",
        Path: "DIR",
        _parse_optional_path: "DIR",
        _parse_ints: "N,N,...",
        _parse_strs: "NAME,NAME,...",
        _parse_optional_file: "FILE",
        _parse_origins: "ORIGIN,ORIGIN,...",
    }
    return names.get(item.metadata["parse"], "TEXT")


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Config from CLI flags over ``DFD_*`` variables over defaults; bad values exit with 2."""
    parser = build_parser(environ)
    namespace = parser.parse_args(argv)
    try:
        values = {
            item.name: _parse_field(item, getattr(namespace, item.name))
            for item in fields(ServerConfig)
        }
        return ServerConfig(**values)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
