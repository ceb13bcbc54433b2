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

The provenance chain: each manifest lists its ``ingredients`` (``parentOf``: the file
this one was made from; ``componentOf``: a file placed into it; ``inputTo``), each
with the label of the ingredient's own manifest (``active_manifest``) when it had one,
and the validation results the SDK recorded when the ingredient was added.
``chain_of`` walks that graph from the active manifest (depth and size capped, cycles
cut) into a tree for reviewers, and collects what the scorer needs: AI-declared
ingredients, ingredients that failed validation, components placed into the picture,
and content-changing actions (``c2pa.edited``, ``c2pa.cropped``, ``c2pa.placed``, ...)
recorded above a declared capture.
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

    tree, chain = chain_of(store)
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
        "ingredient_ai_declared": any(t.ai for t in ingredient_declared) or bool(chain["ai_ingredients"]),
        "capture_declared": any(t.capture for t in declared),
        "generator": find_generator(claim_generator(active) or "")
        or next((g for a in actions if (g := find_generator(a.get("softwareAgent") or ""))), None),
    }
    if tree.get("ingredients"):
        summary["chain"] = tree
    summary.update({k: v for k, v in chain.items() if v})
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


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    titles = {str(i.get("label")): str(i.get("title") or "untitled")[:120]
              for i in manifest.get("ingredients") or [] if isinstance(i, dict) and i.get("label")}
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = f"{agent.get('name', '')} {agent.get('version', '')}".strip()
            entry: dict[str, Any] = {"action": str(action.get("action", ""))[:100]}
            if agent:
                entry["softwareAgent"] = str(agent)[:200]
            if isinstance(action.get("digitalSourceType"), str):
                entry["digitalSourceType"] = action["digitalSourceType"][:200]
            used = [titles[label] for label in _ingredient_refs(action) if label in titles]
            if used:
                entry["ingredients"] = used[:MAX_LIST]
            out.append(entry)
    return out


def _ingredient_refs(action: dict[str, Any]) -> list[str]:
    """Labels of the ingredients an action names (v2 ``ingredients`` list, v1 ``ingredient``)."""
    params = action.get("parameters")
    if not isinstance(params, dict):
        return []
    refs = params.get("ingredients")
    refs = refs if isinstance(refs, list) else [params.get("ingredient")]
    return [str(r["url"]).rsplit("/", 1)[-1] for r in refs if isinstance(r, dict) and r.get("url")]


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


# --- the ingredient/action chain ------------------------------------------------------------

#: Actions that change what the picture shows (the C2PA standard action vocabulary).
CONTENT_ACTIONS = frozenset({
    "c2pa.edited", "c2pa.color_adjustments", "c2pa.cropped", "c2pa.drawing", "c2pa.filtered",
    "c2pa.placed", "c2pa.removed", "c2pa.redacted", "c2pa.unknown",
})
MAX_CHAIN_DEPTH = 6
MAX_CHAIN_NODES = 40
MAX_INGREDIENTS = 20


def chain_of(store: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(tree, findings) for the ingredient graph under the active manifest.

    ``tree``: the active manifest as a node (title, claim generator, signer, actions,
    declared source types) whose ``ingredients`` carry their relationship, validation
    failures and, when they had provenance, their own manifest node. ``findings``:
    ``ai_ingredients``, ``invalid_ingredients``, ``placed_components`` and
    ``edits_after_capture`` (lists of small dicts, empty when nothing was found).
    """
    manifests = store.get("manifests") or {}
    active = store.get("active_manifest")
    found: dict[str, list[dict[str, Any]]] = {
        "ai_ingredients": [], "invalid_ingredients": [], "placed_components": [], "edits_after_capture": [],
    }
    if active not in manifests:
        return {}, found
    deltas = _ingredient_deltas(store, active)
    walker = _Walker(manifests, found)
    tree, _ = walker.node(active, 0, {active}, deltas)
    return tree, found


def _ingredient_deltas(store: dict[str, Any], active: str) -> dict[str, list[str]]:
    """Failure codes the validator recorded for the active manifest's ingredients, by
    ingredient assertion label (``validation_results.ingredientDeltas``)."""
    out: dict[str, list[str]] = {}
    results = store.get("validation_results") or {}
    for delta in results.get("ingredientDeltas") or []:
        if not isinstance(delta, dict):
            continue
        uri = str(delta.get("ingredientAssertionURI") or "")
        if f"/{active}/" not in uri:
            continue
        codes = [e.get("code") for e in (delta.get("validationDeltas") or {}).get("failure") or []
                 if isinstance(e, dict) and isinstance(e.get("code"), str)]
        if codes:
            out[uri.rsplit("/", 1)[-1]] = codes
    return out


def _failure_codes(ingredient: dict[str, Any]) -> list[str]:
    """Non-trust failure codes recorded with an ingredient when it was added."""
    entries = list(ingredient.get("validation_status") or [])
    results = (ingredient.get("validation_results") or {}).get("activeManifest") or {}
    entries += list(results.get("failure") or [])
    codes: list[str] = []
    for entry in entries:
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str) and code not in TRUST_CODES and code not in codes:
            codes.append(code)
    return codes


class _Walker:
    def __init__(self, manifests: dict[str, Any], found: dict[str, list[dict[str, Any]]]) -> None:
        self.manifests = manifests
        self.found = found
        self.nodes = 0

    def node(self, label: str, depth: int, path: set[str], deltas: dict[str, list[str]] | None = None
             ) -> tuple[dict[str, Any], bool]:
        """A manifest as a tree node, and whether a capture is declared in it or below."""
        self.nodes += 1
        manifest = self.manifests.get(label) or {}
        actions = _actions(manifest)
        declared = _source_types(manifest, actions)
        sig = manifest.get("signature_info") or {}
        node: dict[str, Any] = {"manifest": str(label)[:120], "title": str(manifest.get("title") or "")[:200] or None,
                                "claim_generator": claim_generator(manifest),
                                "signer": sig.get("common_name") or sig.get("issuer"),
                                "actions": actions[:MAX_LIST]}
        if declared:
            node["source_types"] = sorted(t.term for t in declared)
        captured = any(t.capture for t in declared)
        ingredients = []
        listed = manifest.get("ingredients")
        for ingredient in (listed if isinstance(listed, list) else [])[:MAX_INGREDIENTS]:
            if not isinstance(ingredient, dict):
                continue
            entry, below = self.ingredient(ingredient, depth, path, deltas or {})
            captured = captured or below
            ingredients.append(entry)
        if ingredients:
            node["ingredients"] = ingredients
        edits = [a["action"] for a in actions if a["action"] in CONTENT_ACTIONS]
        if captured and edits:
            self.found["edits_after_capture"].append({
                "title": node["title"], "depth": depth, "actions": sorted(set(edits)),
            })
        return {k: v for k, v in node.items() if v is not None}, captured

    def ingredient(self, ingredient: dict[str, Any], depth: int, path: set[str], deltas: dict[str, list[str]]
                   ) -> tuple[dict[str, Any], bool]:
        title = str(ingredient.get("title") or "untitled")[:200]
        relationship = str(ingredient.get("relationship") or "componentOf")
        entry: dict[str, Any] = {"title": title, "relationship": relationship,
                                 "format": str(ingredient.get("format") or "")[:60] or None}
        failures = _failure_codes(ingredient) + [
            c for c in deltas.get(str(ingredient.get("label")), []) if c not in TRUST_CODES
        ]
        failures = list(dict.fromkeys(failures))
        where = {"title": title, "relationship": relationship, "depth": depth + 1}
        if failures:
            entry["validation_failures"] = failures[:MAX_LIST]
            self.found["invalid_ingredients"].append({**where, "codes": failures[:MAX_LIST]})
        if relationship == "componentOf":
            self.found["placed_components"].append(dict(where))
        child = ingredient.get("active_manifest") or ingredient.get("manifest")
        captured = False
        if not isinstance(child, str) or child not in self.manifests:
            entry["provenance"] = "none"
        elif child in path:
            entry["provenance"] = "cycle"  # a manifest that names itself (malformed or hostile)
        elif depth + 1 > MAX_CHAIN_DEPTH or self.nodes >= MAX_CHAIN_NODES:
            entry["provenance"] = "not followed (chain too long)"
        else:
            entry["provenance"] = "c2pa"
            sub, captured = self.node(child, depth + 1, path | {child})
            entry["manifest"] = sub
            sub_manifest = self.manifests[child]
            sub_actions = _actions(sub_manifest)
            terms = sorted({t.term for t in _source_types(sub_manifest, sub_actions) if t.ai})
            generator = find_generator(claim_generator(sub_manifest) or "") or next(
                (g for a in sub_actions if (g := find_generator(a.get("softwareAgent") or ""))), None)
            if terms or generator:
                ai = {**where, "terms": terms}
                if generator:
                    ai["generator"] = generator
                self.found["ai_ingredients"].append(ai)
        return {k: v for k, v in entry.items() if v is not None}, captured
