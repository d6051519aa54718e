"""What one piece of provenance evidence says, and how far it can be trusted.

A :class:`Finding` is kept apart from the model's probability: it reports what the file
itself claims (a C2PA manifest, an IPTC digital source type, a generator's metadata) and how
strong that claim is. Only the fields named here ever leave the server: never GPS, camera
serial numbers or any other metadata.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

# How strong a finding is, strongest first.
SIGNED_TRUSTED = "signed_trusted"  # C2PA: signature and binding valid, signer on the trust list
SIGNED_UNTRUSTED = "signed_untrusted"  # valid signature and binding, unknown signer
SIGNED_INVALID = "signed_invalid"  # signature or hard binding fails: changed or broken, no proof
UNSIGNED = "unsigned_metadata"  # plain metadata: easy to strip or forge
UNVERIFIED = "unverified"  # a C2PA manifest is there but could not be checked here
UNREADABLE = "unreadable"  # malformed, too large or too slow to read
STRENGTHS = (SIGNED_TRUSTED, SIGNED_UNTRUSTED, SIGNED_INVALID, UNSIGNED, UNVERIFIED, UNREADABLE)

# What a finding suggests about the image's origin.
SUGGESTS = ("ai_generated", "ai_edited", "synthetic", "captured", "unknown")

IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
IPTC_SUGGESTS = {  # IPTC digital source type code -> what it suggests
    "trainedAlgorithmicMedia": "ai_generated",
    "compositeWithTrainedAlgorithmicMedia": "ai_edited",
    "algorithmicMedia": "synthetic",
    "compositeSynthetic": "synthetic",
    "digitalCapture": "captured",
    "negativeFilm": "captured",
    "positiveFilm": "captured",
    "print": "captured",
    "compositeCapture": "captured",
    "minorHumanEdits": "captured",
}
IPTC_WORDS = {
    "ai_generated": "made by a generative AI model",
    "ai_edited": "edited with generative AI",
    "synthetic": "made by an algorithm",
    "captured": "captured by a camera or scanner",
}
MAX_TEXT = 160  # longest text value echoed back
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean(value: Any, limit: int = MAX_TEXT) -> str:
    """A metadata value as short, printable text (control characters become spaces)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = _UNPRINTABLE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_type_code(value: str) -> str:
    """``http://cv.iptc.org/.../trainedAlgorithmicMedia`` (or the bare code) -> the code."""
    text = value.strip()
    return clean(text[len(IPTC_PREFIX) :] if text.startswith(IPTC_PREFIX) else text, 80)


def source_type_suggests(code: str) -> str:
    return IPTC_SUGGESTS.get(code, "unknown")


@dataclass(frozen=True)
class Finding:
    """One piece of evidence: where it was read (``kind``, ``field``), how strong it is, what
    it says in one sentence, what it suggests, and a few bounded details."""

    kind: str  # c2pa, xmp, exif, png_text, container
    strength: str
    says: str
    suggests: str = "unknown"
    field_name: str = ""  # the metadata field or block read ("field" in JSON)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ValueError(f"strength must be one of {STRENGTHS}, got {self.strength!r}")
        if self.suggests not in SUGGESTS:
            raise ValueError(f"suggests must be one of {SUGGESTS}, got {self.suggests!r}")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "strength": self.strength, "says": self.says,
                                "suggests": self.suggests}  # fmt: skip
        if self.field_name:
            body["field"] = self.field_name
        if self.details:
            body["details"] = self.details
        return body


def unreadable(kind: str, why: str) -> Finding:
    """A metadata block that is there but could not be read: said so, never an error."""
    return Finding(kind, UNREADABLE, clean(f"{kind} metadata unreadable: {why}", 240))
