"""Committed, trained weights and their checksums.

Every file we train is committed under ``deeptrawl/models/weights/`` next to
``SHA256SUMS`` (the ``sha256sum`` format, so ``sha256sum -c SHA256SUMS`` works there too)
and ``MODEL_CARD.md`` (data recipe, training command, metrics, limitations, licences).
The loader refuses a file whose digest is not the recorded one: a model silently
replaced by another would change every verdict without changing its version.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
SUMS = "SHA256SUMS"


class WeightsError(RuntimeError):
    pass


def recorded(directory: Path = WEIGHTS_DIR) -> dict[str, str]:
    path = directory / SUMS
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def read_checked(name: str, directory: Path = WEIGHTS_DIR) -> bytes:
    expected = recorded(directory).get(name)
    path = directory / name
    if expected is None or not path.exists():
        raise WeightsError(f"no trained weights {name!r} in {directory} (train them: deeptrawl train --help)")
    data = path.read_bytes()
    if (digest := hashlib.sha256(data).hexdigest()) != expected:
        raise WeightsError(f"{path}: sha256 {digest[:12]}... does not match {SUMS} ({expected[:12]}...)")
    return data


def load_state(name: str, directory: Path = WEIGHTS_DIR) -> dict:
    import torch  # here, not at the top: listing detectors and versions needs no torch

    return torch.load(io.BytesIO(read_checked(name, directory)), map_location="cpu", weights_only=True)


def digest(name: str, directory: Path = WEIGHTS_DIR) -> str:
    return recorded(directory)[name]


def save(name: str, data: bytes, directory: Path = WEIGHTS_DIR) -> str:
    """Write a weights file and record its digest; returns the digest."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    sums = recorded(directory)
    sums[name] = hashlib.sha256(data).hexdigest()
    (directory / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return sums[name]


def save_state(name: str, state: dict, directory: Path = WEIGHTS_DIR) -> str:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return save(name, buf.getvalue(), directory)
