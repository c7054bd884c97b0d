"""Command line: ``python -m facestyle_utils stylize INPUT... --model MODEL.pt --out DIR``.

Inputs may be image files, folders of images or videos. Exit status: 0 when everything was
stylized, 1 when some inputs failed (each is reported), 2 for a usage error or an unusable model.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facestyle_utils",
                                     description="Stylize faces with a model trained in the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    stylize = commands.add_parser("stylize", help="stylize images, folders of images and videos",
                                  description="Stylize images, folders of images and videos. "
                                              "Inputs are never modified; results go to --out.")
    stylize.add_argument("inputs", nargs="+", type=Path, help="image files, folders or videos")
    stylize.add_argument("--model", required=True, type=Path, help="model file saved by lesson 03, 04 or 05")
    stylize.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    stylize.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    stylize.add_argument("--size", type=int, default=None, help="longest side processed (default: per device)")
    stylize.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = full style (default 1)")
    stylize.add_argument("--keep-colour", action="store_true", help="keep the input's colours")
    stylize.add_argument("--speed", default="channels_last", help="speed path (see facestyle_utils.inference)")
    stylize.add_argument("--overwrite", action="store_true", help="replace earlier outputs of the same name")
    stylize.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _stylize(args: argparse.Namespace) -> int:
    from .checkpoints import CheckpointError
    from .image_io import ImageLoadError, save_image
    from .inference import Stylizer
    from .video import VideoError, stylize_video

    if not 0 <= args.strength <= 1:
        print(f"error: --strength must be between 0 and 1, got {args.strength}", file=sys.stderr)
        return 2
    try:
        stylizer = Stylizer.from_file(args.model, device=args.device, speed=args.speed, max_side=args.size)
    except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"error: cannot use model {args.model}: {err}", file=sys.stderr)
        return 2
    options = {"strength": args.strength, "keep_colour": args.keep_colour}
    failures = 0
    for source in args.inputs:
        try:
            if source.is_dir():
                report = stylizer.stylize_folder(source, args.out / source.name, overwrite=args.overwrite,
                                                 progress=not args.quiet, **options)
                print(f"{source}: {report}")
                failures += len(report.skipped)
            elif source.suffix.lower() in VIDEO_SUFFIXES:
                out = stylize_video(stylizer, source, args.out / f"{source.stem}_stylized.mp4",
                                    overwrite=args.overwrite, progress=not args.quiet, **options)
                print(f"{source} -> {out} (video only, no audio)")
            else:
                out = save_image(stylizer.stylize(source, **options), args.out / f"{source.stem}_stylized.png",
                                 overwrite=args.overwrite)
                print(f"{source} -> {out}")
        except (ImageLoadError, VideoError, FileNotFoundError, FileExistsError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _stylize(args)
