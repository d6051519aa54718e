"""The cheap first pass: walk a JPEG's segments, a PNG's or a WebP's chunks and pick out the
metadata blocks (EXIF, XMP, text chunks, C2PA), without decoding a pixel or parsing a block.

A camera JPEG costs a few microseconds here: the walk stops at the start of the scan. Broken
structure ends the walk quietly (the image decoder reports broken images); a metadata block
that is cut, fails its checksum, or is too large becomes an ``unreadable`` finding.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.provenance.config import EvidenceConfig
from core.provenance.findings import Finding, unreadable

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = "XML:com.adobe.xmp"


def mime_type(data: bytes) -> str | None:
    """The container of ``data`` if it is one whose metadata is read here."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(PNG_SIGNATURE):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


@dataclass
class Blocks:
    """The raw metadata blocks of one file (nothing parsed yet)."""

    config: EvidenceConfig
    mime: str | None = None
    exif: list[bytes] = field(default_factory=list)  # each starting with b"Exif\0\0"
    xmp: list[bytes] = field(default_factory=list)
    text: list[tuple[str, str]] = field(default_factory=list)  # PNG text: (keyword, text)
    c2pa: bool = False  # a C2PA manifest store (JUMBF) is embedded
    complete: bool = True  # the walk reached the end of the metadata (not its step limit)
    problems: list[Finding] = field(default_factory=list)
    _count: int = 0

    @property
    def empty(self) -> bool:
        return not (self.exif or self.xmp or self.text or self.c2pa or self.problems)

    def admit(self, kind: str, size: int, where: str) -> bool:
        """Whether one more block of ``size`` bytes may be read (a problem is noted if not)."""
        self._count += 1
        if self._count > self.config.max_blocks:
            if self._count == self.config.max_blocks + 1:
                self.problems.append(unreadable(
                    "container", f"more than {self.config.max_blocks} metadata blocks; "
                    "the rest were not read"))  # fmt: skip
            return False
        if size > self.config.max_block_bytes:
            self.problems.append(unreadable(
                kind, f"{where} holds {size} bytes, over the limit of "
                f"{self.config.max_block_bytes}"))  # fmt: skip
            return False
        return True


def scan(data: bytes, config: EvidenceConfig, *, steps: int | None = None) -> Blocks:
    """The metadata blocks of ``data`` (none for containers not read here), walking at most
    ``steps`` segments or chunks (default: the configured ``max_segments``)."""
    blocks = Blocks(config, mime_type(data))
    walk = {JPEG: _walk_jpeg, PNG: _walk_png, WEBP: _walk_webp}.get(blocks.mime)
    if walk is not None:
        blocks.complete = walk(memoryview(data), blocks, steps or config.max_segments)
    return blocks


def _walk_jpeg(data: memoryview, blocks: Blocks, steps: int) -> bool:
    """APP1 (EXIF, XMP) and APP11 (JUMBF) segments, up to the start of the scan."""
    pos, size = 2, len(data)
    for _ in range(steps):
        if pos + 4 > size or data[pos] != 0xFF:
            return True
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no metadata beyond
            return True
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + length
        if length < 2 or end > size:
            if marker in (0xE1, 0xEB):
                blocks.problems.append(unreadable("container", "a JPEG metadata segment "
                                                  "runs past the end of the file"))  # fmt: skip
            return True
        if marker in (0xE1, 0xEB):
            _jpeg_segment(marker, data[pos + 4 : end], blocks)
        pos = end
    return False


def _jpeg_segment(marker: int, payload: memoryview, blocks: Blocks) -> None:
    head = bytes(payload[:40])
    if marker == 0xEB:  # JUMBF: C2PA stores its manifest store here, labelled "c2pa"
        blocks.c2pa = blocks.c2pa or (head[:2] == b"JP" and b"c2pa" in bytes(payload[:96]))
    elif head.startswith(EXIF_HEADER):
        if blocks.admit("exif", len(payload), "the EXIF segment"):
            blocks.exif.append(bytes(payload))
    elif head.startswith(XMP_HEADER) and blocks.admit("xmp", len(payload), "the XMP segment"):
        blocks.xmp.append(bytes(payload[len(XMP_HEADER) :]))


@dataclass
class _ChunkWalk:
    """The chunks of a PNG (length, type, data, CRC) or RIFF file (type, length, data, pad to
    even), as ``(type, start, end)``; ``complete`` once the walk reached the file's end (or
    PNG's IEND) within ``steps`` chunks."""

    data: memoryview
    start: int
    steps: int
    png: bool
    complete: bool = False

    def __iter__(self) -> Iterator[tuple[bytes, int, int]]:
        pos, size = self.start, len(self.data)
        framing = 12 if self.png else 8  # header (+ PNG's CRC)
        for _ in range(self.steps):
            if pos + framing > size:
                break
            if self.png:
                length, kind = struct.unpack_from(">I4s", self.data, pos)
            else:
                kind, length = struct.unpack_from("<4sI", self.data, pos)
            end = pos + framing + length
            if self.png and kind == b"IEND":
                break
            yield kind, pos, end
            pos = end + (0 if self.png else length & 1)
        else:
            return
        self.complete = True


def _walk_png(data: memoryview, blocks: Blocks, steps: int) -> bool:
    """tEXt, zTXt, iTXt, eXIf and caBX (C2PA) chunks, up to IEND."""
    walk = _ChunkWalk(data, 8, steps, png=True)
    for kind, pos, end in walk:
        if kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"caBX"):
            name = kind.decode()
            if end > len(data):
                blocks.problems.append(unreadable("png_text", f"the {name} chunk runs past the "
                                                  "end of the file"))  # fmt: skip
                return True
            (crc,) = struct.unpack_from(">I", data, end - 4)
            if zlib.crc32(data[pos + 4 : end - 4]) != crc:
                blocks.problems.append(unreadable("png_text", f"a {name} chunk fails its CRC"))
            else:
                _png_chunk(kind, data[pos + 8 : end - 4], blocks)
    return walk.complete


def _png_chunk(kind: bytes, payload: memoryview, blocks: Blocks) -> None:
    if kind == b"caBX":
        blocks.c2pa = True
        return
    if kind == b"eXIf":
        if blocks.admit("exif", len(payload), "the eXIf chunk"):
            blocks.exif.append(EXIF_HEADER + bytes(payload))
        return
    if not blocks.admit("png_text", len(payload), f"a {kind.decode()} chunk"):
        return
    try:
        keyword, text = _png_text(kind, bytes(payload), blocks.config.max_block_bytes)
    except ValueError as exc:
        blocks.problems.append(unreadable("png_text", f"a {kind.decode()} chunk: {exc}"))
        return
    if keyword == PNG_XMP_KEYWORD:
        blocks.xmp.append(text.encode())
    else:
        blocks.text.append((keyword, text))


def _png_text(kind: bytes, payload: bytes, limit: int) -> tuple[str, str]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk; compressed text inflated to ``limit``."""
    keyword, sep, rest = payload.partition(b"\x00")
    if not sep or not 1 <= len(keyword) <= 79:
        raise ValueError("no keyword")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        return name, _inflate(rest[1:], limit).decode("latin-1")
    if len(rest) < 2:
        raise ValueError("cut short")
    compressed, body = rest[0], rest[2:]
    _language, _, body = body.partition(b"\x00")
    _translated, _, body = body.partition(b"\x00")
    text = _inflate(body, limit) if compressed else body
    return name, text.decode("utf-8", "replace")


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise ValueError(f"compressed text is corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"compressed text inflates beyond the limit of {limit} bytes")
    return out


def _walk_webp(data: memoryview, blocks: Blocks, steps: int) -> bool:
    """EXIF, XMP and C2PA chunks of a RIFF/WebP file."""
    walk = _ChunkWalk(data, 12, steps, png=False)
    for kind, pos, end in walk:
        if kind in (b"EXIF", b"XMP ", b"C2PA") and end > len(data):
            blocks.problems.append(unreadable("container", f"the WebP {kind.decode().strip()} "
                                              "chunk runs past the end of the file"))  # fmt: skip
            return True
        payload = data[pos + 8 : end]
        if kind == b"C2PA":
            blocks.c2pa = True
        elif kind == b"EXIF" and blocks.admit("exif", len(payload), "the EXIF chunk"):
            raw = bytes(payload)
            blocks.exif.append(raw if raw.startswith(EXIF_HEADER) else EXIF_HEADER + raw)
        elif kind == b"XMP " and blocks.admit("xmp", len(payload), "the XMP chunk"):
            blocks.xmp.append(bytes(payload))
    return walk.complete
