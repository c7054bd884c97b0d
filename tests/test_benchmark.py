"""Timing helpers: warm-up and repeats are honoured; results are well-formed (no speed is asserted)."""
import torch

from facestyle_utils.benchmark import measure, peak_memory_mb, time_call


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
    assert set(row) == {"latency (ms)", "images/s @ batch 1", "images/s @ batch 4", "peak memory (MB)"}
    assert (1, 3, 8, 8) in seen and (4, 3, 8, 8) in seen
    assert row["images/s @ batch 1"] > 0 and row["peak memory (MB)"] == peak_memory_mb(torch.device("cpu"))
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
