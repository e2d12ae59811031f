"""The backup file's format (api/backup_archive.py), without a database: what was written is
read back exactly, and a part is never accepted altered, wherever a byte changes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.backup_archive import (
    DUMP_PART,
    KNOWN_PARTS,
    BackupRefused,
    read_archive,
    write_archive,
)

MANIFEST = {"format": "yufu-backup", "format_version": 1, "journal": {"size": 3}}
contents = st.binary(min_size=0, max_size=3000)
part_sets = st.dictionaries(st.sampled_from(sorted(KNOWN_PARTS - {DUMP_PART})), contents,
                            max_size=3).flatmap(
    lambda others: contents.map(lambda dump: {**others, DUMP_PART: dump}))


def _written(root: Path, parts: dict[str, bytes]) -> Path:
    sources = root / "in"
    sources.mkdir()
    paths = {}
    for name, data in parts.items():
        paths[name] = sources / name
        paths[name].write_bytes(data)
    target = root / "backup"
    write_archive(target, MANIFEST, paths)
    return target


def _read(root: Path, archive: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    out = root / f"out-{len(list(root.iterdir()))}"
    out.mkdir()
    manifest, paths = read_archive(archive, out)
    return manifest, {name: path.read_bytes() for name, path in paths.items()}


@settings(max_examples=40, deadline=None)
@given(parts=part_sets)
def test_what_is_written_is_read_back_exactly(parts: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory(prefix="yufu-archive-") as scratch:
        root = Path(scratch)
        manifest, read = _read(root, _written(root, parts))
    assert read == parts
    assert {k: manifest[k] for k in MANIFEST} == MANIFEST
    assert sorted(manifest["parts"]) == sorted(parts)  # type: ignore[call-overload]


@settings(max_examples=150, deadline=None)
@given(parts=part_sets, where=st.floats(min_value=0, max_value=1, exclude_max=True),
       flip=st.integers(min_value=1, max_value=255))
def test_a_changed_byte_never_passes_as_an_altered_part(parts: dict[str, bytes], where: float,
                                                        flip: int) -> None:
    """Anywhere in the file: refused by name, or (in the tar's padding, or a manifest value
    that is not a digest) read with every part exactly as written."""
    with tempfile.TemporaryDirectory(prefix="yufu-archive-") as scratch:
        root = Path(scratch)
        archive = _written(root, parts)
        data = bytearray(archive.read_bytes())
        data[int(where * len(data))] ^= flip
        archive.write_bytes(bytes(data))
        try:
            _, read = _read(root, archive)
        except BackupRefused as refused:
            assert str(archive) in str(refused)
            return
    assert read == parts


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    archive = _written(tmp_path, {DUMP_PART: b"dump"})
    before = archive.read_bytes()
    with pytest.raises(BackupRefused, match="exists: a backup never overwrites a file"):
        write_archive(archive, MANIFEST, {DUMP_PART: tmp_path / "in" / DUMP_PART})
    assert archive.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "in"]  # no .partial left
