"""How much faster is the fast Gatys path than a plain one? (lesson 02, issue 4)

Runs, in one process and on the same face and style:

1. plain: fp32, NCHW, L-BFGS, the whole VGG19 run every step and the content/style
   targets recomputed every step (the textbook loop without any speed-up);
2. the same with the network cut after the deepest loss layer and targets computed once
   (identical maths, so identical losses);
3. that, with relu5_1 as a late layer: left out (and the network cut at relu4_2) until the
   loss without it reaches the target, then in for the last steps;
4. the fast path (``gatys_speed.fast_settings``): the above plus coarse-to-fine (optimise at 3/8
   size, upsample the change, refine), the Gram matrix's hand-written backward, channels_last on
   CUDA, and bf16 autocast where the hardware computes it natively (a GPU from the A100 on, a CPU
   with AMX / AVX-512 BF16); ``gatys_speed.choose_fast_path`` first times single loss steps and keeps
   autocast and channels_last only where a step is faster with them, and the coarse stage only
   where one of its steps costs at most half a full-size one.

Row 2 is the plain method (``gatys.stylize_by_optimisation``); the speed switches come from
``facestyle_utils.gatys_speed``, lesson 02's optional speed lab.

Every run stops when its whole total loss *at full size* (every layer in) first reaches the
plain run's loss after ``--steps`` steps. Prints seconds per step, seconds to that loss, and
the ratio fast/plain (the target is <= 0.40, and <= 0.30 on a CPU with bf16 hardware), what the fast
path chose and why, and how the plain and fast steps split between the loss (VGG19 forward and backward)
and the rest (L-BFGS and bookkeeping): on a GPU that one image cannot keep busy, the rest can dominate.
Autocast is also timed separately for one step: on CPUs that emulate bf16 its backward pass is far
slower than fp32.

    nice .venv/bin/python benchmarks/gatys_speed.py            # 256x256, ~2-5 minutes on 2 cores
    .venv/bin/python benchmarks/gatys_speed.py --size 64 --steps 5 --no-autocast   # smoke test
"""
from __future__ import annotations

import argparse

import torch

from facestyle_utils import runtime, sample_data
from facestyle_utils.gatys import GatysSettings
from facestyle_utils.gatys_speed import (
    SpeedSettings,
    autocast_choice,
    bf16_autocast,
    choose_fast_path,
    compare_speed,
    fast_settings,
    resize_tensor,
    seconds_per_loss_step,
    total_loss,
)
from facestyle_utils.image_io import image_to_tensor
from facestyle_utils.vgg import load_vgg19


def square(name: str, size: int, device: torch.device) -> torch.Tensor:
    """A bundled sample, centre-cropped to a square and resized to ``size`` x ``size``."""
    image = image_to_tensor(sample_data.load_sample(name), device)
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_tensor(image[..., top:top + side, left:left + side], (size, size)).clamp(0, 1)


def fast_name(settings: SpeedSettings) -> str:
    """The fast path's row label, naming the switches it has on this device beyond the rows above it."""
    switches = [name for name, on in (("coarse-to-fine", settings.coarse_steps > 0),
                                      ("channels_last", settings.channels_last), ("autocast", settings.autocast)) if on]
    return f"fast path (+ {', '.join(switches)})" if switches else "fast path (as the row above, fused Gram)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="steps of the plain run that set the target loss")
    parser.add_argument("--face", default="grace_hopper")
    parser.add_argument("--style", default="hubble_deep_field")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-autocast", action="store_true", help="skip the bf16 autocast timing")
    parser.add_argument("--no-cut", action="store_true", help="skip the middle rows (cut network, targets once; late)")
    args = parser.parse_args()

    device = runtime.pick_device(args.device)
    runtime.seed_everything(0)
    vgg = load_vgg19(device=device)
    content, style = square(args.face, args.size, device), square(args.style, args.size, device)
    print(f"{args.size}x{args.size}, {args.steps} plain L-BFGS steps set the target; device {device.type}, "
          f"{torch.get_num_threads()} threads")

    plain = SpeedSettings(GatysSettings(steps=args.steps), full_network=True, targets_every_step=True)
    cut = plain.replace(full_network=False, targets_every_step=False)  # the plain method
    fast_path, choice = choose_fast_path(content, style, vgg, fast_settings(device, steps=3 * args.steps))
    middle = {
        # 2 spare steps: the same maths, but float rounding (TF32 on a GPU) can leave it a hair above the target
        "+ network cut at deepest layer, targets once": cut.replace(steps=args.steps + 2),
        "+ relu5_1 joins late": cut.replace(steps=3 * args.steps, late_style_layers=("relu5_1",)),
    }
    variants = {
        "plain fp32 NCHW (full network, targets every step)": plain,
        **({} if args.no_cut else middle),
        fast_name(fast_path): fast_path,
    }
    print(f"{'variant':<56}{'s/step':>8}{'steps':>7}{'s to target':>13}", flush=True)
    rows, target = [], None
    for name, settings in variants.items():  # one at a time, so each line prints as soon as it is known
        row = compare_speed(content, style, vgg, {name: settings}, target_loss=target, progress=True)[0]
        target = row.final_loss if target is None else target
        rows.append(row)
        print(f"{row.name:<56}{row.seconds_per_step:>8.3f}{row.steps_to_target or '-':>7}"
              f"{row.seconds_to_target:>13.1f}", flush=True)
    print(f"target total loss (plain run after {args.steps} steps): {target:.4g}")
    fast = rows[-1]
    check = total_loss(fast.result.image, content, style, vgg, variants[fast.name])
    print(f"fast path's returned image, re-measured at full size in fp32: loss {check:.4g}")
    goal = 0.30 if device.type == "cpu" and runtime.cpu_has_native_bf16() else 0.40
    print(f"fast path on {runtime.describe_device(device)}: fast_settings chose {autocast_choice(device)}; "
          f"choose_fast_path measured: {choice}")
    print(f"ratio fast / plain = {fast.seconds_to_target / rows[0].seconds_to_target:.2f} (target <= {goal:.2f})")
    if not args.no_cut:
        print(f"ratio fast / (cut + targets once) = {fast.seconds_to_target / rows[1].seconds_to_target:.2f}")
    for row in (rows[0], fast):  # a launch-bound GPU spends its steps outside the loss: this line shows it
        loss_only = seconds_per_loss_step(vgg, content, style, variants[row.name])
        print(f"where a full-size step's {1000 * row.seconds_per_step:.1f} ms go ({row.name.split(' (')[0]}): the "
              f"loss's forward and backward {1000 * loss_only:.1f} ms (timed apart), the rest (L-BFGS and "
              f"bookkeeping) {1000 * (row.seconds_per_step - loss_only):.1f} ms")

    if not args.no_autocast and not bf16_autocast(device):
        print("bf16 autocast: not timed, this GPU has no bfloat16 tensor cores (and float16 fails here)")
    elif not args.no_autocast:
        small = 128
        c, s = square(args.face, small, device), square(args.style, small, device)
        fp32 = seconds_per_loss_step(vgg, c, s, SpeedSettings(), repeats=1)
        mixed = seconds_per_loss_step(vgg, c, s, SpeedSettings(autocast=True), repeats=1)
        print(f"one forward+backward at {small}x{small}: fp32 {fp32:.2f} s, bf16 autocast {mixed:.2f} s "
              f"({mixed / fp32:.1f}x)")


if __name__ == "__main__":
    main()
