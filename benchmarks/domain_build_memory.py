"""Does a domain build's memory stay flat as the photo folder grows? (lesson 07, issue 17 item 4)

Makes a folder of N synthetic face photos (a bundled face, the astronaut or Grace Hopper,
scaled, colour-jittered and pasted at a random place on a random background: a crop of a
bundled texture or a noisy gradient; JPEG, 300-400 px a side), then builds domains from it
with face detection on (``already_cropped=False``: every photo holds one detectable face) and
prints wall time and peak memory. Each build runs in a fresh Python process, so they all start
from the same baseline (importing torch alone takes about 0.5 GB here). Modes:

- ``stream``: :func:`facestyle_utils.domain_build.build_domains` (photos processed one by one in
  ``--workers`` processes, only manifest entries kept);
- ``memory``: the old path, ``face_crops.faces_from_photos`` (every augmented crop kept in a list) then
  ``domains.write_domains``; its peak grows with N.

Memory is reported three ways: ``getrusage`` of the build process (RUSAGE_SELF) and of its
waited-for children (RUSAGE_CHILDREN: the largest one, not a sum; importing the package already
runs a helper subprocess, whose figure is printed as "before the build"), and the whole process tree
sampled from /proc: peaks of the summed resident set sizes (RSS, every 0.5 s; pages shared between
processes counted in each) and of the summed proportional set sizes (PSS, every 5 s; shared pages
divided among the processes that map them). Worker processes are started by a fork server, so
they are grandchildren of the build process and only the /proc sampling sees them.

    nice .venv/bin/python benchmarks/domain_build_memory.py                  # N=2000, stream, ~minutes on 2 cores
    nice .venv/bin/python benchmarks/domain_build_memory.py -n 300 --modes stream memory
    .venv/bin/python benchmarks/domain_build_memory.py -n 12 --workers 1 --modes stream memory   # smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- synthetic photos


def face_crops() -> list[Image.Image]:
    """The two bundled faces, each cut out with a generous margin around its detected box (about 250 px)."""
    from facestyle_utils import faces
    from facestyle_utils.sample_data import load_sample

    crops = []
    for name in ("astronaut", "grace_hopper"):
        photo = load_sample(name)
        box = faces.detect_faces(photo)[0]
        crops.append(faces.align_face(photo, box, 250, margin=0.6))
    return crops


def background(rng: np.random.Generator, width: int, height: int, textures: list[Image.Image]) -> Image.Image:
    """A random crop of a bundled texture, or a noisy two-colour gradient."""
    if rng.random() < 0.5:
        texture = textures[rng.integers(len(textures))]
        x, y = rng.integers(0, texture.width - width), rng.integers(0, texture.height - height)
        return texture.crop((int(x), int(y), int(x) + width, int(y) + height))
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, width)[None, :, None]
    pixels = a * (1 - t) + b * t + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_photos(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs in ``folder`` (kept and reused if a previous run made the same set)."""
    from facestyle_utils.sample_data import load_sample

    stamp = folder / ".made.json"
    wanted = {"count": count, "seed": seed, "version": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    crops = face_crops()
    textures = [load_sample(n).convert("RGB").resize((512, 512)) for n in ("brick", "grass", "gravel")]
    for index in range(count):
        width, height = (int(v) for v in rng.integers(300, 401, 2))
        photo = background(rng, width, height, textures)
        face = crops[index % len(crops)]
        side = int(rng.integers(170, 231))
        face = face.resize((side, side), Image.Resampling.BILINEAR)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            face = enhance(face).enhance(float(rng.uniform(0.75, 1.25)))
        photo.paste(face, (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))))
        photo.save(folder / f"photo_{index:05d}.jpg", quality=int(rng.integers(82, 95)))
    stamp.write_text(json.dumps(wanted))
    return folder


# --------------------------------------------------------------------------- measuring one build


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def _kib(pid: int, file: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples this process and its descendants: peaks of summed RSS (every ``interval`` s) and PSS (every
    ``pss_every`` samples: the kernel takes tens of ms per process to add it up, time the build would lose), in MiB."""

    def __init__(self, interval: float = 0.5, pss_every: int = 10):
        super().__init__(daemon=True)
        self.interval, self.pss_every, self.stop = interval, pss_every, False
        self.peak_rss = self.peak_pss = self.peak_processes = 0

    def run(self) -> None:
        sample = 0
        while not self.stop:
            pids = _tree(os.getpid())
            self.peak_rss = max(self.peak_rss, sum(_kib(p, "status", "VmRSS") for p in pids) // 1024)
            if sample % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, sum(_kib(p, "smaps_rollup", "Pss") for p in pids) // 1024)
            self.peak_processes = max(self.peak_processes, len(pids))
            sample += 1
            time.sleep(self.interval)


def run_build(mode: str, photos: Path, out: Path, *, workers: int, size: int, variants: int) -> dict:
    """One build in this (fresh) process; returns time and memory figures."""
    from facestyle_utils import domain_build, domains, face_crops

    shutil.rmtree(out, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale)
    kib = 1024 if sys.platform == "darwin" else 1  # ru_maxrss: bytes on macOS, KiB on Linux
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // kib // 1024
    sampler = TreeSampler()
    sampler.start()
    config = domains.DomainConfig(size=size, variants_per_photo=variants, seed=0)
    start = time.perf_counter()
    if mode == "stream":
        report = domain_build.build_domains(photos, out, config, workers=workers, progress=False)
    else:
        report = domains.BuildReport(out)
        items = face_crops.faces_from_photos(face_crops.list_images(photos), report, config, base=photos)
        report.counts = domains.write_domains(items, out, config).counts  # the skipped files are in `report`
    wall = time.perf_counter() - start
    sampler.stop = True
    sampler.join()
    return {"mode": mode, "photos": len(face_crops.list_images(photos)), "workers": workers if mode == "stream" else 1,
            "wall (s)": round(wall, 1), "faces written": report.counts["source"],
            "skipped": len(report.skipped),
            "RUSAGE_SELF peak (MiB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // kib // 1024,
            "RUSAGE_CHILDREN peak (MiB)": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // kib // 1024,
            "RUSAGE_CHILDREN before the build (MiB)": children_before,
            "tree RSS peak (MiB)": sampler.peak_rss, "tree PSS peak (MiB)": sampler.peak_pss,
            "processes": sampler.peak_processes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--photos", type=int, default=2000, help="synthetic photos to make (default 2000)")
    parser.add_argument("--modes", nargs="+", default=["stream"], choices=["stream", "memory"])
    parser.add_argument("--workers", type=int, default=None, help="stream mode's worker processes (default: cores)")
    parser.add_argument("--size", type=int, default=128, help="face crop side in pixels")
    parser.add_argument("--variants", type=int, default=4, help="crops per training photo")
    parser.add_argument("--folder", type=Path, default=ROOT / "build" / "benchmarks" / "domain_build")
    parser.add_argument("--run", choices=["stream", "memory"], help=argparse.SUPPRESS)  # child process: one build
    args = parser.parse_args()
    photos = args.folder / f"photos_{args.photos}"
    workers = args.workers or min(len(os.sched_getaffinity(0)), 8)
    if args.run:
        print(json.dumps(run_build(args.run, photos, args.folder / f"out_{args.run}", workers=workers,
                                   size=args.size, variants=args.variants)))
        return
    start = time.perf_counter()
    make_photos(photos, args.photos)
    print(f"{args.photos} photos in {photos} ({time.perf_counter() - start:.0f} s to make or find)", flush=True)
    for mode in args.modes:
        command = [sys.executable, __file__, "--run", mode, "-n", str(args.photos), "--workers", str(workers),
                   "--size", str(args.size), "--variants", str(args.variants), "--folder", str(args.folder)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print("  ".join(f"{key}={value}" for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
