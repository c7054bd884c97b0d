"""Command line: ``python -m facestyle_utils stylize ...`` and ``python -m facestyle_utils train ...``.

``stylize INPUT... --model MODEL.pt --out DIR``: inputs may be image files, folders of images or
videos. Exit status: 0 when everything was stylized, 1 when some inputs failed or nothing was
stylized (each is reported), 2 for a usage error or an unusable model.

``train --model dcnn|drn|student [--photos FOLDER|lfw | --data DOMAINS] ...``: lesson 03's, 04's or 05's
training run (:mod:`facestyle_utils.recipes`) with checkpoints and exact resume; writes a model
file for ``stylize``, the studio and ``load_model``. Under ``torchrun`` it trains data parallel
(:mod:`facestyle_utils.distributed`). Exit status: 0 when the model file was written, 1 for bad
data or a failed run, 2 for bad arguments.

Errors are one line each, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facestyle_utils",
                                     description="Stylize faces with a model trained in the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    stylize = commands.add_parser("stylize", help="stylize images, folders of images and videos",
                                  description="Stylize images, folders of images and videos. "
                                              "Inputs are never modified; results go to --out.")
    stylize.add_argument("inputs", nargs="+", type=Path, help="image files, folders or videos")
    stylize.add_argument("--model", required=True, type=Path, help="model file saved by lesson 03, 04 or 05")
    stylize.add_argument("--style", type=Path, default=None,
                         help="style image, for models that take one (lesson 04's DRN)")
    stylize.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    stylize.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    stylize.add_argument("--max-side", type=int, default=None,
                         help="longest side processed, in pixels; larger images are shrunk (default: per device)")
    stylize.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = full style (default 1)")
    stylize.add_argument("--preserve-colour", action="store_true", help="keep the input's colours")
    stylize.add_argument("--speed", default="channels_last", help="speed path (see facestyle_utils.inference)")
    stylize.add_argument("--recursive", action="store_true", help="also stylize images in subfolders of folders")
    stylize.add_argument("--overwrite", action="store_true", help="replace results of earlier runs")
    stylize.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                         help="show progress bars (default; --no-progress for none)")
    _add_train_parser(commands)
    return parser


def _add_train_parser(commands) -> None:
    from .recipes import DEFAULTS, DRN_STYLES

    per_model = lambda key: ", ".join(f"{m} {d[key]}" for m, d in DEFAULTS.items())  # noqa: E731
    train = commands.add_parser(
        "train", help="train the lesson 03 DCNN, the lesson 04 DRN or the lesson 05 student",
        description="Train a stylizer with the lessons' recipe, checkpoints and exact resume, then write its model "
                    "file. Run it under `torchrun --nproc_per_node=N -m facestyle_utils train ...` to train on N "
                    "processes (GPUs, or CPU processes with gloo).")
    train.add_argument("--model", choices=list(DEFAULTS), default="dcnn", help="which network (default dcnn)")
    train.add_argument("--style", action="append", default=None,
                       help=f"target style (default cartoon; the DRN: {', '.join(DRN_STYLES)}); repeat for the DRN")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--photos", type=lambda text: text if text == "lfw" else Path(text),  # "./lfw": a folder
                        help="a folder of face photos: the domains are built from it first; 'lfw' downloads "
                             "Labeled Faces in the Wild in colour once (optional, needs internet; md5-checked) "
                             "and builds from one photo of each of its 5,749 people (a folder named lfw: ./lfw)")
    source.add_argument("--data", type=Path, help="a domains folder built by lesson 01 (build_domains)")
    train.add_argument("--size", type=int, default=128, help="side of the square face images, px (default 128)")
    train.add_argument("--crop", type=int, help="side of the random training crops, px (default 64 for dcnn and drn; "
                                                "the whole face for the student)")
    train.add_argument("--batch", type=int, help=f"global batch, shared out over processes ({per_model('batch')})")
    train.add_argument("--steps", type=int, help=f"optimizer steps ({per_model('steps')})")
    train.add_argument("--learning-rate", type=float, help=f"peak learning rate ({per_model('learning_rate')})")
    train.add_argument("--teacher", type=Path,
                       help="the student's teacher model (default build/models/dcnn_<style>.pt)")
    train.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    train.add_argument("--out", type=Path, help="model file to write (default build/models/<model>_<style>.pt; "
                                                "build/quick/models/ with FACESTYLE_QUICK=1, build/workshop/models/ "
                                                "with FACESTYLE_WORKSHOP=1)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    train.add_argument("--checkpoints", type=Path,
                       help="checkpoint folder (default: one per settings under build/train)")
    train.add_argument("--no-resume", action="store_true", help="start again instead of resuming from checkpoints")
    train.add_argument("--stop-after", type=int, help="stop after this many steps (to try resuming)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="show progress bars and messages (default; --no-progress for none)")


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Each warning as one ``warning:`` line on stderr (not Python's two-line file:line format)."""
    for message in dict.fromkeys(str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()):
        print(f"warning: {message}", file=sys.stderr)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.strength <= 1:
        return f"--strength must be between 0 and 1, got {args.strength}"
    if args.max_side is not None and args.max_side < 1:
        return f"--max-side must be a positive number of pixels, got {args.max_side}"
    if args.style is not None and not args.style.is_file():
        return f"--style {args.style}: no such image file"
    return None


def _plan(inputs: list[Path], out: Path) -> list[tuple[Path, Path | None]]:
    """(input, output) for each distinct input, outputs distinct within the run and never an input.

    The output is None for a repeated input (it is done once)."""
    from .files import OutputNames
    from .inference import VIDEO_SUFFIXES

    names, seen, plan = OutputNames(reserved=[p for p in inputs if p.is_file()]), set(), []
    for source in inputs:
        key = _identity(source)
        if key in seen:
            plan.append((source, None))
            continue
        seen.add(key)
        if source.is_dir():
            target = names.claim(out / source.resolve().name)
        elif source.suffix.lower() in VIDEO_SUFFIXES:  # an odd-sized video is written as .avi instead
            target = names.claim(out / f"{source.stem}_stylized.mp4", also=[".avi"])
        else:
            target = names.claim(out / f"{source.stem}_stylized.png")
        plan.append((source, target))
    return plan


def _identity(path: Path) -> tuple:
    """The same file or folder however it is spelled (symlinks, ``./``); case matters only where the
    file system says so, because an existing path is known by its device and inode."""
    try:
        info = path.stat()
        return ("inode", info.st_dev, info.st_ino)
    except OSError:
        return ("path", str(path.resolve()))


def _stylize_one(stylizer, source: Path, target: Path, args: argparse.Namespace) -> tuple[int, int]:
    """Stylize one input; returns (outputs written, failures)."""
    from .image_io import load_image, save_image
    from .inference import VIDEO_SUFFIXES, size_note
    from .video import stylize_video

    options = {"strength": args.strength, "preserve_colour": args.preserve_colour}
    if source.is_dir():
        report = stylizer.stylize_folder(source, target, overwrite=args.overwrite, progress=args.progress,
                                         recursive=args.recursive, exclude=args.out, **options)
        print(f"{source} -> {target}: {report}")
        return len(report.written), len(report.skipped)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        out = stylize_video(stylizer, source, target, overwrite=args.overwrite, progress=args.progress, **options)
        print(f"{source} -> {out} (video only, no audio)")
        return 1, 0
    before = load_image(source)
    result = stylizer.stylize(before, **options)
    out = save_image(result, target, overwrite=args.overwrite)
    note = size_note(source, before.size, result.size)
    print(f"{source} -> {out}" + (f"\n  note: {note}; pass --max-side {max(before.size)} to keep it" if note else ""))
    return 1, 0


def _stylize(args: argparse.Namespace) -> int:
    from .checkpoints import CheckpointError
    from .inference import Stylizer

    if problem := _usage_problem(args):
        _error(problem)
        return 2
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stylizer = Stylizer.from_file(args.model, device=args.device, speed=args.speed, max_side=args.max_side,
                                          style=args.style)
        _print_warnings(caught)
    except (CheckpointError, FileNotFoundError, ImportError, RuntimeError, ValueError) as err:
        message = (str(err).strip().splitlines() or [type(err).__name__])[0]
        _error(f"cannot use model {message}" if message.startswith(str(args.model))
               else f"cannot use model {args.model}: {message}")
        return 2
    written = failures = 0
    for source, target in _plan(args.inputs, args.out):
        if target is None:
            print(f"{source}: listed more than once; stylized once")
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                done, failed = _stylize_one(stylizer, source, target, args)
            _print_warnings(caught)  # e.g. a video header corrected, an odd-sized video written as .avi
        except (OSError, ValueError, RuntimeError) as err:  # bad file, existing output, video or runtime error
            message = str(err) if str(source) in str(err) else f"{source}: {err}"
            _error(message.splitlines()[0] if message else f"{source}: {type(err).__name__}")
            done, failed = 0, 1
        written, failures = written + done, failures + failed
    if written == 0:
        _error(f"nothing was stylized ({failures} input(s) failed); see the messages above")
    return 1 if failures or written == 0 else 0


def _train_recipe(args: argparse.Namespace):
    from .recipes import DRN_STYLES, TrainRecipe

    styles = tuple(args.style or (DRN_STYLES if args.model == "drn" else ("cartoon",)))
    if args.model != "drn" and len(styles) > 1:
        raise ValueError(f"--style can be given once for --model {args.model} (only the DRN learns several styles)")
    return TrainRecipe(args.model, styles, size=args.size, crop=args.crop, batch=args.batch, steps=args.steps,
                       learning_rate=args.learning_rate, teacher=str(args.teacher) if args.teacher else None)


def _train_domains(args: argparse.Namespace, recipe) -> Path:
    """The domains to train on: given (--data), built from --photos, or the bundled faces."""
    from .domain_build import build_domains
    from .domains import DomainConfig, build_default_domains, domains_from, photos_root, read_manifest

    if args.data is not None:
        styles = read_manifest(args.data).get("styles", {})  # FileNotFoundError / ValueError for a wrong folder
        if missing := [style for style in recipe.styles if style not in styles]:
            raise ValueError(f"{args.data}: has no {', '.join(missing)} domain (it has {', '.join(styles) or 'none'})")
        return args.data
    config = DomainConfig(size=args.size, styles=recipe.styles)
    if args.photos == "lfw":  # the word as typed (a folder named lfw is a Path: ./lfw)
        return domains_from("lfw", config, progress=args.progress)
    if args.photos is not None:
        root = photos_root(args.photos, config)
        build_domains(args.photos, root, config, progress=args.progress)
        return root
    return build_default_domains(config=DomainConfig.bundled(size=args.size, styles=recipe.styles),
                                 progress=args.progress)


def _train_run(args: argparse.Namespace, recipe, out: Path, device) -> int:
    from . import distributed, runtime
    from .checkpoints import CheckpointManager, config_fingerprint, save_model
    from .recipes import prepare
    from .training import RunOptions, train

    if not distributed.is_main():
        distributed.barrier()  # rank 0 builds the domains first; the others then reuse its build
    root = _train_domains(args, recipe)
    if distributed.is_main():
        distributed.barrier()
    run = prepare(recipe, root, device)
    folder = args.checkpoints or runtime.output_dir(
        "train", f"{recipe.model}-{config_fingerprint({'data': str(Path(root).resolve()), **run.settings})}")
    if distributed.is_main():
        print(f"training {recipe.model} on {root} with {distributed.world_size()} process(es) on {device}; "
              f"global batch {recipe.batch}, {recipe.steps} steps; checkpoints in {folder}", flush=True)
    checkpoints = CheckpointManager(folder)
    saved = [] if args.no_resume else checkpoints.checkpoints()
    start = int(saved[-1].stem.split("-")[-1]) if saved else 0  # checkpoint-<step>.pt
    history = train(run.model, run.loss_fn, run.data, run.config,
                    RunOptions(validate=run.validate, checkpoints=checkpoints, resume=not args.no_resume, device=device,
                               progress=args.progress, stop_after=args.stop_after, settings=run.settings))
    if len(history.train) < recipe.steps:
        if distributed.is_main():
            print(f"stopped after step {len(history.train)} of {recipe.steps} ({checkpoints.checkpoints()[-1].name} "
                  "saved); run the same command again to resume")
        return 0
    if distributed.is_main():
        metadata = {"style": "+".join(recipe.styles), "steps": recipe.steps, "batch": recipe.batch,
                    "train_seconds": round(history.seconds, 2), "trained_by": "python -m facestyle_utils train"}
        if start < recipe.steps:  # this call trained (some of) the steps
            metadata["processes"] = distributed.world_size()
        else:
            print(f"the checkpoints in {folder} already hold all {recipe.steps} steps; writing that model "
                  "(pass --no-resume to train again)")
        if history.val:
            metadata.update({k: v for k, v in history.val[-1].items() if k != "step"})
        path = save_model(run.model, out, kind=run.kind, metadata=metadata)
        write_metrics(path, run.kind, metadata, device)
        scores = ", ".join(f"{k} {v:.2f}" for k, v in history.val[-1].items() if k != "step") if history.val else ""
        took = f"{history.seconds:.0f} s" if history.seconds < 120 else f"{history.seconds / 60:.1f} min"
        print(f"model written to {path} ({took} of training{'; ' + scores if scores else ''})")
    return 0


def metrics_path(model_file: Path) -> Path:
    """Where the train command writes a model's metrics: beside it, ``<name>.metrics.json``."""
    return model_file.with_name(f"{model_file.stem}.metrics.json")


def write_metrics(model_file: Path, kind: str, metadata: dict, device) -> Path:
    """Write the model's training record beside it (atomically): kind, recipe numbers, the last validation
    scores (``val_psnr`` in dB on the held-out faces, for paired models), training seconds, and the
    device and date of the run, so a teacher handing out model files can say what they reach."""
    import datetime
    import json

    from .files import atomic_write
    from .runtime import describe_device

    record = {"model": model_file.name, "kind": kind, **metadata, "device": describe_device(device),
              "date": datetime.date.today().isoformat()}
    path = metrics_path(model_file)
    with atomic_write(path) as handle:
        handle.write((json.dumps(record, indent=2) + "\n").encode())
    return path


def _train_usage_problem(args: argparse.Namespace, recipe, out: Path) -> str | None:
    """What is wrong with the arguments, checked before any data is built or any step trained."""
    from . import distributed
    from .checkpoints import default_model_path

    for option, folder in (("--data", args.data), ("--photos", args.photos)):
        if folder is not None and folder != "lfw" and not folder.is_dir():
            return f"{option} {folder}: no such folder"
    if recipe.model == "student":
        teacher = Path(recipe.teacher) if recipe.teacher else default_model_path(f"dcnn_{recipe.styles[0]}")
        if not teacher.is_file():
            return (f"{teacher}: no teacher model; train one first (python -m facestyle_utils train --model dcnn "
                    f"--style {recipe.styles[0]}) or pass --teacher")
    if distributed.launched() and recipe.batch % int(os.environ["WORLD_SIZE"]):
        return (f"a global batch of {recipe.batch} cannot be split evenly over {os.environ['WORLD_SIZE']} processes; "
                "choose a --batch that is a multiple of the number of processes")
    if out.exists() and not args.overwrite:
        return f"{out} exists; pass --overwrite to replace it, or --out another file"
    return None


def _one_line(err: BaseException) -> str:
    """An error as one line: a message that introduces a list ("...:" then lines) keeps the list, joined by '; '."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    return lines[0] + (" " + "; ".join(lines[1:]) if lines[0].endswith(":") and len(lines) > 1 else "")


#: How long a process other than rank 0 waits before exiting on a bad argument, so that torchrun does not
#: stop rank 0 before it has printed the one error line (seen on a busy 2-core machine).
RANK_ERROR_WAIT_SECONDS = 5.0


def _train(args: argparse.Namespace) -> int:
    from . import distributed, runtime
    from .checkpoints import CheckpointError, default_model_path
    from .domains import EmptyDomainError
    from .image_io import ImageLoadError

    main_process = int(os.environ.get("RANK", 0)) == 0  # under torchrun, one process speaks for all
    try:
        recipe = _train_recipe(args)
        out = args.out or default_model_path(f"{recipe.model}_{'-'.join(recipe.styles)}")
        problem = _train_usage_problem(args, recipe, out)
    except ValueError as err:
        problem = str(err)
    if problem:
        if main_process:
            _error(problem)
        else:  # every rank finds the problem; torchrun stops the others when the first exits, so let rank 0 speak
            time.sleep(RANK_ERROR_WAIT_SECONDS)
        return 2
    try:
        device = distributed.start(args.device) if distributed.launched() else runtime.pick_device(args.device)
        return _train_run(args, recipe, out, device)
    except (CheckpointError, EmptyDomainError, ImageLoadError, FileNotFoundError, FileExistsError, KeyError,
            ValueError, RuntimeError, OSError) as err:
        if main_process:
            _error(_one_line(err))
        return 1
    finally:
        distributed.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _train(args) if args.command == "train" else _stylize(args)
    except KeyboardInterrupt:
        _error("interrupted; the checkpoints are kept: run the same command again to resume" if args.command == "train"
               else "interrupted; finished outputs are kept, unfinished ones were not written")
        return 130
