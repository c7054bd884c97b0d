"""The benchmark scripts still run end to end (tiny sizes; their timings are not checked)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gatys_speed_prints_the_ratio():
    out = run_script("benchmarks/gatys_speed.py", "--size", "48", "--steps", "3", "--no-autocast", "--no-cut")
    assert "ratio fast / plain = " in out and "target total loss" in out


def test_inference_speed_prints_a_row_per_path_and_the_speed_up():
    out = run_script("benchmarks/inference_speed.py", "--sizes", "32", "--paths", "plain", "channels_last",
                     "--batches", "1", "--repeats", "1")
    assert "DCNN plain" in out and "DCNN channels_last" in out and "student channels_last" in out
    assert "speed-up vs plain" in out
