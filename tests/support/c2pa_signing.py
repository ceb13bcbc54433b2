"""Sign test images with C2PA manifests, using a throwaway PKI made at test time.

c2pa-rs checks the signing certificate's profile when it signs. Found by trying
(c2pa-python 0.38.1 / c2pa-rs 0.91.3):

* the end-entity certificate must be issued by a CA (self-signed is refused), carry an
  AuthorityKeyIdentifier, keyUsage ``digitalSignature`` and an extendedKeyUsage from the
  C2PA list: ``emailProtection`` works; serverAuth, codeSigning, anyExtendedKeyUsage or no
  EKU are refused ("the certificate is invalid"); documentSigning signs but then fails
  validation ("certificate missing required EKU") under the default trust settings;
* basicConstraints on the end entity and the CA in the chain are optional;
* ECDSA P-256/ES256 and P-384/ES384 both work.

Without a trust anchor the result reads ``validation_state == "Valid"`` with the code
``signingCredential.untrusted``; with the CA configured as a trust anchor it reads
``"Trusted"``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class SigningPKI:
    ca_pem: str  # the root: give it to the detector as a trust anchor to get "Trusted"
    chain_pem: str  # end-entity certificate followed by the CA
    key_pem: str  # the end entity's PKCS#8 private key
    common_name: str
    organization: str


def _key_usage(**on: bool) -> x509.KeyUsage:
    flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                 encipher_only=False, decipher_only=False)
    flags.update(on)
    return x509.KeyUsage(**flags)


@functools.lru_cache(maxsize=4)
def make_pki(common_name: str = "Deeptrawl Test Signer", organization: str = "Deeptrawl Test CA") -> SigningPKI:
    """A root CA and an ES256 end-entity certificate that c2pa-rs accepts for signing."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} Root"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]))
        .issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningPKI(pem(ca), pem(cert) + pem(ca), key_pem, common_name, organization)


def sign_image(
    data: bytes,
    mime: str,
    *,
    digital_source_type: str,
    pki: SigningPKI | None = None,
    action: str = "c2pa.created",
    software_agent: str = "deeptrawl test fixture",
    claim_generator: str = "deeptrawl-tests",
    title: str = "test image",
) -> bytes:
    """``data`` with an embedded C2PA manifest whose action declares ``digital_source_type``
    (an IPTC term or full URI). No thumbnail is embedded, to keep files small."""
    pki = pki or make_pki()
    uri = digital_source_type if "://" in digital_source_type else IPTC + digital_source_type
    manifest = {
        "claim_generator_info": [{"name": claim_generator, "version": "1.0"}],
        "title": title,
        "assertions": [{
            "label": "c2pa.actions",
            "data": {"actions": [{
                "action": action,
                "digitalSourceType": uri,
                "softwareAgent": {"name": software_agent},
            }]},
        }],
    }
    return _sign(manifest, data, mime, pki, ())


@dataclass(frozen=True)
class Ingredient:
    """A file that went into a signed file: its bytes (signed or not), how it was used
    (``parentOf``: the file this one was made from; ``componentOf``: placed into it)."""

    data: bytes
    mime: str
    title: str
    relationship: str = "componentOf"


def sign_with_ingredients(
    data: bytes,
    mime: str,
    *,
    ingredients: list[Ingredient],
    actions: list[dict],
    pki: SigningPKI | None = None,
    claim_generator: str = "deeptrawl-tests editor",
    title: str = "edited image",
) -> bytes:
    """``data`` signed with a manifest that lists ``ingredients`` and ``actions``.

    Actions name the ingredients they used by title: ``{"action": "c2pa.placed",
    "ingredients": ["logo.png"]}`` becomes the ``ingredientIds`` parameter the SDK turns
    into hashed links to the ingredient assertions. Signed ingredients bring their own
    manifests (and the validation results the SDK records for them) into the store."""
    labels = {ing.title: f"ingredient{i}" for i, ing in enumerate(ingredients)}
    written = []
    for action in actions:
        entry = {k: v for k, v in action.items() if k != "ingredients"}
        if action.get("ingredients"):
            entry["parameters"] = {"ingredientIds": [labels[t] for t in action["ingredients"]]}
        if isinstance(entry.get("softwareAgent"), str):
            entry["softwareAgent"] = {"name": entry["softwareAgent"]}
        if "digitalSourceType" in entry and "://" not in entry["digitalSourceType"]:
            entry["digitalSourceType"] = IPTC + entry["digitalSourceType"]
        written.append(entry)
    manifest = {
        "claim_generator_info": [{"name": claim_generator, "version": "1.0"}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": written}}],
    }
    parts = [({"title": ing.title, "relationship": ing.relationship, "label": labels[ing.title]}, ing)
             for ing in ingredients]
    return _sign(manifest, data, mime, pki or make_pki(), parts)


def _sign(manifest: dict, data: bytes, mime: str, pki: SigningPKI, ingredients) -> bytes:
    import c2pa

    context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, pki.chain_pem.encode(), pki.key_pem.encode(), None)
    )
    out = io.BytesIO()
    with c2pa.Builder(manifest, context) as builder:
        for definition, ingredient in ingredients:
            builder.add_ingredient(definition, ingredient.mime, io.BytesIO(ingredient.data))
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def tamper_jpeg_scan(data: bytes, *, count: int = 24) -> bytes:
    """Change a few bytes of the entropy-coded image data (after the last SOS marker),
    leaving every marker and the C2PA segment intact: the picture changes, the manifest's
    data hash no longer matches, and the file still decodes."""
    sos = data.rfind(b"\xff\xda")
    if sos < 0:
        raise ValueError("no SOS marker")
    (header_len,) = struct.unpack(">H", data[sos + 2:sos + 4])
    start, end = sos + 2 + header_len, data.rfind(b"\xff\xd9")
    out = bytearray(data)
    step = max(1, (end - start) // (count + 1))
    for pos in range(start + step, end - 2, step)[:count]:
        # Never create or break a 0xFF marker/stuffing sequence.
        if 0xFF in (out[pos - 1], out[pos], out[pos + 1]):
            continue
        new = out[pos] ^ 0x10
        if new != 0xFF:
            out[pos] = new
    return bytes(out)
