"""Command line: ``python -m facestyle_utils stylize INPUT... --model MODEL.pt --out DIR``.

Inputs may be image files, folders of images or videos. Exit status: 0 when everything was
stylized, 1 when some inputs failed or nothing was stylized (each is reported), 2 for a usage
error or an unusable model. Errors are one line each, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
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
    stylize.add_argument("--size", type=int, default=None,
                         help="longest side processed, in pixels; larger images are shrunk (default: per device)")
    stylize.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = full style (default 1)")
    stylize.add_argument("--keep-colour", action="store_true", help="keep the input's colours")
    stylize.add_argument("--speed", default="channels_last", help="speed path (see facestyle_utils.inference)")
    stylize.add_argument("--recursive", action="store_true", help="also stylize images in subfolders of folders")
    stylize.add_argument("--overwrite", action="store_true", help="replace results of earlier runs")
    stylize.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Each warning as one ``warning:`` line on stderr (not Python's two-line file:line format)."""
    for message in dict.fromkeys(str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()):
        print(f"warning: {message}", file=sys.stderr)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.strength <= 1:
        return f"--strength must be between 0 and 1, got {args.strength}"
    if args.size is not None and args.size < 1:
        return f"--size must be a positive number of pixels, got {args.size}"
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

    options = {"strength": args.strength, "keep_colour": args.keep_colour}
    if source.is_dir():
        report = stylizer.stylize_folder(source, target, overwrite=args.overwrite, progress=not args.quiet,
                                         recursive=args.recursive, exclude=args.out, **options)
        print(f"{source} -> {target}: {report}")
        return len(report.written), len(report.skipped)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        out = stylize_video(stylizer, source, target, overwrite=args.overwrite, progress=not args.quiet, **options)
        print(f"{source} -> {out} (video only, no audio)")
        return 1, 0
    before = load_image(source)
    result = stylizer.stylize(before, **options)
    out = save_image(result, target, overwrite=args.overwrite)
    note = size_note(source, before.size, result.size)
    print(f"{source} -> {out}" + (f"\n  note: {note}; pass --size {max(before.size)} to keep it" if note else ""))
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
            stylizer = Stylizer.from_file(args.model, device=args.device, speed=args.speed, max_side=args.size,
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _stylize(args)
    except KeyboardInterrupt:
        _error("interrupted; finished outputs are kept, unfinished ones were not written")
        return 130
