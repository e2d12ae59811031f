"""The backup file: one tar, a manifest and the parts it names (docs/database.md, "Backup
and restore").

`manifest.json` comes first; every other member is a part the manifest lists with its size
and SHA-256, and a member the manifest does not list, a part missing, or a part whose bytes
differ is refused by name before anything is restored. The file is written under a temporary
name, mode 0600 from the moment it exists (it holds the whole books, and the signing key if
asked for), synced, and renamed into place; an existing file is never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

BACKUP_FORMAT: Final = "yufu-backup"
format_version: Final = 1
MANIFEST_PART: Final = "manifest.json"
DUMP_PART: Final = "database.pgdump"  # pg_dump's custom format
PUBLIC_KEY_PART: Final = "audit-public-key.pem"  # the tree-head key's public half
SIGNING_KEY_PART: Final = "audit-signing-key.pem"  # only with --with-signing-key
PSEUDONYM_KEY_PART: Final = "pseudonym.key"  # only with --with-pseudonym-key
SECRET_PARTS: Final = (SIGNING_KEY_PART, PSEUDONYM_KEY_PART)
KNOWN_PARTS: Final = frozenset({DUMP_PART, PUBLIC_KEY_PART, *SECRET_PARTS})
manifest_bytes_max = 1 << 20
copy_chunk_bytes = 1 << 20
backup_file_mode = 0o600


class BackupRefused(RuntimeError):
    """The backup file is not one we wrote, or not as we wrote it; or the target is wrong."""


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(copy_chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def write_archive(target: Path, manifest: Mapping[str, Any], parts: Mapping[str, Path]) -> None:
    """The manifest (with each part's digest added) and the parts, into `target`."""
    if target.exists():
        raise BackupRefused(f"{target} exists: a backup never overwrites a file; "
                            "name a new one")
    digests = {name: file_digest(path) for name, path in parts.items()}
    listed = {name: {"sha256": sha256, "bytes": size}
              for name, (sha256, size) in digests.items()}
    body = json.dumps({**manifest, "parts": listed}, indent=2, sort_keys=True).encode()
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 backup_file_mode)
    try:
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, MANIFEST_PART, io.BytesIO(body), len(body))
                for name, path in parts.items():
                    with path.open("rb") as stream:
                        _add(tar, name, stream, digests[name][1])
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _add(tar: tarfile.TarFile, name: str, stream: BinaryIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, backup_file_mode
    tar.addfile(info, stream)


def read_archive(source: Path, workdir: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The manifest and each part, extracted into `workdir` and checked against the
    manifest's digests. Raises BackupRefused naming what is wrong."""
    try:
        with tarfile.open(source, mode="r:") as tar:
            members = tar.getmembers()
            manifest = _manifest(source, tar, members)
            parts = _extract_parts(source, tar, members, manifest, workdir)
    except (OSError, tarfile.TarError) as unreadable:
        raise BackupRefused(f"{source} is not a Yufu backup or is damaged ({unreadable})"
                            ) from unreadable
    return manifest, parts


def _manifest(source: Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo]
              ) -> dict[str, Any]:
    if not members or members[0].name != MANIFEST_PART or not members[0].isfile():
        raise BackupRefused(f"{source} is not a Yufu backup: it does not begin with "
                            f"{MANIFEST_PART}")
    if members[0].size > manifest_bytes_max:
        raise BackupRefused(f"{source}: its {MANIFEST_PART} is larger than "
                            f"{manifest_bytes_max} bytes")
    stream = tar.extractfile(members[0])
    assert stream is not None  # a regular file, checked above
    try:
        manifest = json.loads(stream.read())
    except ValueError as bad:
        raise BackupRefused(f"{source}: its {MANIFEST_PART} is not JSON ({bad})") from bad
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupRefused(f"{source} is not a Yufu backup: its manifest's format is not "
                            f"{BACKUP_FORMAT!r}")
    if manifest.get("format_version") != format_version:
        raise BackupRefused(f"{source} is a backup of format version "
                            f"{manifest.get('format_version')!r}; this Yufu reads version "
                            f"{format_version}")
    if not isinstance(manifest.get("parts"), dict):
        raise BackupRefused(f"{source}: its manifest lists no parts")
    return manifest


def _extract_parts(source: Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo],
                   manifest: dict[str, Any], workdir: Path) -> dict[str, Path]:
    listed: dict[str, Any] = manifest["parts"]
    found = {member.name: member for member in members[1:]}
    unknown = sorted(set(found) - set(listed)) + sorted(set(listed) - KNOWN_PARTS)
    if unknown or len(found) != len(members) - 1:
        raise BackupRefused(f"{source} holds parts the manifest does not list or this Yufu "
                            f"does not know: {', '.join(unknown) or 'a name twice'}")
    missing = sorted(set(listed) - set(found))
    if missing or DUMP_PART not in listed:
        raise BackupRefused(f"{source} lacks parts: {', '.join(missing) or DUMP_PART}")
    parts = {}
    for name, member in found.items():
        parts[name] = _extract_checked(source, tar, member, listed[name], workdir / name)
    return parts


def _extract_checked(source: Path, tar: tarfile.TarFile, member: tarfile.TarInfo,
                     listed: Any, out: Path) -> Path:
    stream = tar.extractfile(member) if member.isfile() else None
    if stream is None or not isinstance(listed, dict):
        raise BackupRefused(f"{source}: {member.name} is not a regular file as listed")
    digest, size = hashlib.sha256(), 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, backup_file_mode)
    with os.fdopen(fd, "wb") as written:
        while chunk := stream.read(copy_chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
            written.write(chunk)
    if digest.hexdigest() != listed.get("sha256") or size != listed.get("bytes"):
        raise BackupRefused(
            f"{source} was altered or damaged: {member.name} has SHA-256 {digest.hexdigest()} "
            f"({size} bytes) but the manifest says {listed.get('sha256')} "
            f"({listed.get('bytes')} bytes); nothing was restored")
    return out
