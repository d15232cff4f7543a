"""Atomic writing (`wtc.atomic`): a complete file or none, and a `WriteError` naming the
path when it cannot be written."""

from __future__ import annotations

import os

import pytest

from wtc.atomic import atomic_path, atomic_write, atomic_write_text
from wtc.errors import UserInputError, WriteError

pytestmark = pytest.mark.unit


def test_a_write_lands_whole_with_the_permissions_of_a_new_file(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")  # replaces
    assert p.read_text() == "two" and os.listdir(tmp_path) == ["a.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_text(p, "old")

    def half(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(p, half)
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["a.bin"]
    with pytest.raises(KeyError), atomic_path(tmp_path / "b.onnx") as tmp:
        tmp.write_bytes(b"x")
        raise KeyError("checker failed")
    assert os.listdir(tmp_path) == ["a.bin"]


def test_a_missing_or_unusable_folder_is_an_output_error_naming_the_path(tmp_path):
    missing = tmp_path / "no" / "such" / "w.json"
    with pytest.raises(WriteError, match="does not exist") as e:
        atomic_write_text(missing, "x")
    assert e.value.path == missing and str(missing) in str(e.value)
    assert isinstance(e.value, UserInputError)  # the CLI's exit 2
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match="is not a folder"):
        atomic_write_text(tmp_path / "file" / "w.json", "x")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(WriteError, match="cannot write"):
                atomic_write_text(ro / "w.json", "x")
        finally:
            ro.chmod(0o700)
    assert not missing.parent.exists()
