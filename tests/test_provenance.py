"""core.provenance: evidence read from files made in the test (no download, no network)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from helpers import evidence_files as files

from core.provenance import EvidenceConfig, EvidenceReader, Finding
from core.provenance.containers import scan


@pytest.fixture(scope="module")
def reader():
    evidence = EvidenceReader()
    yield evidence
    evidence.close()


def only(findings: list[dict]) -> dict:
    assert len(findings) == 1, findings
    return findings[0]


def test_a_plain_camera_jpeg_has_no_findings_and_nothing_personal_leaks(reader):
    assert reader.read(files.plain_jpeg()) == []
    assert reader.read(files.camera_jpeg()) == []
    named = reader.read(files.camera_jpeg(software="Adobe Firefly Image 3"))
    finding = only(named)
    assert (finding["kind"], finding["field"], finding["strength"]) == (
        "exif", "Software", "unsigned_metadata")  # fmt: skip
    assert finding["details"]["generator"] == "Adobe Firefly"
    text = json.dumps(named)
    assert files.CAMERA_SERIAL not in text and "EOS" not in text and "48.0" not in text


def test_a_png_with_a_generators_parameters_chunk(reader):
    finding = only(reader.read(files.png_with_parameters()))
    assert finding["kind"] == "png_text" and finding["strength"] == "unsigned_metadata"
    assert finding["suggests"] == "ai_generated" and finding["field"] == "parameters"
    assert "Stable Diffusion" in finding["details"]["generator"]
    settings = finding["details"]["settings"]
    assert settings["Steps"] == "20" and settings["Sampler"] == "Euler a"
    assert files.A1111_PROMPT not in json.dumps(finding)  # the prompt is never echoed


@pytest.mark.parametrize("as_element", [False, True])
def test_a_jpeg_with_xmp_digital_source_type(reader, as_element):
    packet = files.xmp_packet("trainedAlgorithmicMedia", as_element=as_element)
    finding = only(reader.read(files.jpeg_with_xmp(packet)))
    assert (finding["kind"], finding["strength"], finding["suggests"]) == (
        "xmp", "unsigned_metadata", "ai_generated")  # fmt: skip
    assert finding["details"] == {"digital_source_type": "trainedAlgorithmicMedia"}


def test_webp_xmp_and_a_camera_source_type(reader):
    finding = only(reader.read(files.webp_with_xmp(files.xmp_packet("digitalCapture"))))
    assert finding["suggests"] == "captured" and finding["kind"] == "xmp"


def test_c2pa_signed_by_a_throwaway_certificate_is_signed_but_untrusted(reader):
    finding = only(reader.read(files.c2pa_signed_jpeg()))
    assert finding["kind"] == "c2pa" and finding["strength"] == "signed_untrusted"
    assert finding["suggests"] == "ai_generated"
    details = finding["details"]
    assert details["signature_valid"] and details["binding_valid"] and not details["trusted"]
    assert details["signer"] == "Test Signer" and details["claim_generator"] == "TestGen 1.0"
    assert details["actions"] == ["c2pa.created"]
    assert details["digital_source_type"] == "trainedAlgorithmicMedia"
    assert "signingCredential.untrusted" in details["failures"]


def test_c2pa_signer_under_a_configured_trust_anchor_is_trusted(tmp_path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(files.certificates().ca)
    with_trust = EvidenceReader(EvidenceConfig(trust_anchors=anchors))
    try:
        finding = only(with_trust.read(files.c2pa_signed_jpeg()))
    finally:
        with_trust.close()
    assert finding["strength"] == "signed_trusted" and finding["details"]["trusted"]
    assert "with trust anchors" in with_trust.describe()


def test_pixels_changed_after_signing_fail_the_binding(reader):
    finding = only(reader.read(files.pixels_changed(files.c2pa_signed_jpeg())))
    assert finding["strength"] == "signed_invalid"
    assert finding["details"]["signature_valid"] and not finding["details"]["binding_valid"]
    assert "assertion.dataHash.mismatch" in finding["details"]["failures"]
    assert "NOT validate" in finding["says"]


MALFORMED = {  # name -> (file, kind of the unreadable finding, words in what it says)
    "XMP not well-formed": (lambda: files.jpeg_with_xmp(b"<x:xmpmeta><rdf:RDF>"), "xmp",
                            "not well-formed"),
    "XMP with a DTD (entity expansion)": (lambda: files.jpeg_with_xmp(
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'), "xmp", "DTD"),
    "EXIF without a TIFF header": (files.jpeg_with_broken_exif, "exif", "broken EXIF"),
    "zTXt that inflates to 64 MB": (lambda: files.png_with_chunks(files.ztxt_bomb()),
                                    "png_text", "beyond the limit"),
    "iTXt XMP of 2 MB": (lambda: files.png_with_chunks(files.png_chunk(
        b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + b" " * (2 << 20))),
        "png_text", "over the limit"),
    "text chunk failing its CRC": (lambda: files.png_with_chunks(files.png_chunk(
        b"tEXt", b"parameters\x00Steps: 20", crc=1)), "png_text", "CRC"),
    "corrupt zTXt": (lambda: files.png_with_chunks(files.png_chunk(
        b"zTXt", b"Comment\x00\x00not zlib at all")), "png_text", "corrupt"),
    "300 text chunks": (lambda: files.png_with_chunks(*[files.png_chunk(
        b"tEXt", b"k\x00v")] * 300), "container", "more than 32"),
    "APP11 C2PA store full of garbage": (files.jpeg_with_bogus_c2pa, "c2pa", "unreadable"),
}  # fmt: skip


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_or_huge_metadata_is_reported_unreadable(reader, name):
    build, kind, words = MALFORMED[name]
    started = time.perf_counter()
    findings = reader.read(build())
    assert time.perf_counter() - started < 1.0
    unreadable = [f for f in findings if f["strength"] == "unreadable"]
    assert unreadable and unreadable[0]["kind"] == kind, findings
    assert words in unreadable[0]["says"]


def test_without_the_c2pa_package_manifests_are_reported_unverified(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now raises ImportError
    without = EvidenceReader()
    assert without.c2pa is None and "C2PA unavailable" in without.describe()
    finding = only(without.read(files.c2pa_signed_jpeg()))
    assert finding["strength"] == "unverified" and finding["kind"] == "c2pa"
    assert only(without.read(files.png_with_parameters()))["kind"] == "png_text"


def test_a_slow_c2pa_validation_is_cut_off(monkeypatch):
    slow = EvidenceReader(EvidenceConfig(timeout_s=0.05))
    monkeypatch.setattr(slow.c2pa, "read", lambda data, mime: time.sleep(0.5) or [])
    try:
        finding = only(slow.read(files.c2pa_signed_jpeg()))
    finally:
        slow.close()
    assert finding["strength"] == "unreadable" and "longer than 0.05 s" in finding["says"]


def test_files_over_the_size_limit_are_not_validated():
    small = EvidenceReader(EvidenceConfig(max_file_bytes=1000))
    try:
        finding = only(small.read(files.c2pa_signed_jpeg()))
    finally:
        small.close()
    assert finding["strength"] == "unreadable" and "over the limit" in finding["says"]


def test_the_quick_check_tells_files_without_metadata_apart(reader):
    assert scan(files.plain_jpeg(), EvidenceConfig()).empty
    assert reader.nothing_to_read(files.plain_jpeg()) and reader.nothing_to_read(b"no image")
    assert not reader.nothing_to_read(files.camera_jpeg())
    many_chunks = files.png_with_chunks(*[files.png_chunk(b"pHYs", b"\x00" * 9)] * 100)
    assert not reader.nothing_to_read(many_chunks)  # walk not finished in 64 steps: read it
    assert reader.read(many_chunks) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"timeout_s": 0}, "timeout_s must be positive"),
     ({"max_block_bytes": 0}, "max_block_bytes must be at least 1")],
)  # fmt: skip
def test_config_is_checked_where_it_is_built(changes, words):
    with pytest.raises(ValueError, match=words):
        EvidenceConfig(**changes)


def test_a_trust_anchor_file_without_a_certificate_is_refused(tmp_path: Path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text("nothing here")
    with pytest.raises(ValueError, match="no PEM certificate"):
        EvidenceReader(EvidenceConfig(trust_anchors=anchors))
    with pytest.raises(ValueError, match="cannot read"):
        EvidenceReader(EvidenceConfig(trust_anchors=tmp_path / "missing.pem"))


def test_a_finding_refuses_an_unknown_strength():
    with pytest.raises(ValueError, match="strength must be one of"):
        Finding("xmp", "proof", "says")


def test_a_closed_reader_still_answers():
    closed = EvidenceReader()
    closed.close()
    assert only(closed.read(files.c2pa_signed_jpeg()))["says"].endswith("the reader is shut down")
