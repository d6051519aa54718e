"""Provenance evidence beside the model's verdict: C2PA content credentials, the IPTC digital
source type in XMP, and generator metadata (PNG text chunks, EXIF/XMP software fields).

Read from the original bytes before any decoding, bounded in size and time, never over the
network; malformed metadata gives an ``unreadable`` finding, never an exception. One module
per kind: :mod:`.c2pa_manifest`, :mod:`.xmp`, :mod:`.exif`, :mod:`.pngtext`; the cheap
container walk is :mod:`.containers`, the bounds :mod:`.config`.
"""

from core.provenance.config import EvidenceConfig
from core.provenance.findings import STRENGTHS, SUGGESTS, Finding
from core.provenance.reader import EvidenceReader

__all__ = ["STRENGTHS", "SUGGESTS", "EvidenceConfig", "EvidenceReader", "Finding"]
