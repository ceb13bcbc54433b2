"""Labelled sets a user can evaluate on, in three shapes:

* a corpus manifest from ``deeptrawl corpus build`` (``manifest.parquet``: path, label,
  kind, split and subgroup columns);
* any Parquet or CSV file with at least ``path`` and ``label`` (0/1 or real/fake), paths
  relative to the file's folder; other columns become subgroups (``kind`` is optional);
* a folder with ``real/`` and ``fake/`` subfolders, where ``fake/<kind>/...`` names the
  kind (e.g. FaceForensics++ frames sorted by method).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from deeptrawl.errors import ConfigError

_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1, "authentic": 0, "synthetic": 1, "false": 0, "true": 1}
#: Columns that are bookkeeping, not subgroups worth a table.
NOT_SUBGROUPS = {"path", "label", "kind", "split", "sha256", "mask_path", "width", "height", "source_id", "source_group"}


def read_labels(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """(root folder the paths are relative to, rows with a 0/1 ``label`` and a ``kind``)."""
    path = Path(path)
    if path.is_dir() and (path / "manifest.parquet").exists():
        path = path / "manifest.parquet"
    if path.is_dir():
        return path, _from_folder(path)
    if not path.exists():
        raise ConfigError(f"no labels at {path}")
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    elif path.suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ConfigError(f"{path}: labels must be a .parquet or .csv file, or a folder with real/ and fake/")
    return path.parent, [_normalise(r, path) for r in rows]


def _normalise(row: dict[str, Any], source: Path) -> dict[str, Any]:
    if "path" not in row or "label" not in row:
        raise ConfigError(f"{source}: every row needs 'path' and 'label' columns")
    label = _LABELS.get(str(row["label"]).strip().lower())
    if label is None:
        raise ConfigError(f"{source}: label {row['label']!r} is not 0/1 or real/fake")
    return {**row, "label": label, "kind": row.get("kind") or ("real" if label == 0 else "fake")}


def _from_folder(root: Path) -> list[dict[str, Any]]:
    rows = []
    for label, name in ((0, "real"), (1, "fake")):
        base = root / name
        for file in sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []:
            parts = file.relative_to(base).parts
            kind = parts[0] if label == 1 and len(parts) > 1 else name
            rows.append({"path": str(file.relative_to(root)), "label": label, "kind": kind})
    if not rows:
        raise ConfigError(f"{root}: no files under real/ or fake/")
    return rows


def subgroup_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Columns with a few repeated values: the ones a per-subgroup table makes sense for."""
    if not rows:
        return []
    names = [c for c in rows[0] if c not in NOT_SUBGROUPS]
    return [c for c in names if 1 < len({str(r.get(c)) for r in rows}) <= 12]
