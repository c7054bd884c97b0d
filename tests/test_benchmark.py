"""Timing helpers: warm-up and repeats are honoured; results are well-formed (no speed is asserted)."""
import pytest
import torch

from facestyle_utils.benchmark import (
    TimingPlan,
    add_speed_up,
    latency_of,
    measure,
    peak_memory_mb,
    ran_on,
    speed_verdict,
    time_call,
    time_paths,
    timed,
)


def test_time_call_warms_up_then_times_each_repeat():
    calls = []
    seconds = time_call(lambda batch: calls.append(batch.shape), torch.zeros(1, 3, 4, 4), warmup=2, repeats=3)
    assert len(calls) == 5 and seconds >= 0


def test_measure_reports_latency_throughput_and_memory():
    seen = []

    def run(batch):
        seen.append(tuple(batch.shape))
        return batch

    row = measure(run, 8, (1, 4), torch.device("cpu"), warmup=1, repeats=1)
    assert set(row) == {"latency (ms)", "images/s @ batch 1", "images/s @ batch 4"}  # no process-wide peak on a CPU
    assert (1, 3, 8, 8) in seen and (4, 3, 8, 8) in seen
    assert row["images/s @ batch 1"] > 0
    assert peak_memory_mb(torch.device("cpu")) > 10  # a Python process with torch loaded


def test_slow_paths_are_named_only_where_they_are_slow(monkeypatch):
    from facestyle_utils import benchmark, runtime

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert "emulated" in benchmark.slow_to_time("autocast", cpu)
    assert "recompiles" in benchmark.slow_to_time("compile", cpu)
    assert benchmark.slow_to_time("channels_last", cpu) is None
    assert benchmark.slow_to_time("autocast", cuda) is None and benchmark.slow_to_time("compile", cuda) is None
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert benchmark.slow_to_time("autocast", cpu) is None


def test_speed_verdict_is_computed_from_the_table():
    rows = [{"path": "plain", "size": "64x64", "latency (ms)": 10.0},
            {"path": "autocast", "size": "64x64", "latency (ms)": 40.0},
            {"path": "onnx", "size": "64x64", "latency (ms)": 5.0},
            {"path": "plain", "size": "128x128", "latency (ms)": 30.0},
            {"path": "autocast", "size": "128x128", "latency (ms)": 15.0}]
    rows.append({"path": "inference_mode", "size": "64x64", "latency (ms)": 9.8})
    lines = speed_verdict(rows).splitlines()
    assert lines[0] == ("At 64x64: fastest onnx (5.0 ms, 2.0x plain); faster than plain: onnx (2x); "
                        "slower: autocast (0.25x); within 5 %: inference_mode (1x).")
    assert lines[1] == ("At 128x128: fastest autocast (15.0 ms, 2.0x plain); faster than plain: autocast (2x); "
                        "slower: none; within 5 %: none.")
    assert speed_verdict(rows[1:3]) == "At 64x64: fastest onnx (5.0 ms)."  # no plain row: no ratios


def test_timed_returns_the_result_and_a_duration():
    result, seconds = timed(lambda a, b: a + b, 2, 3, device=torch.device("cpu"))
    assert result == 5 and 0 <= seconds < 1


def test_time_paths_times_each_path_and_slow_ones_once(monkeypatch):
    from facestyle_utils import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    seen = []

    def runner(name):
        return lambda batch: seen.append((name, tuple(batch.shape))) or batch

    plan = TimingPlan(sizes=(8, 16), batch_sizes=(1, 2), repeats=1, warmup=0)
    rows, once = time_paths({"plain": runner("plain"), "autocast": runner("autocast")}, plan,
                            torch.device("cpu"), label="student, {path}")
    assert [(r["path"], r["size"]) for r in rows] == [("student, plain", "8x8"), ("student, autocast", "8x8"),
                                                      ("student, plain", "16x16")]
    assert once == {"autocast": "bf16 is emulated on this CPU"}
    assert ("autocast", (2, 3, 8, 8)) not in seen and ("plain", (2, 3, 16, 16)) in seen
    assert "images/s @ batch 2" not in rows[1] and rows[1]["ran on"].endswith("bfloat16 (emulated)")


def test_add_speed_up_divides_the_reference_latency_by_each_rows():
    rows = [{"path": "plain", "size": "8x8", "latency (ms)": 10.0},
            {"path": "onnx", "size": "8x8", "latency (ms)": 4.0}]
    student = [{"path": "student", "size": "8x8", "latency (ms)": 2.0}]
    assert [r["speed-up"] for r in add_speed_up(rows)] == [1.0, 2.5]
    assert add_speed_up(student, rows)[0]["speed-up"] == 5.0
    assert latency_of(rows, "onnx", "8x8") == 4.0
    with pytest.raises(KeyError, match="no timing row with path 'plain' at 16x16"):
        add_speed_up([{"path": "onnx", "size": "16x16", "latency (ms)": 1.0}], rows)


def test_ran_on_names_the_device_precision_and_onnx_provider(monkeypatch):
    from facestyle_utils import runtime

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert ran_on(lambda b: b, "plain", cpu).startswith("cpu (") and "threads" in ran_on(lambda b: b, "plain", cpu)
    assert ran_on(lambda b: b, "autocast", cpu).endswith(", bfloat16 (emulated)")
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert ran_on(lambda b: b, "autocast", cpu).endswith(", bfloat16")

    class Onnx:
        providers = ["CPUExecutionProvider"]

        def __call__(self, batch):
            return batch

    assert ran_on(Onnx(), "onnx", torch.device("cuda")) == "onnxruntime CPU"


def test_measure_magenta_times_the_peer_like_a_row():
    from facestyle_utils import painting
    from facestyle_utils.benchmark import measure_magenta

    if not painting.available():
        pytest.skip(painting.missing_reason())
    row = measure_magenta(32, painting.STYLES["painting_bold_strokes"].index, threads=1, warmup=1, repeats=1)
    assert row["ran on"] == "onnxruntime CPU, 1 thread" and row["latency (ms)"] > 0 and row["images/s @ batch 1"] > 0
