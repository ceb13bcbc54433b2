"""Read and summarise C2PA manifests (Content Credentials) with ``c2pa-python``.

What the SDK (c2pa-python 0.38, c2pa-rs 0.91) reports, and how this module reads it:

* ``c2pa.Reader(mime, stream, None, context)`` parses the manifest store and validates it;
  ``reader.json()`` holds ``active_manifest``, ``manifests``, ``validation_status`` (the
  failure codes), ``validation_results`` and ``validation_state``.
* ``validation_state`` is ``Trusted`` (valid and the signer chains to a configured trust
  anchor), ``Valid`` (cryptographically valid, signer not on any trust list) or
  ``Invalid``. A self-made certificate gives ``Valid`` with the failure code
  ``signingCredential.untrusted``: that is a trust question, not tampering, so codes are
  split into *trust* (who signed), *credential* (expired/revoked/invalid certificate)
  and *integrity* (hash or signature mismatch: the file or claim changed after signing).
* No manifest raises ``ManifestNotFound``. To keep that case cheap and quiet the SDK is
  only called when the bytes contain a JUMBF superbox type (``jumb``) and the store label
  (``c2pa``), which every embedded C2PA store has.
* By default the SDK *fetches* remote manifests named in XMP ``dcterms:provenance`` and
  OCSP responses over the network. A scanner must not do that, so the context turns both
  off; a remote reference is reported, not followed.
"""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any

from deeptrawl.detectors.metadata.signatures import SourceType, find_generator, source_type

#: Failure codes about who signed (not whether the content changed).
TRUST_CODES = frozenset({
    "signingCredential.untrusted",
    "signingCredential.ocsp.skipped",
    "signingCredential.ocsp.inaccessible",
    "signingCredential.ocsp.unknown",
    "timeStamp.untrusted",
})
#: Failure-code prefixes about the certificate itself (expired, revoked, malformed).
CREDENTIAL_PREFIXES = ("signingCredential.", "timeStamp.", "algorithm.")

_SETTINGS_BASE: dict[str, Any] = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
}

MAX_LIST = 20


class C2paInspector:
    """Reads C2PA stores with one lazily created SDK context (safe to pickle)."""

    def __init__(self, trust_anchors_pem: str | None = None) -> None:
        self.trust_anchors_pem = trust_anchors_pem
        self._context: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # the native context stays behind
        return {"trust_anchors_pem": self.trust_anchors_pem}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["trust_anchors_pem"])

    def context(self) -> Any:
        with self._lock:
            # The SDK invalidates a context inherited across fork(): build one per process.
            if self._context is None or self._pid != os.getpid():
                import c2pa

                settings = json.loads(json.dumps(_SETTINGS_BASE))
                if self.trust_anchors_pem:
                    settings["trust"] = {"trust_anchors": self.trust_anchors_pem}
                self._context = c2pa.Context(c2pa.Settings.from_dict(settings))
                self._pid = os.getpid()
            return self._context

    def inspect(self, data: bytes, mime: str) -> dict[str, Any]:
        """A JSON-ready summary; ``{"present": False}`` when the file has no store."""
        if b"jumb" not in data or b"c2pa" not in data:  # no JUMBF store labelled "c2pa"
            return {"present": False}
        import c2pa

        try:
            reader = c2pa.Reader(mime, io.BytesIO(data), None, self.context())
        except c2pa.C2paError as exc:
            text = str(exc)
            if type(exc).__name__.endswith("ManifestNotFound") or "ManifestNotFound" in text:
                return {"present": False}
            if "NotSupported" in type(exc).__name__ or text.startswith("NotSupported"):
                return {"present": False, "unsupported": True}
            if text.startswith("Remote"):  # only a remote reference, which is never fetched
                return {"present": False, "remote_reference": True}
            return {"present": True, "readable": False, "error": text[:300]}
        try:
            with reader:
                store = json.loads(reader.json())
        except (c2pa.C2paError, ValueError) as exc:
            return {"present": True, "readable": False, "error": str(exc)[:300]}
        return summarize(store)


def summarize(store: dict[str, Any]) -> dict[str, Any]:
    """Reduce a ``Reader.json()`` store to what a reviewer and the scorer need."""
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) or {}
    state = store.get("validation_state")

    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes: list[str] = []
    for entry in list(store.get("validation_status") or []) + list(results.get("failure") or []):
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    trust = [c for c in codes if c in TRUST_CODES]
    credential = [c for c in codes if c not in TRUST_CODES and c.startswith(CREDENTIAL_PREFIXES)]
    integrity = [c for c in codes if c not in TRUST_CODES and not c.startswith(CREDENTIAL_PREFIXES)]
    if state == "Invalid" and not (credential or integrity) and not trust:
        integrity = ["validation.failed"]  # invalid with no code: treat as the worse case

    sig = active.get("signature_info") or {}
    actions = _actions(active)
    declared = _source_types(active, actions)
    ingredient_declared = []
    for label, manifest in manifests.items():
        if label != active_label:
            ingredient_declared += _source_types(manifest, _actions(manifest))

    ai_terms = [t.term for t in declared if t.ai]
    summary: dict[str, Any] = {
        "present": True,
        "readable": True,
        "validation_state": state,
        "trusted": state == "Trusted",
        "integrity_ok": not integrity,
        "failure_codes": codes[:MAX_LIST],
        "integrity_failures": integrity[:MAX_LIST],
        "credential_failures": credential[:MAX_LIST],
        "trust_failures": trust[:MAX_LIST],
        "signer": {
            k: str(sig[k]) for k in ("common_name", "issuer", "alg", "time", "cert_serial_number") if sig.get(k)
        },
        "claim_generator": claim_generator(active),
        "title": str(active.get("title") or "")[:200] or None,
        "manifest_count": len(manifests),
        "actions": actions[:MAX_LIST],
        "digital_source_types": sorted({t.uri for t in declared}),
        "ai_declared": bool(ai_terms),
        "ai_terms": sorted(set(ai_terms)),
        "ingredient_ai_declared": any(t.ai for t in ingredient_declared),
        "capture_declared": any(t.capture for t in declared),
        "generator": find_generator(claim_generator(active) or "")
        or next((g for a in actions if (g := find_generator(a.get("softwareAgent") or ""))), None),
    }
    return summary


def signer_name(summary: dict[str, Any]) -> str:
    signer = summary.get("signer") or {}
    cn, org = signer.get("common_name"), signer.get("issuer")
    if cn and org and cn != org:
        return f"{cn} ({org})"
    return cn or org or "an unnamed signer"


def claim_generator(manifest: dict[str, Any]) -> str | None:
    """v1 ``claim_generator`` string or v2 ``claim_generator_info`` names and versions."""
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info:
        parts = []
        for entry in info[:5]:
            if isinstance(entry, dict) and entry.get("name"):
                parts.append(f"{entry['name']} {entry.get('version', '')}".strip())
        if parts:
            return "; ".join(parts)[:200]
    text = manifest.get("claim_generator")
    return str(text)[:200] if text else None


def _actions(manifest: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = f"{agent.get('name', '')} {agent.get('version', '')}".strip()
            entry = {"action": str(action.get("action", ""))[:100]}
            if agent:
                entry["softwareAgent"] = str(agent)[:200]
            if isinstance(action.get("digitalSourceType"), str):
                entry["digitalSourceType"] = action["digitalSourceType"][:200]
            out.append(entry)
    return out


def _source_types(manifest: dict[str, Any], actions: list[dict[str, str]]) -> list[SourceType]:
    """Source types declared in actions and anywhere in assertion data (e.g. IPTC assertions)."""
    found = [t for a in actions if (t := source_type(a.get("digitalSourceType")))]
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict):
            _walk(assertion.get("data"), found, 0)
    unique: dict[str, SourceType] = {}
    for t in found:
        unique.setdefault(t.term, t)
    return list(unique.values())


def _walk(node: Any, found: list[SourceType], depth: int) -> None:
    if depth > 8:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key.lower().endswith("digitalsourcetype"):
                if (t := source_type(value)) is not None:
                    found.append(t)
            else:
                _walk(value, found, depth + 1)
    elif isinstance(node, list):
        for value in node[:200]:
            _walk(value, found, depth + 1)
