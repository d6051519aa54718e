"""XMP: the IPTC ``DigitalSourceType`` (e.g. ``trainedAlgorithmicMedia``) and a creator tool
that names a generator. Unsigned: anyone can write, strip or change XMP."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from core.provenance.findings import (
    IPTC_WORDS,
    UNSIGNED,
    Finding,
    clean,
    source_type_code,
    source_type_suggests,
    unreadable,
)
from core.provenance.generators import generator_named

IPTC_EXT = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType"
RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
TOOLS = {  # XMP property -> how it is reported
    "{http://ns.adobe.com/xap/1.0/}CreatorTool": "xmp:CreatorTool",
    "{http://ns.adobe.com/tiff/1.0/}Software": "tiff:Software",
}


def read_xmp(packet: bytes) -> list[Finding]:
    """Findings of one XMP packet; malformed XML gives one ``unreadable`` finding."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        return [unreadable("xmp", "the packet declares a DTD or entities (refused)")]
    try:
        root = ET.fromstring(packet.strip(b"\x00 \t\r\n"))
    except ET.ParseError as exc:
        return [unreadable("xmp", f"not well-formed XML ({exc})")]
    values: dict[str, str] = {}
    for element in root.iter():
        for name, value in element.attrib.items():
            if name == IPTC_EXT or name in TOOLS:
                values.setdefault(name, value)
        if element.tag == IPTC_EXT or element.tag in TOOLS:
            text = (element.text or "").strip() or element.get(RDF_RESOURCE, "")
            if text:
                values.setdefault(element.tag, text)
    found = [_source_type(values[IPTC_EXT])] if IPTC_EXT in values else []
    for name, label in TOOLS.items():
        generator = generator_named(values.get(name, ""))
        if generator:
            found.append(Finding(
                "xmp", UNSIGNED, f"XMP {label} names the generator {generator}",
                "ai_generated", label, {"generator": generator, "value": clean(values[name], 80)},
            ))  # fmt: skip
    return found


def _source_type(value: str) -> Finding:
    code = source_type_code(value)
    suggests = source_type_suggests(code)
    words = IPTC_WORDS.get(suggests)
    says = f"XMP says the digital source type is {code}" + (f" ({words})" if words else "")
    return Finding("xmp", UNSIGNED, says, suggests, "Iptc4xmpExt:DigitalSourceType",
                   {"digital_source_type": code})  # fmt: skip
