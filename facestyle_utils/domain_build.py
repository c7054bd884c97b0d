"""Building a folder of photos into face domains as a stream: bounded memory, worker processes, resumable.

A folder of thousands of photos is built as a stream (:func:`build_domains`): a cheap first
pass hashes every file (duplicates skipped) and names identities; a face pass finds each photo's
faces, keeping only their boxes; the photos that gave faces are split; a write pass crops,
stylizes and writes each photo's PNGs, keeping only its manifest entries. Both passes treat one
photo at a time, in worker processes, so memory does not grow with the number of photos. The
work goes to a hidden folder next to ``root`` (``.<root>.partial-<config hash>``) with a record
per photo and pass: an interrupted build, rerun with the same configuration, skips what was
finished. The finished folder is moved into place at the end.

Each photo is a :class:`PhotoJob` (no pixels, so it pickles small): :func:`plan_photos` is the first
pass, :func:`find_faces` and :func:`process_photo` the two passes over one photo, and :func:`run_jobs`
runs a pass over many (finished ones read from their records, the rest in a process pool whose fork
server preloads this module).

What it writes is the format of :mod:`facestyle_utils.domains` (the same files and manifest whatever
the number of workers), and its crops are :func:`facestyle_utils.face_crops.augmented_crops`'s.
:func:`build_domains` lives here, with everything it calls, so the imports go one way,
``domains`` <- ``face_crops`` <- ``domain_build``; ``domains.domains_from`` imports it when called.
"""
from __future__ import annotations

import glob
import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from . import faces as facelib
from .domains import (
    MIN_IMAGE_SIDE,
    VARIANTS_IN,
    BuildReport,
    DomainConfig,
    EmptyDomainError,
    FileIssue,
    check_styles,
    install_build,
    manifest_matches,
    read_manifest,
    refuse_foreign,
    resolve_config,
    split_identities,
    write_face,
    write_manifest,
    write_png,
)
from .face_crops import (
    MAX_IMAGE_SIDE,
    MAX_PIXELS,
    augmented_crops,
    centre_box,
    file_problem,
    identity_name,
    list_images,
    load_checked,
)
from .files import atomic_write, sha256_file
from .image_io import ImageLoadError

#: Default worker processes: at most this many, and one per this many photos still to process
#: (starting a process costs seconds, more than a few photos take in-process).
MAX_DEFAULT_WORKERS = 8
PHOTOS_PER_WORKER = 32
#: Inside a work folder: one JSON record per finished photo (what it wrote), dropped once the build is in place.
RECORDS = ".records"


# --------------------------------------------------------------------------- streaming folder builds


@dataclass(frozen=True)
class PhotoJob:
    """One input file's work; holds no pixels, so it pickles small.

    ``domain`` is ``"source"`` (a face photo: crops plus every paired style) or ``"target/<name>"``
    (an image of an unpaired target folder: one centre crop). ``order`` is the file's place in the
    build (source files first, then each target folder), which fixes the order of problems in the
    report. ``split`` and ``boxes`` are filled in after the face pass (:func:`find_faces`).
    """

    path: str  # as given (may be relative to the working directory)
    label: str  # as reported: relative to the input folder, or the file name for a list of files
    sha256: str
    identity: str  # file-name-safe and unique within the domain; also the stem of the output files
    domain: str
    order: int
    split: str = ""
    boxes: tuple[facelib.FaceBox, ...] = ()  # faces found (or the centre square), in the loaded image's pixels


@dataclass
class Faces:
    """What the face pass keeps of one photo: its face boxes (none: skipped) and what happened to the file."""

    boxes: list[facelib.FaceBox]
    issues: list[FileIssue]


@dataclass
class PhotoResult:
    """What writing one photo leaves in memory: its manifest entries (paths and hashes of the PNGs), never pixels."""

    entries: list[dict]


@dataclass
class FolderPlan:
    """The first pass over one folder: the jobs to run, the files already skipped (with their ``order``), and
    ``(domain, label, sha256)`` of every file seen, which the config digests so changed inputs are never reused."""

    domain: str
    where: str  # the folder, for messages
    jobs: list[PhotoJob] = field(default_factory=list)
    skipped: list[tuple[int, FileIssue]] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)


def _probe(path: Path, min_side: int) -> str | None:
    """Why a file cannot be used, judged from its header (cheap), or None if it looks usable.

    Only a file that already looks wrong is decoded in full, to report load_checked's exact reason.
    A file that passes may still fail later (a truncated JPEG shows only when decoded).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
        scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
        if min(width, height) * scale >= min_side and width * height <= MAX_PIXELS:
            return None
    except Exception:  # noqa: BLE001 - any header problem: let load_checked name it
        pass
    try:
        load_checked(path, min_side=min_side)
    except (ImageLoadError, OSError) as err:
        return file_problem(err, path)
    return None


def plan_photos(files: Sequence[str | os.PathLike], domain: str = "source", *, base: Path | None = None,
                min_side: int = MIN_IMAGE_SIDE, start: int = 0, progress: bool = False) -> FolderPlan:
    """The cheap first pass: hash files, skip duplicates and unreadable files, give each photo its identity.

    Reads file bytes and image headers only, so thousands of photos take seconds.
    """
    from .runtime import progress_bar

    plan, digests, taken = FolderPlan(domain, str(base) if base else "the given list"), {}, set()
    for order, path in enumerate(progress_bar(files, desc=f"scanning {domain}", disable=not progress), start):
        path = Path(path)
        label = str(path.relative_to(base)) if base is not None else path.name
        try:
            digest = sha256_file(path)
            problem = f"duplicate of {digests[digest]} (same sha256)" if digest in digests else _probe(path, min_side)
        except OSError as err:
            digest, problem = "", file_problem(err, path)
        plan.seen.append((domain, label, digest))
        if problem:
            plan.skipped.append((order, FileIssue(label, "skipped", problem)))
            continue
        digests[digest] = label
        plan.jobs.append(PhotoJob(str(path), label, digest, identity_name(label, taken), domain, order))
    return plan


def _load(job: PhotoJob, config: DomainConfig) -> tuple[Image.Image, list[str]]:
    return load_checked(job.path, min_side=config.min_side if job.domain == "source" else MIN_IMAGE_SIDE)


def find_faces(job: PhotoJob, config: DomainConfig) -> Faces:
    """The face pass over one photo: load it and find its faces (a target-folder image, or an ``already_cropped``
    photo, is its centre square). Unusable files and photos without a face come back as skipped issues."""
    try:
        image, notes = _load(job, config)
    except (ImageLoadError, OSError) as err:
        return Faces([], [FileIssue(job.label, "skipped", file_problem(err, Path(job.path)))])
    issues = [FileIssue(job.label, "converted", note) for note in notes]
    if job.domain != "source" or config.already_cropped:
        return Faces([centre_box(image)], issues)
    boxes = facelib.detect_faces(image, backend=config.backend)
    if not boxes:
        issues.append(FileIssue(job.label, "skipped", "no face found (crop it by hand with align_face)"))
    return Faces(boxes, issues)


def process_photo(job: PhotoJob, config: DomainConfig, folder: Path) -> PhotoResult:
    """Load one photo again, crop its faces (``job.boxes``), stylize, and write the PNGs under ``folder``.

    Runs in a worker process. Only the result goes back: a few hundred bytes of manifest entries
    per file written, which is what keeps a build's memory independent of the number of photos.
    """
    image, _ = _load(job, config)
    if job.domain != "source":
        return PhotoResult(_write_style_image(image, job, config.size, folder))
    if job.split not in VARIANTS_IN:  # val/test keep distinct faces only
        config = replace(config, variants_per_photo=1)
    entries = []
    for index, box in enumerate(job.boxes):
        name = job.identity if len(job.boxes) == 1 else f"{job.identity}_face{index}"
        for item in augmented_crops(image, box, name, config, origin=job.label):
            entries += write_face(item, job.split, config.styles, folder)
    return PhotoResult(entries)


def _write_style_image(image: Image.Image, job: PhotoJob, size: int, folder: Path) -> list[dict]:
    """An image of an unpaired target folder.

    Centre-cropped to ``size`` and written as ``<domain>/<split>/<id>.png``.
    """
    rel = Path(job.domain, job.split, f"{job.identity}.png")
    crop = facelib.align_face(image, job.boxes[0], size, margin=0.0)
    return [{"path": rel.as_posix(), "sha256": write_png(crop, folder / rel), "domain": job.domain,
             "split": job.split, "identity": job.identity, "origin": job.identity, "gray": False}]


# One record per photo and pass, so a rerun knows what is finished: stage name -> what the stage returns.
STAGES = {"faces": Faces, "write": PhotoResult}


def _record_path(work: Path, stage: str, job: PhotoJob) -> Path:
    return work / RECORDS / f"{stage}-{job.sha256}-{hashlib.sha256(job.domain.encode()).hexdigest()[:8]}.json"


def _job_key(job: PhotoJob) -> dict:
    """What a record must match to be reused, as JSON gives it back (not the path: a rerun may spell it differently)."""
    return json.loads(json.dumps({k: v for k, v in asdict(job).items() if k != "path"}))


def _run_job(stage: str, job: PhotoJob, config: DomainConfig, work: Path) -> Faces | PhotoResult:
    """One stage of one photo, then its record: written last and atomically, so a record means finished."""
    result = find_faces(job, config) if stage == "faces" else process_photo(job, config, work)
    with atomic_write(_record_path(work, stage, job)) as handle:
        handle.write(json.dumps({"job": _job_key(job), **asdict(result)}).encode())
    return result


def _load_record(work: Path, stage: str, job: PhotoJob) -> Faces | PhotoResult | None:
    """A photo's stage result from an earlier run, if its record matches and every file it wrote is intact."""
    try:
        record = json.loads(_record_path(work, stage, job).read_text())
    except (OSError, ValueError):
        return None
    if record.get("job") != _job_key(job):
        return None
    if stage == "faces":
        return Faces([facelib.FaceBox(**box) for box in record["boxes"]],  # FaceBox turns JSON lists into points
                     [FileIssue(**issue) for issue in record["issues"]])
    for entry in record["entries"]:
        path = work / entry["path"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return None
    return PhotoResult(record["entries"])


def _worker_count(workers: int | None, pending: int) -> int:
    """Processes to use: as asked (``None``: the usable cores, at most MAX_DEFAULT_WORKERS and one per
    PHOTOS_PER_WORKER photos), never more than the photos left; 1 means in this process."""
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(cores, MAX_DEFAULT_WORKERS, pending // PHOTOS_PER_WORKER)
    elif workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return max(1, min(workers, pending))


def _mp_context() -> multiprocessing.context.BaseContext:
    """Fork server where there is one (fast starts: this module is imported once, then forked; no fork of a
    threaded parent such as a Jupyter kernel), else spawn (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


def _worker_init() -> None:
    """One OpenCV thread per worker: the workers already fill the cores."""
    import cv2

    cv2.setNumThreads(1)


def run_jobs(stage: str, jobs: Sequence[PhotoJob], config: DomainConfig, work: Path, *,
             workers: int | None = None, progress: bool = False) -> dict[int, object]:
    """Results of one stage (``"faces"`` or ``"write"``) for every job, by its ``order``: finished ones read
    from their records, the rest run. ``workers > 1`` runs them in a process pool; results do not depend on it.
    ``config`` must name its backend (the build fills it in), so every worker detects with the same one."""
    from .runtime import progress_bar

    domain = jobs[0].domain if jobs else "source"
    desc = "writing domains" if stage == "write" else f"finding {'faces' if domain == 'source' else domain}"

    results, pending = {}, []
    for job in jobs:
        done = _load_record(work, stage, job)
        if done is None:
            pending.append(job)
        else:
            results[job.order] = done
    workers = _worker_count(workers, len(pending))
    with progress_bar(total=len(jobs), initial=len(results), desc=desc, disable=not progress) as bar:
        if workers == 1:
            for job in pending:
                results[job.order] = _run_job(stage, job, config, work)
                bar.update()
            return results
        pool = ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_worker_init)
        try:
            futures = {pool.submit(_run_job, stage, job, config, work): job for job in pending}
            for future in as_completed(futures):
                results[futures[future].order] = future.result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on an error: finish running photos, drop the rest
    return results


def _prune(folder: Path, keep: set[str]) -> None:
    """Delete files under ``folder`` not in ``keep``, then empty folders.

    ``keep`` holds relative POSIX paths; the records are kept.
    """
    for path in sorted(folder.rglob("*"), reverse=True):
        rel = path.relative_to(folder).as_posix()
        if rel == RECORDS or rel.startswith(RECORDS + "/") or rel in keep:
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def _input_files(photos: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], Path | None]:
    if isinstance(photos, (str, os.PathLike)):
        return list_images(photos), Path(photos)
    return [Path(p) for p in photos], None


def _empty_error(plan: FolderPlan, report: BuildReport) -> EmptyDomainError:
    """The error for a domain left without a single usable image, with the table of why."""
    if plan.domain == "source":
        return EmptyDomainError(f"no usable face images among {len(plan.seen)} file(s) in {plan.where}:\n"
                                f"{report.table() or '(no files)'}")
    name = plan.domain.removeprefix("target/")
    return EmptyDomainError(f"target domain {name!r}: no usable images in {plan.where}\n{report.table()}")


def _plan_build(photos, report: BuildReport, config: DomainConfig, *,
                progress: bool) -> list[FolderPlan]:
    """The first pass over the photos, then every target folder; raises EmptyDomainError before any heavy work."""
    files, base = _input_files(photos)
    plans = [plan_photos(files, "source", base=base, min_side=config.min_side, progress=progress)]
    for name, folder in config.target_folders.items():
        plans.append(plan_photos(list_images(folder), f"target/{name}", base=Path(folder),
                                 start=sum(len(plan.seen) for plan in plans)))
    for plan in plans:  # problems are reported in this order: source, then each target folder
        report.issues += [issue for _, issue in plan.skipped]
        if not plan.jobs:
            raise _empty_error(plan, report)
    return plans


def _folder_inputs(plans: list[FolderPlan]) -> dict:
    """What a folder build read, for its manifest: every file's name (relative to its folder) and one digest
    of all their contents, so a build is reused only when its inputs are the same files."""
    seen = [item for plan in plans for item in plan.seen]
    return {"kind": "photos", "photos": [label for _, label, _ in plans[0].seen],
            "target_folders": {plan.domain.removeprefix("target/"): [label for _, label, _ in plan.seen]
                               for plan in plans[1:]},
            "sha256": hashlib.sha256(json.dumps(seen).encode()).hexdigest()}


def _work_folder(root: Path, config: DomainConfig, inputs: dict) -> Path:
    """Where a build with this config is assembled: next to ``root``, named by the config's hash, kept across runs."""
    digest = hashlib.sha256(json.dumps({"config": config.to_json(), "inputs": inputs},
                                       sort_keys=True).encode()).hexdigest()[:16]
    return root.parent / f".{root.name}.partial-{digest}"


def _reused(root: Path) -> BuildReport:
    """The report of a finished build, read back from its manifest (counts and problems as when it was built)."""
    manifest = read_manifest(root)
    return BuildReport(root, counts=manifest["counts"], issues=[FileIssue(**p) for p in manifest["problems"]],
                       reused=True)


def _finish(work: Path, root: Path, config: DomainConfig, inputs: dict, files: list[dict],
            issues: list[FileIssue]) -> dict[str, dict[str, int]]:
    """Write the manifest, drop anything not in it, move the build into place, remove work folders left for ``root``."""
    _prune(work, {entry["path"] for entry in files})
    counts = write_manifest(work, config, inputs, files, issues)
    install_build(work, root)
    shutil.rmtree(root / RECORDS, ignore_errors=True)
    # Unfinished builds of other configs for this root: their photos would have to be processed again anyway.
    for stale in root.parent.glob(f".{glob.escape(root.name)}.partial-" + "[0-9a-f]" * 16):
        shutil.rmtree(stale, ignore_errors=True)
    return counts


def build_domains(photos: str | os.PathLike | Sequence[str | os.PathLike], root: str | os.PathLike,
                  config: DomainConfig | None = None, *, progress: bool = True, workers: int | None = None,
                  **settings: Any) -> BuildReport:
    """Build source and target domains from a folder (or list) of face photos; returns the report.

    ``config`` (:class:`domains.DomainConfig`, default ``DomainConfig()``) holds every setting of the build;
    keyword ``settings`` are a shorthand for some of its fields (``build_domains(folder, root,
    size=256)``). The manifest stores the config with the backend filled in.

    Streams: memory stays at a few photos whatever their number; ``workers`` processes share the
    photos (default: the cores, for builds big enough to pay for starting them; 1 = this process),
    with identical files whatever their number. An interrupted build, rerun with the same
    config, skips the photos it finished; a finished build with the same config (inputs'
    contents included) is reused as it is (``report.reused``). Bad files are reported (and, with
    ``progress``, printed as a table after the progress bars) and skipped; the build goes on. An
    empty source domain, or an empty ``target_folders`` entry, raises :class:`domains.EmptyDomainError`; a
    ``root`` holding anything but an earlier build raises FileExistsError; a wrong setting
    raises ValueError or TypeError before any work.
    """
    root, config = Path(root), resolve_config(config, settings)
    if config.patches_per_photo:
        raise ValueError(f"patches_per_photo={config.patches_per_photo}: photo patches belong to the bundled build "
                         "(build_default_domains); use 0 for a folder of photos")
    check_styles(config.styles)
    refuse_foreign(root)
    _worker_count(workers, 1)  # a bad value fails now, not after the first pass
    config = replace(config, backend=config.backend or facelib.available_backends()[0])
    report = BuildReport(root)
    plans = _plan_build(photos, report, config, progress=progress)
    if manifest_matches(root, config, _folder_inputs(plans)):
        report = _reused(root)
    else:
        _build(plans, root, config, report, workers=workers, progress=progress)
    if progress and report.issues:
        print(report.table())
    return report


def _build(plans: list[FolderPlan], root: Path, config: DomainConfig, report: BuildReport, *,
           workers: int | None, progress: bool) -> None:
    """The face pass per folder (target folders first: they are small and may turn out empty), the split of the
    photos that gave faces, the write pass, then the build moved into place; fills ``report``."""
    inputs = _folder_inputs(plans)
    work = _work_folder(root, config, inputs)
    found: dict[int, Faces] = {}
    writes = []
    for plan in plans[1:] + plans[:1]:
        found |= run_jobs("faces", plan.jobs, config, work, workers=workers, progress=progress)
        report.issues = _issues_in_order(plans, found)
        usable = [job for job in plan.jobs if found[job.order].boxes]
        if not usable:
            shutil.rmtree(work, ignore_errors=True)  # a finished outcome, not an interruption: nothing to resume
            raise _empty_error(plan, report)
        splits = split_identities([job.identity for job in usable], config.seed, config.fractions)
        writes += [replace(job, split=splits[job.identity], boxes=tuple(found[job.order].boxes)) for job in usable]
    writes.sort(key=lambda job: job.order)
    results = run_jobs("write", writes, config, work, workers=workers, progress=progress)
    files = [entry for order in sorted(results) for entry in results[order].entries]
    report.counts = _finish(work, root, config, inputs, files, report.issues)


def _issues_in_order(plans: list[FolderPlan], found: dict[int, Faces]) -> list[FileIssue]:
    """Every problem so far, in input order (as a build that read the photos one by one would list them)."""
    ordered = [(order, issue) for plan in plans for order, issue in plan.skipped]
    ordered += [(order, issue) for order, faces in found.items() for issue in faces.issues]
    return [issue for _, issue in sorted(ordered, key=lambda pair: pair[0])]
