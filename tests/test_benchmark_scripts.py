"""The benchmark scripts still run end to end (tiny sizes; their timings are not checked)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facestyle_utils import painting

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gatys_speed_prints_the_ratio():
    out = run_script("benchmarks/gatys_speed.py", "--size", "48", "--steps", "3", "--no-autocast", "--no-cut")
    assert "ratio fast / plain = " in out and "target total loss" in out
    split = re.findall(r"where a full-size step's ([\d.]+) ms go \((plain fp32 NCHW|fast path)\): the loss's "
                       r"forward and backward ([\d.]+) ms \(timed apart\), the rest \(L-BFGS and bookkeeping\) "
                       r"(-?[\d.]+) ms", out)
    assert [name for _, name, _, _ in split] == ["plain fp32 NCHW", "fast path"]
    assert all(float(step) > 0 and float(loss) > 0 and float(rest) == pytest.approx(float(step) - float(loss), abs=0.11)
               for step, _, loss, rest in split)


def test_inference_speed_prints_a_row_per_path_and_the_speed_up(tmp_path):
    out = run_script("benchmarks/inference_speed.py", "--sizes", "32", "--paths", "plain", "channels_last",
                     "--batches", "1", "--repeats", "1", "--json", str(tmp_path / "rows.json"))
    assert "DCNN plain" in out and "DCNN channels_last" in out and "student channels_last" in out
    assert "speed-up vs plain" in out and "At 32x32: fastest" in out
    report = json.loads((tmp_path / "rows.json").read_text())
    assert report["device"].startswith("cpu (")
    ours = [row for row in report["rows"] if not row["path"].startswith("Magenta peer")]
    assert [row["path"] for row in ours] == ["DCNN plain", "DCNN channels_last", "student channels_last",
                                             "painted student channels_last"]
    assert all(row["agrees with plain"] == "yes" and row["ran on"].startswith("cpu") for row in ours)
    peers = [row for row in report["rows"] if row["path"].startswith("Magenta peer")]
    if painting.available():  # the peer: Magenta's multi-style network, same sizes, outside the verdict
        assert [row["path"] for row in peers] == ["Magenta peer (1 thread)", "Magenta peer (all cores)"]
        assert all(row["size"] == "32x32" and row["latency (ms)"] > 0 for row in peers)
        assert "Peer at 32x32: Magenta multi-style network (painting_blue_wash)" in out and "peer" not in report
        assert re.search(r"the painted student [\d.]+ ms, (not )?faster than Magenta at its best\.", out)
    else:
        assert not peers and "Magenta peer rows skipped: " in out and "pip install" in report["peer"]
