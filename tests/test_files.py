"""files.py: atomic writes leave no half files; OutputNames never hands out one path twice."""
from pathlib import Path

import pytest

from facestyle_utils.files import OutputNames, atomic_write


def test_output_names_are_distinct_within_a_run(tmp_path):
    names = OutputNames()
    assert names.claim(tmp_path / "photo_stylized.png") == tmp_path / "photo_stylized.png"
    assert names.claim(tmp_path / "photo_stylized.png") == tmp_path / "photo_stylized-2.png"
    assert names.claim(tmp_path / "photo_stylized.png") == tmp_path / "photo_stylized-3.png"
    assert names.claim(tmp_path / "faces") == tmp_path / "faces"
    assert names.claim(tmp_path / "sub" / ".." / "faces") == tmp_path / "sub" / ".." / "faces-2"


def test_output_names_ignore_case_and_never_give_out_an_input(tmp_path):
    names = OutputNames(reserved=[tmp_path / "x_stylized.png"])
    assert names.claim(tmp_path / "x_stylized.png") == tmp_path / "x_stylized-2.png"
    # macOS and Windows treat these as one file
    assert names.claim(tmp_path / "X_STYLIZED-2.png") == tmp_path / "X_STYLIZED-2-2.png"


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as handle:
        handle.write(b"whole")
    assert Path(target).read_bytes() == b"whole"
