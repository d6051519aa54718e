"""C2PA content credentials through the official bindings (PyPI ``c2pa-python``), offline:
no remote manifest, no OCSP, no network host allowed. The signature, the hard binding (the
hash of the file's bytes) and the signer's trust are reported separately: an unknown signer
is "signed but untrusted", a failed check is "signed but invalid", never proof."""

from __future__ import annotations

import io
import json
from typing import Any

from core.provenance.findings import (
    IPTC_WORDS,
    SIGNED_INVALID,
    SIGNED_TRUSTED,
    SIGNED_UNTRUSTED,
    SUGGESTS,
    Finding,
    clean,
    source_type_code,
    source_type_suggests,
    unreadable,
)

OFFLINE = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
    "core": {"allowed_network_hosts": []},
}
BINDINGS = ("assertion.dataHash.", "assertion.boxesHash.", "assertion.bmffHash.",
            "assertion.collectionHash.")  # fmt: skip
MAX_LISTED = 10


class C2paVerifier:
    """One c2pa context (settings, trust anchors) reused for every file; thread-safe."""

    def __init__(self, trust_anchors_pem: str | None = None) -> None:
        import c2pa  # optional: ImportError means "C2PA unavailable"

        settings: dict[str, Any] = dict(OFFLINE)
        if trust_anchors_pem:
            settings["trust"] = {"trust_anchors": trust_anchors_pem}
        self._c2pa = c2pa
        self._context = c2pa.Context(c2pa.Settings.from_dict(settings))
        self.version = c2pa.sdk_version()  # the c2pa-rs library inside the bindings

    def read(self, data: bytes, mime: str) -> list[Finding]:
        """The active manifest of ``data`` as one finding."""
        errors = self._c2pa.C2paError
        try:
            with self._c2pa.Reader(mime, io.BytesIO(data), context=self._context) as reader:
                store = json.loads(reader.json())
        except errors.ManifestNotFound:
            return [unreadable("c2pa", "a C2PA block is present but holds no readable manifest")]
        except (errors, ValueError) as exc:
            return [unreadable("c2pa", str(exc))]
        return [manifest_finding(store)]


def _codes(results: dict, key: str) -> list[str]:
    return [str(item.get("code", "")) for item in results.get(key) or [] if isinstance(item, dict)]


def _actions(manifest: dict) -> list[dict]:
    actions = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            actions += (assertion.get("data") or {}).get("actions") or []
    return [action for action in actions if isinstance(action, dict)]


def _generator(manifest: dict) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return clean(f"{info[0].get('name', '')} {info[0].get('version', '')}", 80)
    return clean(manifest.get("claim_generator", ""), 80)


def _checks(store: dict) -> tuple[bool, bool, list[str]]:
    """(signature valid, hard binding valid, failure codes) of the active manifest."""
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    success = _codes(results, "success")
    failure = _codes(results, "failure") or _codes({"s": store.get("validation_status")}, "s")
    signature = "claimSignature.validated" in success and not any(
        code.startswith("claimSignature.") for code in failure
    )
    binding = any(code.startswith(BINDINGS) and code.endswith(".match") for code in success)
    binding = binding and not any(code.startswith(BINDINGS) for code in failure)
    return signature, binding, failure


def manifest_finding(store: dict) -> Finding:
    """What the active manifest of a c2pa ``Reader.json()`` store says, and how strongly."""
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    signature, binding, failure = _checks(store)
    state = store.get("validation_state")
    strength = SIGNED_INVALID
    if signature and binding and state in ("Valid", "Trusted"):
        strength = SIGNED_TRUSTED if state == "Trusted" else SIGNED_UNTRUSTED
    actions = _actions(manifest)
    codes = [source_type_code(str(a["digitalSourceType"])) for a in actions
             if a.get("digitalSourceType")]  # fmt: skip
    hints = [source_type_suggests(code) for code in codes]
    suggests = min(hints, key=SUGGESTS.index) if hints else "unknown"
    signer = manifest.get("signature_info") or {}
    details = {
        "claim_generator": _generator(manifest),
        "actions": [clean(a.get("action", ""), 60) for a in actions][:MAX_LISTED],
        "digital_source_type": codes[0] if codes else None,
        "signer": clean(signer.get("common_name") or "", 80) or None,
        "issuer": clean(signer.get("issuer") or "", 80) or None,
        "signature_valid": signature,
        "binding_valid": binding,
        "trusted": strength == SIGNED_TRUSTED,
        "failures": [clean(code, 80) for code in failure][:MAX_LISTED],
    }
    return Finding("c2pa", strength, _says(details, suggests, strength), suggests,
                   "active manifest", details)  # fmt: skip


def _says(details: dict, suggests: str, strength: str) -> str:
    what = IPTC_WORDS.get(suggests, "")
    code = details["digital_source_type"]
    text = f"C2PA manifest: {what} ({code})" if what else "C2PA manifest"
    if details["actions"]:
        text += f", actions {', '.join(details['actions'][:4])}"
    if details["claim_generator"]:
        text += f", written by {details['claim_generator']}"
    signer = details["signer"] or details["issuer"] or "an unnamed signer"
    if strength == SIGNED_TRUSTED:
        return f"{text}; signed by {signer}, on the trust list; signature and binding valid"
    if strength == SIGNED_UNTRUSTED:
        return f"{text}; valid signature by {signer}, who is not on the trust list"
    broken = "the file changed after signing" if not details["binding_valid"] else "bad signature"
    return f"{text}; signed by {signer} but does NOT validate ({broken}): no proof either way"
