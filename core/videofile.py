"""What kind of video file this is, and whether it is whole, read from its container structure.

OpenCV (through FFmpeg) decodes the frames, but it cannot tell a text file from a truncated MP4
or an unsupported codec: each just fails to open. Reading the container's own framing first
gives every bad upload its own clear answer:

* **MP4 / MOV** (ISO base media): the top-level boxes are walked; a box that runs past the end
  of the file, or no ``moov`` box at all, means the file was cut short;
* **AVI** (RIFF): the RIFF chunk's declared size must fit in the file;
* **WebM / Matroska** (EBML): the Segment element's declared size must fit in the file
  (a live-written file may leave it unknown; then only decoding can tell).

Only the file's framing is read (a few seeks), never its payload.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

CONTAINERS = ("mp4", "avi", "webm")  # mp4 covers MOV (same box structure), webm covers MKV
CONTAINER_NAMES = "MP4/MOV, WebM/Matroska or AVI"
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
EBML_SEGMENT = 0x18538067


def sniff(head: bytes) -> str | None:
    """``"mp4"``, ``"avi"``, ``"webm"`` from a file's first 16 bytes, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == EBML_MAGIC:
        return "webm"
    return None


def _mp4_complete(handle: BinaryIO, size: int) -> bool:
    """Every top-level box lies inside the file and one of them is ``moov``."""
    offset, seen_moov = 0, False
    while offset + 8 <= size:
        handle.seek(offset)
        length, kind = struct.unpack(">I4s", handle.read(8))
        if length == 1:  # 64-bit size follows the type
            if offset + 16 > size:
                return False
            (length,) = struct.unpack(">Q", handle.read(8))
        elif length == 0:  # the box runs to the end of the file
            length = size - offset
        if length < 8 or offset + length > size:
            return False
        seen_moov = seen_moov or kind == b"moov"
        offset += length
    return seen_moov and offset == size


def _avi_complete(handle: BinaryIO, size: int) -> bool:
    handle.seek(4)
    (declared,) = struct.unpack("<I", handle.read(4))
    return declared + 8 <= size


def _ebml_number(handle: BinaryIO, *, keep_marker: bool) -> tuple[int, bool] | None:
    """One EBML variable-length integer: (value, all value bits set = "unknown size")."""
    first = handle.read(1)
    if not first or first[0] == 0:
        return None
    width = 8 - first[0].bit_length() + 1
    rest = handle.read(width - 1)
    if len(rest) != width - 1:
        return None
    marker = 1 << (8 - width)
    value = first[0] if keep_marker else first[0] & (marker - 1)
    for byte in rest:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * width)) - 1
    return value, unknown


def _webm_complete(handle: BinaryIO, size: int) -> bool:
    """The EBML header and the Segment element's declared size both fit in the file."""
    handle.seek(0)
    for _ in range(2):  # the EBML header element, then the Segment
        element = _ebml_number(handle, keep_marker=True)
        length = _ebml_number(handle, keep_marker=False)
        if element is None or length is None:
            return False
        if element[0] == EBML_SEGMENT:
            return length[1] or handle.tell() + length[0] <= size
        handle.seek(length[0], 1)
    return False


_COMPLETE = {"mp4": _mp4_complete, "avi": _avi_complete, "webm": _webm_complete}


def inspect_file(path: Path) -> tuple[str | None, bool]:
    """``(container, complete)``: the container sniffed from the first bytes (None when it is
    none of :data:`CONTAINERS`) and whether its framing says the file is whole."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        container = sniff(handle.read(16))
        if container is None:
            return None, False
        try:
            return container, _COMPLETE[container](handle, size)
        except struct.error:  # a header field cut off by the end of the file
            return container, False
