"""Read and check a bundle's ``SHA256SUMS`` and ``metadata.json`` before anything uses them.

Every problem (unreadable text, invalid JSON, a missing key, a value of the wrong type, a
path that leaves the bundle) raises :class:`fusion.BundleError` naming the file and the
field, so a hand-edited or hostile bundle never surfaces as a ``KeyError`` or a
``JSONDecodeError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from fusion.errors import BundleError

__all__ = ["read_checksums", "read_metadata", "safe_member"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               bool: "true or false"}


def safe_member(folder: Path, name: object, *, file: Path, field: str) -> Path:
    """``folder / name`` for a relative path that stays inside ``folder``."""
    if not isinstance(name, str) or not name:
        raise BundleError(f"{file}: {field} must be a non-empty relative path, got {name!r}")
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or "\\" in name or ":" in name:
        raise BundleError(f"{file}: {field} {name!r} points outside the bundle")
    resolved = (folder / name).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise BundleError(f"{file}: {field} {name!r} points outside the bundle")
    return folder / name


def read_checksums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {relative path: hex digest}, every line and path checked."""
    file = folder / "SHA256SUMS"
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: cannot be read as text ({exc})") from exc
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, separator, name = line.partition("  ")
        if not separator or not _DIGEST.fullmatch(digest):
            raise BundleError(f"{file}: line {number} is not '<64 hex digits>  <path>'")
        safe_member(folder, name, file=file, field=f"line {number}")
        if name in listed:
            raise BundleError(f"{file}: line {number} lists {name} a second time")
        listed[name] = digest
    return listed


def _field(mapping: dict[str, Any], key: str, kind: type, *, file: Path, where: str,
           required: bool = True) -> Any:
    if key not in mapping:
        if required:
            raise BundleError(f"{file}: field {where}{key!r} is missing")
        return None
    value = mapping[key]
    wrong_bool = kind is int and isinstance(value, bool)
    if not isinstance(value, kind) or wrong_bool:
        raise BundleError(f"{file}: field {where}{key!r} must be {_JSON_TYPES[kind]}, "
                          f"got {type(value).__name__} {value!r:.60}")
    return value


def _digest_field(mapping: dict[str, Any], key: str, *, file: Path, where: str) -> str:
    value: str = _field(mapping, key, str, file=file, where=where)
    if not _DIGEST.fullmatch(value):
        raise BundleError(f"{file}: field {where}{key!r} must be 64 lowercase hex digits")
    return value


def read_metadata(folder: Path) -> dict[str, Any]:
    """``metadata.json``, parsed and checked field by field (see the module docstring)."""
    file = folder / "metadata.json"
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: cannot be read as text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{file}: invalid JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise BundleError(f"{file}: must hold a JSON object, got {type(metadata).__name__}")
    for key, kind in (("format", str), ("format_version", int), ("name", str),
                      ("mode", str), ("extractors", list), ("feature_names", list)):
        _field(metadata, key, kind, file=file, where="")
    working = metadata.get("working_pixels")
    if working is not None and (not isinstance(working, int) or isinstance(working, bool)
                                or working < 1):
        raise BundleError(f"{file}: field 'working_pixels' must be a positive integer or "
                          f"null, got {working!r}")
    gate = _field(metadata, "gate", dict, file=file, where="", required=False) \
        if metadata.get("gate") is not None else None
    if gate is not None:
        safe_member(folder, _field(gate, "file", str, file=file, where="gate."), file=file,
                    field="field gate.'file'")
        score = gate.get("anchor_score")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise BundleError(f"{file}: field gate.'anchor_score' must be a number, got "
                              f"{score!r}")
    diagnostics = _field(metadata, "diagnostics", dict, file=file, where="", required=False) \
        if metadata.get("diagnostics") is not None else None
    if diagnostics is not None:
        where = "diagnostics."
        safe_member(folder, _field(diagnostics, "file", str, file=file, where=where),
                    file=file, field="field diagnostics.'file'")
        for key in ("families", "feature_names", "extractors"):
            values = _field(diagnostics, key, list, file=file, where=where)
            if (not values and key != "extractors") \
                    or not all(isinstance(v, str) for v in values):
                raise BundleError(f"{file}: field {where}{key!r} must be a "
                                  f"{'' if key == 'extractors' else 'non-empty '}list of "
                                  "strings")
    if metadata["mode"] not in ("nr", "fr"):
        raise BundleError(f"{file}: field 'mode' must be 'nr' or 'fr', got "
                          f"{metadata['mode']!r}")
    if not all(isinstance(n, str) for n in metadata["feature_names"]):
        raise BundleError(f"{file}: field 'feature_names' must be a list of strings")
    for index, entry in enumerate(metadata["extractors"]):
        where = f"extractors[{index}]."
        if not isinstance(entry, dict):
            raise BundleError(f"{file}: field 'extractors[{index}]' must be an object")
        _field(entry, "key", str, file=file, where=where)
        kind = _field(entry, "kind", str, file=file, where=where)
        if kind not in ("backbone", "handcrafted"):
            raise BundleError(f"{file}: field {where}'kind' must be 'backbone' or "
                              f"'handcrafted', got {kind!r}")
        if kind != "backbone":
            continue
        _field(entry, "backbone", str, file=file, where=where)
        safe_member(folder, _field(entry, "litert", str, file=file, where=where), file=file,
                    field=f"field {where}'litert'")
        _digest_field(entry, "sha256", file=file, where=where)
        if _field(entry, "max_patches", int, file=file, where=where) < 1:
            raise BundleError(f"{file}: field {where}'max_patches' must be at least 1")
        _field(entry, "tuned", dict, file=file, where=where, required=False)
        parts = _field(entry, "litert_parts", dict, file=file, where=where, required=False)
        if parts is not None:
            for part in ("trunk", "head"):
                safe_member(folder, _field(parts, part, str, file=file,
                                           where=f"{where}litert_parts."),
                            file=file, field=f"field {where}litert_parts.{part!r}")
                _digest_field(parts, f"{part}_sha256", file=file,
                              where=f"{where}litert_parts.")
    return metadata
