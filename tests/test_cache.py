"""The cache's file digests: a warm scan stats files instead of reading them, and must still see
every change, including one that keeps the size and puts the mtime back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from closelint import cache
from closelint.cache import FileDigests


class Reads:
    """A file reader that counts what it was asked to read."""

    def __init__(self):
        self.paths: list[str] = []

    def __call__(self, path: str) -> bytes:
        self.paths.append(path)
        return Path(path).read_bytes()


@pytest.fixture
def kept_at_once(monkeypatch):
    # Files written by a test are "racily clean" for RACY_NS; these tests look past that window.
    monkeypatch.setattr(cache, "RACY_NS", 0)


def _digests(index: Path) -> tuple[FileDigests, Reads]:
    reads = Reads()
    return FileDigests(index, reads), reads


def test_unchanged_files_are_not_read_again(tmp_path, kept_at_once):
    f = tmp_path / "a.go"
    f.write_text("package a\n")
    first, reads = _digests(tmp_path / "index")
    digest = first(str(f))
    first.save()
    assert reads.paths == [str(f)]
    second, reads = _digests(tmp_path / "index")
    assert second(str(f)) == digest and reads.paths == []


def test_a_change_that_keeps_size_and_mtime_is_seen(tmp_path, kept_at_once):
    f = tmp_path / "a.go"
    f.write_text("package a\n")
    before = os.stat(f)
    first, _ = _digests(tmp_path / "index")
    digest = first(str(f))
    first.save()
    time.sleep(0.05)  # past the kernel's timestamp tick, so the ctime moves
    f.write_text("package b\n")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # as tar or rsync -t would leave it
    second, reads = _digests(tmp_path / "index")
    assert second(str(f)) != digest and reads.paths == [str(f)]


def test_a_just_written_file_is_not_kept(tmp_path):
    # A second write within the same timestamp tick would leave size, mtime and ctime unchanged;
    # so a file changed less than RACY_NS ago is hashed again next time rather than trusted.
    f = tmp_path / "a.go"
    f.write_text("package a\n")
    first, _ = _digests(tmp_path / "index")
    first(str(f))
    first.save()
    f.write_text("package b\n")
    second, reads = _digests(tmp_path / "index")
    assert second(str(f)) == cache.content_digest(b"package b\n") and reads.paths == [str(f)]
    assert second._kept == {}


def test_a_broken_or_missing_index_costs_a_read_only(tmp_path, kept_at_once):
    f = tmp_path / "a.go"
    f.write_text("package a\n")
    (tmp_path / "index").write_bytes(b"\x00garbage")
    digests, reads = _digests(tmp_path / "index")
    assert digests(str(f)) == cache.content_digest(b"package a\n") and reads.paths == [str(f)]
    assert digests(str(tmp_path / "missing.go")) is None
    digests, _ = _digests(tmp_path / "no" / "such" / "index")
    assert digests(str(f)) is not None


def test_only_files_of_this_scan_are_kept(tmp_path, kept_at_once):
    a, b = tmp_path / "a.go", tmp_path / "b.go"
    a.write_text("package a\n")
    b.write_text("package a\n")
    first, _ = _digests(tmp_path / "index")
    first(str(a)), first(str(b))
    first.save()
    b.unlink()
    second, _ = _digests(tmp_path / "index")
    second(str(a))
    second.save()
    third, _ = _digests(tmp_path / "index")
    assert third._kept.keys() == {str(a)}
