"""Synthetic video clips written with ``cv2.VideoWriter`` (no files are downloaded).

The pip OpenCV build writes MPEG-4 Part 2 (``mp4v``) into .mp4 / .mov, Motion JPEG (``MJPG``)
into .avi, and VP8 / VP9 (``VP80`` / ``VP90``) into .webm; it cannot write H.264 (``avc1``:
no encoder in the wheel), so H.264 decoding is not covered by these clips.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

CODECS = (("mp4v", ".mp4"), ("mp4v", ".mov"), ("MJPG", ".avi"), ("VP80", ".webm"),
          ("VP90", ".webm"))  # fmt: skip


def clip_frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR frames whose brightness differs from frame to frame (so do the scores)."""
    rng = np.random.default_rng(seed)
    levels = rng.permutation(np.linspace(30, 225, max(count, 2)))[:count]
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for level in levels:
        pattern = ((xs // 8 + ys // 8) % 2) * 40.0 - 20.0  # a checkerboard keeps codecs honest
        frame = np.clip(level + pattern, 0, 255).astype(np.uint8)
        frames.append(np.repeat(frame[..., None], 3, axis=2))
    return frames


def write_clip(
    path: Path, count: int = 12, width: int = 64, height: int = 48, fps: float = 10.0,
    fourcc: str = "mp4v", seed: int = 0,
) -> Path:  # fmt: skip
    """A clip of ``count`` frames; raises RuntimeError if this OpenCV cannot write ``fourcc``."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"this OpenCV build cannot write {fourcc} into {path.suffix}")
    for frame in clip_frames(count, width, height, seed):
        writer.write(frame)
    writer.release()
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` as RGB, decoded independently of core.video."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def avi_with_frames_zeroed(data: bytes, first: int = 0) -> bytes:
    """An AVI whose video chunks (``00dc``) from number ``first`` on are all zero bytes: the
    container is intact, the frames undecodable."""
    out = bytearray(data)
    offset, number = 0, 0
    while (offset := out.find(b"00dc", offset)) >= 0:
        (size,) = struct.unpack("<I", out[offset + 4 : offset + 8])
        if number >= first:
            out[offset + 8 : offset + 8 + size] = bytes(size)
        number += 1
        offset += 8 + size
    return bytes(out)
