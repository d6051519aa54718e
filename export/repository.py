"""Writing model-repository entries atomically (the reader is ``core.modelrepo``).

An entry is assembled in a hidden staging folder next to its final place and renamed
into ``<repo>/<name>/<version>/`` only once everything is written and checked, so a
failed export never leaves a half-written version that the server could pick up
(the reader ignores folders whose names are not positive integers).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.modelrepo import (
    METADATA_FILE,
    VERSION_PATTERN,
    InvalidModelName,
    check_name,
    check_version,
)

from .config import ExportError

STAGING_PREFIX = ".staging-"


def existing_versions(repo: Path, name: str) -> list[int]:
    """Every numbered folder under ``repo/name`` (with or without metadata), ascending."""
    model_dir = repo / name
    if not model_dir.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in model_dir.iterdir()
        if child.is_dir() and VERSION_PATTERN.fullmatch(child.name) and int(child.name) > 0
    )


def next_version(repo: Path, name: str) -> int:
    """The next free version number of ``name`` (1 for a new model)."""
    versions = existing_versions(repo, name)
    return versions[-1] + 1 if versions else 1


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be written there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ExportError(
            f"cannot write to the model repository folder {directory}: {exc.strerror or exc}"
        ) from None


def resolve_target(repo: Path, name: str, version: int | None, force: bool) -> tuple[Path, int]:
    """Validate name/version, check the repository is writable; return (version dir, version)."""
    try:
        check_name(name)
        version = next_version(repo, name) if version is None else check_version(version)
    except InvalidModelName as exc:
        raise ExportError(str(exc)) from None
    check_writable(repo / name)
    target = repo / name / str(version)
    if target.exists() and not force:
        raise ExportError(
            f"{target} already exists: pass --force to replace it, or choose another --version"
        )
    return target, version


@contextmanager
def staged_entry(target: Path, force: bool) -> Iterator[Path]:
    """Yield a private staging folder; on success publish it as ``target`` atomically.

    On any exception the staging folder is removed and ``target`` is left as it was.
    With ``force`` an existing ``target`` is replaced (moved aside, then deleted).
    """
    staging = target.parent / f"{STAGING_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        yield staging
        publish(staging, target, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish(staging: Path, target: Path, force: bool) -> None:
    """Rename ``staging`` to ``target``, replacing an existing entry only with ``force``."""
    if not target.exists():
        os.rename(staging, target)
        return
    if not force:
        raise ExportError(f"{target} appeared while exporting; not overwriting it without --force")
    retired = target.parent / f"{STAGING_PREFIX}{target.name}-old-{uuid.uuid4().hex[:8]}"
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON via a temporary file and ``os.replace``."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def update_metadata(version_dir: Path, updates: dict) -> dict:
    """Merge ``updates`` into an entry's metadata (``files`` is merged key by key)."""
    path = version_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from None
    for key, value in updates.items():
        if key == "files" and isinstance(value, dict):
            metadata.setdefault("files", {}).update(value)
        else:
            metadata[key] = value
    write_json_atomic(path, metadata)
    return metadata
