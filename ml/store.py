"""Model artifacts by content hash, outside git, each with a JSON model card beside it.

`<models_dir>/<sha256>.joblib` holds the pickled model and `<sha256>.json` its card. A model's version is the
first `VERSION_LENGTH` hex digits of that hash: the same model always gets the same version, and a version names
one artifact forever. There is no "latest" file: the registry table in the warehouse says which version serves.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import joblib

VERSION_LENGTH = 12


def save(model: Any, card: dict[str, Any], models_dir: Path) -> tuple[str, Path]:
    """Write the model and its card; return the version and the card's path. Saving the same model twice writes
    the same files."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    models_dir.mkdir(parents=True, exist_ok=True)
    artifact = models_dir / f"{digest}.joblib"
    if not artifact.exists():
        _write_atomically(artifact, payload)
    version = digest[:VERSION_LENGTH]
    card_path = models_dir / f"{digest}.json"
    full_card = {"model_version": version, "sha256": digest, **card}
    _write_atomically(card_path, json.dumps(full_card, indent=2, sort_keys=True, default=str).encode())
    return version, card_path


def load(version: str, models_dir: Path) -> Any:
    """The model saved under `version` (a hash prefix)."""
    return joblib.load(_path(version, models_dir, ".joblib"))


def card_path(version: str, models_dir: Path) -> Path:
    return _path(version, models_dir, ".json")


def _path(version: str, models_dir: Path, suffix: str) -> Path:
    matches = sorted(models_dir.glob(f"{version}*{suffix}"))
    if len(matches) != 1:
        raise FileNotFoundError(f"{len(matches)} artifacts for model version {version!r} in {models_dir}")
    return matches[0]


def _write_atomically(path: Path, payload: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(payload)
    temporary.replace(path)
