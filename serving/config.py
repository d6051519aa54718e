"""Server configuration: one frozen dataclass, filled from CLI flags, ``DFD_*`` variables, defaults.

Every field is one flag (``--max-batch-size``) and one environment variable
(``DFD_MAX_BATCH_SIZE``); a flag beats a variable, a variable beats the default. Uvicorn
worker processes rebuild the same config from the environment (see :meth:`ServerConfig.to_env`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from core import options
from core.options import (
    check_at_least,
    check_positive,
    option,
    parse_bool,
    parse_ints,
    parse_optional_path,
    parse_optional_str,
    same_option,
)
from core.preprocessing import DEFAULT_MAX_PIXELS
from core.video import VideoLimits
from serving.batcher import BatcherConfig
from serving.runtime import RuntimeConfig

C = TypeVar("C")
ENV_PREFIX = "DFD_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_WEBUI_DIR = Path(__file__).resolve().parent.parent / "webui"


def _parse_origins(text: str) -> tuple[str, ...]:
    """Comma-separated browser origins, kept as written (``https://a.example``) or ``*``."""
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"an origin is 'http(s)://host[:port]' or '*', got {origin!r}")
    return origins


@dataclass(frozen=True)
class ServerConfig:
    """Everything the inference server can be told."""

    models_dir: Path = option(
        Path("models"), "model repository folder <name>/<version>/", Path, flag="--models"
    )
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8000, "TCP port to listen on", int)
    workers: int = option(1, "uvicorn worker processes (each loads every model)", int)
    max_batch_size: int = same_option(BatcherConfig, "max_batch_size")
    max_queue_delay_ms: float = same_option(BatcherConfig, "max_queue_delay_ms")
    max_queue_size: int = same_option(BatcherConfig, "max_queue_size")
    bulk_batch_size: int = same_option(BatcherConfig, "bulk_batch_size")
    bulk_quiet_s: float = same_option(BatcherConfig, "bulk_quiet_s")
    quiet_bulk_batch_size: int = same_option(BatcherConfig, "quiet_bulk_batch_size")
    request_timeout_s: float = same_option(BatcherConfig, "request_timeout_s")
    max_body_bytes: int = option(10 * 1024 * 1024, "largest request body in bytes (413)", int)
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS, "largest image in pixels, checked from the header (413)", int
    )
    max_batch_files: int = option(64, "most files in one /v1/predict/batch request", int)
    max_faces: int = option(
        16, "faces judged per image by /v1/predict and the batch route, largest first (1: the "
        "largest only)", int,
    )  # fmt: skip
    decode_threads: int = option(
        0,
        "threads decoding and preprocessing uploads (the whole server's, shared by workers; "
        "0: one per core)",
        int,
    )
    intra_op_threads: int = option(
        0,
        "onnxruntime intra-op threads (the whole server's, shared by workers; 0: all cores)",
        int,
    )
    graph_optimization: str = same_option(RuntimeConfig, "graph_optimization")
    memory_arena: bool = same_option(RuntimeConfig, "memory_arena")
    spin_wait: bool = same_option(RuntimeConfig, "spin_wait")
    lone_spin: bool = same_option(RuntimeConfig, "lone_spin")
    providers: tuple[str, ...] = same_option(RuntimeConfig, "providers")
    device_id: int = same_option(RuntimeConfig, "device_id")
    trt_fp16: bool = same_option(RuntimeConfig, "trt_fp16")
    trt_cache_dir: Path | None = option(
        None, "TensorRT engine cache folder (default: <models>/.trt_cache)", parse_optional_path
    )
    precision: str = same_option(RuntimeConfig, "precision")
    latest_only: bool = option(False, "load only the latest version of each model", parse_bool)
    default_model: str | None = option(
        None,
        "model used when a request names none (default: texture, else lite0, else the first)",
        parse_optional_str,
    )
    warmup_batch_sizes: tuple[int, ...] = option(
        (), "batch sizes run once at start (default: 1 and max batch size)", parse_ints
    )
    lime_concurrency: int = option(2, "LIME explanations running at once per worker", int)
    background_nice: int = option(
        10,
        "how much lower the CPU priority (Linux nice, 0-19) of explanation threads is than "
        "that of predictions, so LIME's own work yields the cores to them (0: same priority)",
        int,
    )
    keep_warm_s: float = option(
        0.5,
        "after this many idle seconds, run each model once on a tiny image, and again every "
        "as long (0: off); keeps the first request after a pause fast on machines that "
        "reclaim an idle process's memory",
        float,
    )
    lime_max_samples: int = option(
        1000, "upper bound of the num_samples parameter (also capped by the queue size)", int
    )
    explain_max_features: int = option(50, "upper bound of the num_features parameter", int)
    retry_after_s: int = option(1, "Retry-After seconds sent with 503 answers", int)
    graceful_timeout_s: float = option(
        30.0, "on SIGTERM, how long in-flight requests may take to finish", float
    )
    webui_dir: Path | None = option(
        DEFAULT_WEBUI_DIR,
        "folder served at / and /static/ (empty: no web UI)",
        parse_optional_path,
        flag="--webui",
    )
    # Provenance evidence (core.provenance, docs/CONTRACTS.md "evidence")
    evidence: bool = option(
        True,
        "read each upload's provenance evidence (C2PA, XMP source type, generator metadata) "
        "into the answer's evidence section",
        parse_bool,
    )
    c2pa_trust_anchors: Path | None = option(
        None,
        "PEM file of C2PA signers' root certificates to trust (empty: none, so valid "
        "signatures are reported signed_untrusted)",
        parse_optional_path,
    )
    log_level: str = option("info", "log level", choices=LOG_LEVELS)
    # --- video: POST /v1/predict/video (serving/video.py) ---
    video_max_bytes: int = option(100 * 1024 * 1024, "largest video upload in bytes (413)", int)
    video_max_duration_s: float = option(600.0, "longest video in seconds (413)", float)
    video_max_frame_pixels: int = option(3840 * 2160, "largest video frame in pixels (413)", int)
    video_max_frames: int = option(256, "most frames sampled from one video (422)", int)
    video_concurrency: int = option(2, "videos scored at once per worker; more get 503", int)
    video_temp_dir: Path | None = option(
        None,
        "folder holding each uploaded video while it is scored (default: the system's temp)",
        parse_optional_path,
    )
    # --- access control and abuse resistance (serving/auth.py, ratelimit.py, protocol.py) ---
    api_keys: Path | None = option(
        None,
        "file of SHA-256 key hashes, one 'sha256:<hex> [name]' a line (python -m serving.auth "
        "new writes one); when set, every API route needs 'Authorization: Bearer <key>'",
        parse_optional_path,
        flag="--api-keys",
    )
    rate_limit: float = option(
        0.0,
        "tokens per second per API key (per client address without keys); 0: no rate limit",
        float,
        flag="--rate",
    )
    rate_burst: int = option(
        20, "token bucket size: most tokens spent at once", int, flag="--burst"
    )
    rate_lime_cost: int = option(
        10, "tokens a LIME explanation costs (every other request costs 1; capped at --burst)", int
    )
    cors_origins: tuple[str, ...] = option(
        (), "origins allowed to call the API from a browser, comma separated (empty: CORS off)",
        _parse_origins,
        metavar="ORIGIN,ORIGIN,...",
    )  # fmt: skip
    header_timeout_s: float = option(
        10.0,
        "a request head not complete this long after the connection opened or the previous "
        "answer closes the connection",
        float,
    )
    body_timeout_s: float = option(
        60.0, "a request body not complete this long after its head closes the connection", float
    )
    keep_alive_timeout_s: float = option(
        5.0, "idle keep-alive connections are closed after this long (uvicorn)", float
    )
    max_connections: int = option(
        1000,
        "open connections (or running requests) per worker beyond which new requests get "
        "uvicorn's 503 (0: no cap)",
        int,
    )
    max_header_bytes: int = option(
        16384, "largest request head in bytes; beyond it the server answers 400 and closes", int
    )

    def __post_init__(self) -> None:
        positive = (
            "port", "workers", "max_body_bytes", "max_pixels", "max_batch_files", "max_faces",
            "lime_concurrency", "lime_max_samples", "explain_max_features", "retry_after_s",
        )  # fmt: skip
        check_at_least(self, 1, *positive)
        check_at_least(self, 0, "decode_threads", "intra_op_threads", "graceful_timeout_s",
                       "keep_warm_s", "rate_limit", "max_connections")  # fmt: skip
        if not 0 <= self.background_nice <= 19:
            raise ValueError(f"background_nice must be 0 to 19, got {self.background_nice}")
        check_at_least(self, 1, "warmup_batch_sizes")
        self.pick(BatcherConfig)  # the batcher's and the sessions' settings check themselves
        self.runtime_config()
        self._check_video()
        self._check_access_settings()

    def _check_video(self) -> None:
        check_at_least(self, 1, "video_max_bytes", "video_concurrency")
        self.video_limits  # noqa: B018 (VideoLimits checks its own fields)

    @property
    def video_limits(self) -> VideoLimits:
        return VideoLimits(
            max_duration_s=self.video_max_duration_s,
            max_frame_pixels=self.video_max_frame_pixels,
            max_frames=self.video_max_frames,
        )

    def _check_access_settings(self) -> None:
        check_at_least(self, 1, "rate_burst", "rate_lime_cost", "max_header_bytes")
        check_positive(self, "header_timeout_s", "body_timeout_s", "keep_alive_timeout_s")

    @property
    def warmup_sizes(self) -> tuple[int, ...]:
        """Batch sizes used for warm-up: the configured ones, or 1 and the max batch size."""
        return self.warmup_batch_sizes or tuple(sorted({1, self.max_batch_size}))

    def _shared_out(self, threads: int) -> int:
        """A thread budget for the whole server (0: one per core), per worker process."""
        return max(1, (threads or os.cpu_count() or 1) // self.workers)

    @property
    def worker_decode_threads(self) -> int:
        """Decode threads of one worker process: the server's budget (0: one per core)
        shared out."""
        return self._shared_out(self.decode_threads)

    @property
    def worker_intra_op_threads(self) -> int:
        """Intra-op threads of one worker: the setting itself with one worker (0: onnxruntime's
        default), else the budget (0: every core) shared out."""
        if self.workers == 1:
            return self.intra_op_threads
        return self._shared_out(self.intra_op_threads)

    @property
    def engine_cache_dir(self) -> Path:
        return self.trt_cache_dir or self.models_dir / ".trt_cache"

    def runtime_config(self) -> RuntimeConfig:
        """How this worker's sessions are built."""
        return self.pick(
            RuntimeConfig,
            intra_op_threads=self.worker_intra_op_threads,
            trt_cache_dir=self.engine_cache_dir,
        )

    def pick(self, config: type[C], **values: Any) -> C:
        """``config`` (e.g. the batcher's) from this config's fields of the same names, plus
        ``values`` for those named differently here."""
        names = {item.name for item in fields(self)}
        shared = {item.name: getattr(self, item.name) for item in fields(config)
                  if item.name in names and item.name not in values}  # fmt: skip
        return config(**shared, **values)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """Every field as a ``DFD_*`` variable (how worker processes receive the config)."""
        return options.to_env(self, ENV_PREFIX)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Defaults overridden by the ``DFD_*`` variables present in ``environ``."""
        return options.options_from_env(cls, ENV_PREFIX, os.environ if environ is None else environ)


def env_name(field_name: str) -> str:
    return options.env_name(ENV_PREFIX, field_name)


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The ``python -m serving`` argument parser; defaults already reflect ``environ``."""
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description=(
            "Deepfake detection inference server: ONNX Runtime sessions behind a dynamic "
            "batcher, HTTP API per docs/CONTRACTS.md. Every flag can also be set with the "
            f"environment variable shown (prefix {ENV_PREFIX}); flags win."
        ),
    )
    environ = os.environ if environ is None else environ
    options.add_options(parser, ServerConfig, env_prefix=ENV_PREFIX, environ=environ)
    return parser


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """Config from CLI flags over ``DFD_*`` variables over defaults; bad values exit with 2."""
    parser = build_parser(environ)
    try:
        return options.options_from(ServerConfig, parser.parse_args(argv), ENV_PREFIX)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
