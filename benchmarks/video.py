"""``python -m benchmarks video``: frames scored per second and end-to-end latency of
``POST /v1/predict/video`` on a 10 s 720p clip.

1. A clip is written with ``cv2.VideoWriter`` (MPEG-4 Part 2 in .mp4, the codec the pip
   OpenCV can write): a face photo (``--face-image``, else a synthetic pattern) slowly panned
   and zoomed, so a face-crop model finds a face in every frame;
2. **decode only**: ``core.video`` in process (decode, face crop, resize; no model) for each
   sampling, to split the latency into decoding and scoring;
3. **server**: ``python -m serving`` on the repository, one warm-up request, then
   ``--repeats`` timed uploads per sampling (``frames=K``), one at a time.

Writes ``benchmarks/results/video-<machine>-<date>.json`` with the load average before and
after (the development VM is shared: say how busy it was with ``--note``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.cli import (
    ResultsConfig,
    add_command,
    positive_int,
    positive_ints,
    utc_stamp,
    write_results,
)
from benchmarks.sysinfo import describe_machine, machine_slug
from bulk.scorer import ModelChoice
from core.options import check_at_least, check_positive, option, options_from
from core.preprocessing import decode_rgb
from core.video import Sampling, VideoLimits, VideoReader

DEFAULT_FACE = Path("data/detector/test/real")


def face_frame(path: Path | None, width: int, height: int) -> np.ndarray:
    """The RGB picture the clip pans over: a face photo fitted into the frame, or a pattern."""
    import cv2

    if path is not None and path.is_dir():
        path = next(iter(sorted(path.glob("*.jpg"))), None)
    if path is None or not path.is_file():
        ys, xs = np.mgrid[0:height, 0:width]
        return np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], -1).astype(
            np.uint8
        )
    face = decode_rgb(path.read_bytes())
    side = int(min(width, height) * 0.8)
    frame = np.full((height, width, 3), 40, np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top : top + side, left : left + side] = cv2.resize(face, (side, side))
    return frame


def write_clip(path: Path, base: np.ndarray, seconds: float, fps: float) -> dict:
    """A clip panning and zooming slowly over ``base`` (so no two frames are equal)."""
    import cv2

    height, width = base.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    count = round(seconds * fps)
    bgr = cv2.cvtColor(base, cv2.COLOR_RGB2BGR)
    for index in range(count):
        phase = index / max(1, count - 1)
        scale = 1.0 + 0.1 * phase
        shift = 20.0 * np.sin(2 * np.pi * phase)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, scale)
        matrix[0, 2] += shift
        writer.write(cv2.warpAffine(bgr, matrix, (width, height), borderValue=(40, 40, 40)))
    writer.release()
    return {"path": path.name, "codec": "mp4v", "width": width, "height": height, "fps": fps,
            "frames": count, "seconds": seconds, "bytes": path.stat().st_size}  # fmt: skip


def decode_only(path: Path, frames: int, config, repeats: int) -> dict:
    """Median seconds to open the clip and decode + preprocess ``frames`` sampled frames."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with VideoReader(path, VideoLimits(max_frames=max(frames, 1))) as reader:
            indices = reader.sample(Sampling(frames))
            done = sum(len(chunk) for chunk in reader.chunks(indices, config))
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {"frames": done, "seconds": round(seconds, 3), "frames_per_s": round(done / seconds, 1)}


def served(client, url: str, data: bytes, frames: int, model: str, repeats: int) -> dict:
    """One warm-up, then ``repeats`` timed uploads: latency and frames scored per second."""
    target = f"{url}/v1/predict/video?frames={frames}&{model}"
    headers = {"content-type": "video/mp4"}
    client.post(target, content=data, headers=headers).raise_for_status()
    latencies, server_ms = [], []
    body: dict = {}
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.post(target, content=data, headers=headers)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
        server_ms.append(body["latency_ms"])
    sampled = body["sampling"]["sampled"]
    median = statistics.median(latencies)
    return {
        "frames": sampled,
        "latency_s": {
            "p50": round(median, 3),
            "min": round(min(latencies), 3),
            "max": round(max(latencies), 3),
        },  # fmt: skip
        "server_latency_ms_p50": round(statistics.median(server_ms), 1),
        "frames_per_s": round(sampled / median, 1),
        "label": body["label"],
        "probability_fake": round(body["probability_fake"], 4),
        "face_boxes": sum(frame["face_box"] is not None for frame in body["frames"]),
    }


@dataclass(frozen=True)
class VideoBenchConfig(ResultsConfig):
    """The clip and the samplings ``python -m benchmarks video`` measures."""

    seconds: float = option(10.0, "clip length", float)
    width: int = option(1280, "clip width in pixels", positive_int, metavar="N")
    height: int = option(720, "clip height in pixels", positive_int, metavar="N")
    fps: float = option(30.0, "clip frame rate", float)
    frames: tuple[int, ...] = option(
        (32, 300), "comma-separated frames=K samplings to measure", positive_ints, metavar="N,N,..."
    )
    repeats: int = option(3, "timed uploads per sampling", positive_int, metavar="N")
    face_image: Path = option(
        DEFAULT_FACE, "face photo (or folder: its first .jpg) the clip shows", Path
    )
    note: str = option("", "conditions of the run, stored in the JSON")

    def __post_init__(self) -> None:
        check_positive(self, "seconds", "fps")
        check_at_least(self, 1, "frames", "width", "height", "repeats")


def add_parser(commands) -> argparse.ArgumentParser:
    """Register the ``video`` subcommand on ``python -m benchmarks``."""
    return add_command(
        commands, "video", description=__doc__.split("\n\n")[0],
        help="POST /v1/predict/video on a 10 s 720p clip: frames/s and latency; writes "
        "benchmarks/results/video-<machine>-<date>.json",
        configs=(ModelChoice, VideoBenchConfig), exclude=("version",), server_arg="--flag",
    )  # fmt: skip


def measure_clip(config: VideoBenchConfig, models: Path, entry, server_args) -> dict:
    """Write the clip, time decoding alone, then the server on it, for each sampling."""
    import httpx

    from benchmarks.servers import RunningServer, our_server_spec

    preprocess = entry.preprocess_config(ModelChoice.max_pixels)
    report: dict = {"model": entry.name, "version": entry.version,
                    "face_crop": preprocess.face_crop}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        base = face_frame(config.face_image, config.width, config.height)
        report["clip"] = write_clip(clip, base, config.seconds, config.fps)
        report["clip"]["content"] = "face photo" if config.face_image.exists() else "pattern"
        report["decode_only"] = [
            decode_only(clip, k, preprocess, config.repeats) for k in config.frames
        ]
        most = str(max(VideoLimits.max_frames, *config.frames))  # frames=300: all of 10 s
        flags = ("--webui", "", "--log-level", "warning", "--video-max-frames", most,
                 *server_args)  # fmt: skip
        spec = our_server_spec("video", models, flags)
        data = clip.read_bytes()
        model = f"model={entry.name}&version={entry.version}"
        with RunningServer(spec) as server, httpx.Client(timeout=600.0) as client:
            report["server"] = [
                served(client, server.base_url, data, k, model, config.repeats)
                for k in config.frames
            ]
    return report


def command(args: argparse.Namespace) -> int:
    """``python -m benchmarks video``."""
    choice, config = options_from(ModelChoice, args), options_from(VideoBenchConfig, args)
    load_before = os.getloadavg()
    report = measure_clip(config, choice.models, choice.entry(), args.server_args)
    machine = describe_machine()
    report = {"created": utc_stamp(), "machine": machine, "note": config.note,
              "load_average": {"before": load_before, "after": os.getloadavg()},
              **report}  # fmt: skip
    print(write_results(config.out_dir, "video", machine_slug(machine), report))
    for decoded, run in zip(report["decode_only"], report["server"], strict=True):
        print(f"  frames={decoded['frames']}: decode+preprocess {decoded['frames_per_s']} "
              f"frames/s; server {run['frames_per_s']} frames/s, "
              f"p50 {run['latency_s']['p50']} s end to end", file=sys.stderr)  # fmt: skip
    return 0
