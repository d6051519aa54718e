"""Files carrying provenance evidence, made on the spot for the tests (nothing downloaded):
a throw-away ES256 certificate chain (CA + end-entity with the key usages C2PA requires), a
C2PA-signed JPEG, generator metadata, XMP digital source types, a camera-style JPEG, and
malformed or huge metadata."""

from __future__ import annotations

import datetime
import functools
import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111_PROMPT = "a portrait of a secret person"
A1111_PARAMETERS = (
    f"{A1111_PROMPT}\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
    "Seed: 42, Size: 512x512, Model hash: abc123, Model: sd15"
)
CAMERA_SERIAL = "SN-0042-7731"
SIDE = 48  # default image side in pixels


def noise_rgb(seed: int, side: int = SIDE) -> np.ndarray:
    """A smooth gradient with mild noise (compresses like a photo, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40.0, 215.0, side)
    base = (ramp[:, None, None] + ramp[None, :, None] * np.array([0.3, 0.6, 0.9])) / 1.6
    return np.clip(base + rng.normal(0.0, 12.0, (side, side, 3)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Certificates:
    """PEM texts: the chain the signer sends (end-entity, then CA), its key, and the CA."""

    chain: bytes
    key: bytes
    ca: bytes


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Throwaway Test Org"),
    ])  # fmt: skip


def _usage(*, sign: bool, certs: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=certs, crl_sign=certs,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


@functools.cache
def certificates() -> Certificates:
    """An ES256 CA and an end-entity signing certificate (digitalSignature, EKU
    emailProtection, not a CA), valid from yesterday for 30 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: str, public_key):
        return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name("Test CA"))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                               critical=False))  # fmt: skip

    ca = (builder("Test CA", ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_usage(sign=False, certs=True), critical=True)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip
    leaf = (builder("Test Signer", key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=True, certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    pem = serialization.Encoding.PEM
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    return Certificates(
        leaf.public_bytes(pem) + ca.public_bytes(pem), private, ca.public_bytes(pem)
    )


def _encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def plain_jpeg(seed: int = 7, side: int = SIDE) -> bytes:
    return _encode(noise_rgb(seed, side), "JPEG", quality=90)


@functools.cache
def c2pa_signed_jpeg(source_type: str = "trainedAlgorithmicMedia", side: int = SIDE) -> bytes:
    """A JPEG whose C2PA manifest says ``c2pa.created`` with ``source_type``, signed with
    :func:`certificates` (no timestamp authority: nothing is fetched)."""
    import c2pa

    certs = certificates()
    manifest = {
        "claim_generator_info": [{"name": "TestGen", "version": "1.0"}],
        "title": "generated.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}]}}],
    }  # fmt: skip
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", certs.chain, certs.key, None))
    context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    output = io.BytesIO()
    with c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(plain_jpeg(side=side)), output)
    return output.getvalue()


def pixels_changed(signed: bytes) -> bytes:
    """``signed`` with one byte of its entropy-coded pixels changed (the manifest kept)."""
    data = bytearray(signed)
    position = data.rindex(b"\xff\xda") + 40
    data[position] ^= 0x01
    return bytes(data)


def png_with_parameters(side: int = SIDE) -> bytes:
    """A PNG as a Stable Diffusion web UI saves it: a ``parameters`` text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    return _encode(noise_rgb(8, side), "PNG", pnginfo=info)


def xmp_packet(source_type: str = "trainedAlgorithmicMedia", *, as_element: bool = False) -> bytes:
    value = IPTC + source_type
    inner = f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{value}"/>' if as_element else ""
    attribute = "" if as_element else f' Iptc4xmpExt:DigitalSourceType="{value}"'
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        f'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"{attribute}>{inner}'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def jpeg_with_xmp(packet: bytes | None = None, side: int = SIDE) -> bytes:
    packet = packet if packet is not None else xmp_packet()
    return _encode(noise_rgb(9, side), "JPEG", xmp=packet)


def webp_with_xmp(packet: bytes) -> bytes:
    return _encode(noise_rgb(9), "WEBP", xmp=packet)


def camera_exif(software: str = "Ver.1.01") -> bytes:
    """EXIF as a camera writes it: make, model, firmware, body serial number, GPS position."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "EOS R6", software
    exif.get_ifd(0x8769)[0xA431] = CAMERA_SERIAL  # BodySerialNumber
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return exif.tobytes()


def camera_jpeg(software: str = "Ver.1.01", side: int = SIDE) -> bytes:
    return _encode(noise_rgb(10, side), "JPEG", exif=camera_exif(software), quality=92)


def png_chunk(kind: bytes, payload: bytes, *, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_with_chunks(*chunks: bytes) -> bytes:
    """A small valid PNG with ``chunks`` inserted right after IHDR."""
    data = _encode(noise_rgb(11), "PNG")
    cut = 8 + 25  # signature + IHDR chunk
    return data[:cut] + b"".join(chunks) + data[cut:]


def ztxt_bomb(inflated_mb: int = 64) -> bytes:
    """A zTXt chunk of a few tens of kB that inflates to ``inflated_mb`` MB."""
    compressor = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    body = b"".join(compressor.compress(block) for _ in range(inflated_mb)) + compressor.flush()
    return png_chunk(b"zTXt", b"Comment\x00\x00" + body)


def jpeg_with_broken_exif() -> bytes:
    """A JPEG whose EXIF block has no valid TIFF header."""
    data = camera_jpeg()
    start = data.index(b"Exif\x00\x00") + 6
    return data[:start] + b"XX" + data[start + 2 :]


def jpeg_with_bogus_c2pa() -> bytes:
    """A JPEG with an APP11 segment labelled as a C2PA JUMBF store, full of garbage."""
    payload = b"JP\x00\x01\x00\x00\x00\x01" + b"\x00\x00\x00\x40jumb\x00\x00\x00\x20jumdc2pa"
    payload += bytes(range(256)) * 4
    segment = b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload
    data = plain_jpeg()
    return data[:2] + segment + data[2:]


def billion_laughs_xmp() -> bytes:
    """An XMP packet shaped like the 'billion laughs' entity expansion attack."""
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE x [{entities}]><x:xmpmeta>&l9;</x:xmpmeta>'.encode()
