"""Streaming folder builds: same files whatever the workers, resume after an interruption, no stale reuse."""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestyle_utils import domain_build as build
from facestyle_utils import domains as ds
from facestyle_utils import face_crops as crops
from facestyle_utils.faces import FaceBox
from facestyle_utils.files import sha256_file
from facestyle_utils.runtime import by_mode
from facestyle_utils.sample_data import load_sample

SIZE = 40
CONFIG = ds.DomainConfig(size=SIZE, styles=("cartoon",), seed=0, variants_per_photo=2)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Seven usable face photos (one with two faces), a duplicate, a truncated JPEG and a photo without a face."""
    folder = tmp_path_factory.mktemp("photos")
    astronaut = load_sample("astronaut").resize((256, 256))
    grace = load_sample("grace_hopper").resize((256, 300))
    for name, image in [("astronaut", astronaut), ("grace", grace)]:
        image.save(folder / f"{name}.png")
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / f"{name}_flip.jpg", quality=90)
        image.resize((image.width - 16, image.height - 16)).save(folder / f"{name}_small.jpg", quality=90)
    pair = Image.new("RGB", (512, 300), (90, 90, 90))
    pair.paste(astronaut, (0, 22))
    pair.paste(grace, (256, 0))
    pair.save(folder / "pair.png")
    shutil.copy(folder / "grace.png", folder / "grace_copy.png")
    (folder / "cut.jpg").write_bytes((folder / "grace_flip.jpg").read_bytes()[:3000])
    load_sample("brick").resize((256, 256)).save(folder / "wall.png")
    return folder


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _partials(root: Path) -> list[Path]:
    return sorted(root.parent.glob(f".{root.name}.partial-*"))


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory):
    """An uninterrupted in-process build: what every other build below must reproduce byte for byte."""
    root = tmp_path_factory.mktemp("ref") / "domains"
    return root, build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)


class Counter:
    """Stands in for one stage of a photo (``process_photo``: the write pass): counts calls, and raises on call
    ``fail_at`` (an interruption)."""

    def __init__(self, monkeypatch, fail_at: int | None = None, name: str = "process_photo"):
        self.calls, self.fail_at, self.real = 0, fail_at, getattr(build, name)
        monkeypatch.setattr(build, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return self.real(*args, **kwargs)


def test_reference_build_reports_and_splits_per_photo(reference):
    root, report = reference
    skipped = {issue.path: issue.reason for issue in report.skipped}
    assert set(skipped) == {"grace_copy.png", "cut.jpg", "wall.png"}
    assert "duplicate of grace.png" in skipped["grace_copy.png"] and "no face found" in skipped["wall.png"]
    assert [i.path for i in report.issues] == sorted(i.path for i in report.issues)  # input order, as before
    sources = [e for e in ds.read_manifest(root)["files"] if e["domain"] == "source"]
    faces = {e["identity"]: e["split"] for e in sources}
    assert {"pair_face0", "pair_face1"} <= set(faces) and faces["pair_face0"] == faces["pair_face1"]
    for entry in sources:  # augmented copies (v001) only in train
        assert entry["split"] == "train" or entry["path"].endswith("_v000.png")
    assert ds.verify_domains(root) == [] and not _partials(root)
    assert not (root / build.RECORDS).exists()


def test_two_workers_write_the_same_files_as_one(photos, reference, tmp_path):
    root, report = reference
    again = build.build_domains(photos, tmp_path / "domains", workers=2, config=CONFIG, progress=False)
    assert _files(again.root) == _files(root)
    assert again.issues == report.issues and again.counts == report.counts


def _with_faces(root: Path) -> int:
    return len({e["origin"] for e in ds.read_manifest(root)["files"]})


def test_an_interrupted_build_resumes_with_the_photos_left(photos, reference, tmp_path, monkeypatch):
    root = tmp_path / "domains"
    Counter(monkeypatch, fail_at=4)
    with pytest.raises(KeyboardInterrupt):
        build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)
    assert not root.exists() and len(_partials(root)) == 1
    assert len(list((_partials(root)[0] / build.RECORDS).glob("write-*.json"))) == 3
    finder, writer = Counter(monkeypatch, name="find_faces"), Counter(monkeypatch)
    report = build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)
    assert finder.calls == 0  # the face pass had finished: nothing found again
    assert writer.calls == _with_faces(root) - 3  # the three photos written were not written again
    assert _files(root) == _files(reference[0]) and report.issues == reference[1].issues
    assert not _partials(root)


def test_a_build_interrupted_while_finding_faces_resumes_too(photos, reference, tmp_path, monkeypatch):
    root = tmp_path / "domains"
    Counter(monkeypatch, fail_at=5, name="find_faces")
    with pytest.raises(KeyboardInterrupt):
        build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)
    finder = Counter(monkeypatch, name="find_faces")
    build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)
    assert finder.calls == len(build.plan_photos(crops.list_images(photos)).jobs) - 4
    assert _files(root) == _files(reference[0])


def test_another_config_never_reuses_unfinished_work(photos, tmp_path, monkeypatch):
    root = tmp_path / "domains"
    Counter(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        build.build_domains(photos, root, workers=1, config=CONFIG, progress=False)
    counter = Counter(monkeypatch)
    build.build_domains(photos, root, workers=1, config=replace(CONFIG, styles=("pencil",)), progress=False)
    assert counter.calls == _with_faces(root)
    assert not (root / "target" / "cartoon").exists() and (root / "target" / "pencil").is_dir()
    assert not _partials(root)  # the other config's unfinished work is gone once a build is in place
    assert ds.verify_domains(root) == []


def test_a_finished_build_is_reused_until_an_input_changes(photos, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    first = build.build_domains(folder, tmp_path / "d", workers=1, config=CONFIG, progress=False)
    stamp = (first.root / "manifest.json").stat().st_mtime_ns
    counter = Counter(monkeypatch)
    again = build.build_domains(folder, tmp_path / "d", workers=1, config=CONFIG, progress=False)
    assert again.reused and counter.calls == 0 and (first.root / "manifest.json").stat().st_mtime_ns == stamp
    assert again.issues == first.issues and again.counts == first.counts
    load_sample("astronaut").resize((210, 210)).save(folder / "astronaut.png")  # same name, new contents
    rebuilt = build.build_domains(folder, tmp_path / "d", workers=1, config=CONFIG, progress=False)
    assert not rebuilt.reused and counter.calls > 0 and ds.verify_domains(rebuilt.root) == []


def test_memory_per_photo_is_a_few_manifest_entries(photos, tmp_path, monkeypatch):
    """Bounded memory, structurally: a photo's result is JSON (paths, hashes), never an image, and the
    in-memory face list of faces_from_photos is not used by build_domains at all."""
    monkeypatch.setattr(crops, "faces_from_photos", lambda *a, **k: pytest.fail("build_domains held all faces"))
    assert not hasattr(build, "faces_from_photos")  # nor could it call its own imported copy
    job = build.plan_photos(crops.list_images(photos)).jobs[0]
    settings = ds.DomainConfig(size=SIZE, styles=("cartoon", "pencil"), variants_per_photo=3, backend="opencv")
    faces = build.find_faces(job, settings)
    assert len(faces.boxes) == 1 and all(isinstance(box, FaceBox) for box in faces.boxes)
    result = build.process_photo(replace(job, split="train", boxes=tuple(faces.boxes)), settings, tmp_path)
    assert vars(result).keys() == {"entries"} and len(result.entries) == 3 * 3  # 3 crops, each with 2 styles
    assert len(json.dumps(result.entries)) < 400 * len(result.entries)
    assert all(isinstance(v, (str, bool)) for entry in result.entries for v in entry.values())
    build.build_domains(photos, tmp_path / "d", workers=1, config=CONFIG, progress=False)


def test_workers_argument(photos, tmp_path):
    assert build._worker_count(None, 10) == 1  # a small build stays in this process
    assert build._worker_count(4, 2) == 2
    with pytest.raises(ValueError, match="at least 1"):
        build.build_domains(photos, tmp_path / "d", workers=0, config=CONFIG, progress=False)


def test_only_photos_with_faces_take_a_place_in_the_split(photos, tmp_path):
    """Splits are drawn after the face pass, so a few photos with failures still give faces in val and test."""
    files = [photos / name for name in ("astronaut.png", "grace.png", "astronaut_flip.jpg", "wall.png", "cut.jpg")]
    for seed in range(4):
        report = build.build_domains(files, tmp_path / f"d{seed}", workers=1, progress=False,
                                      config=replace(CONFIG, seed=seed, variants_per_photo=1))
        assert report.counts["source"] == {"train": 1, "val": 1, "test": 1}


# --------------------------------------------------------------------------- sharp photo patches


def test_photo_patches_are_full_resolution_crops_of_the_photos_seeded_and_train_only(tmp_path):
    from facestyle_utils.sample_data import PATCH_PHOTOS, load_sample

    assert "grace_hopper" not in PATCH_PHOTOS  # the held-out colour face never becomes training data
    items = crops.photo_patch_items(32, 4, seed=1, photos=("coffee", "camera"), soft_fraction=0.0)
    assert [item.identity for item in items] == ["photo_coffee"] * 4 + ["photo_camera"] * 4
    coffee = np.asarray(load_sample("coffee"))
    for item in items[:4]:  # sharp patches are exact crops (possibly mirrored) of the full-size photo
        x, y = (int(v) for v in item.origin.split("at (")[1].split(")")[0].split(", "))
        crop = coffee[y:y + 32, x:x + 32]
        patch = np.asarray(item.image)
        assert patch.shape == (32, 32, 3) and (np.array_equal(patch, crop) or np.array_equal(patch, crop[:, ::-1]))
    again = crops.photo_patch_items(32, 4, seed=1, photos=("coffee", "camera"), soft_fraction=0.0)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(items, again))
    other = crops.photo_patch_items(32, 4, seed=2, photos=("coffee",), soft_fraction=0.0)
    assert not all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(items, other))


def test_soft_patches_are_blurred_or_down_up_sampled():
    items = crops.photo_patch_items(64, 12, seed=0, photos=("astronaut",), soft_fraction=1.0)
    kinds = {item.origin.split(", ")[-1].split(" ")[0] for item in items}
    assert kinds == {"blur", "down-up"}
    sharp = crops.photo_patch_items(64, 12, seed=0, photos=("astronaut",), soft_fraction=0.0)
    # softening removes high frequencies: the mean absolute horizontal gradient drops
    def detail(item):
        return np.abs(np.diff(np.asarray(item.image, dtype=float), axis=1)).mean()
    assert np.mean([detail(i) for i in items]) < 0.8 * np.mean([detail(i) for i in sharp])
    with pytest.raises(ValueError, match="smaller than a 4096-px patch"):
        crops.photo_patch_items(4096, 1, photos=("coffee",))


def test_default_build_puts_patches_in_train_and_keeps_the_face_split(tmp_path):
    plain = ds.build_default_domains(tmp_path / "faces", size=32, styles="cartoon", variants_per_photo=2,
                                          patches_per_photo=0, progress=False)
    patched = ds.build_default_domains(tmp_path / "patched", size=32, styles="cartoon", variants_per_photo=2,
                                            patches_per_photo=3, progress=False)
    def split_of(root):
        return {(e["identity"], e["split"]) for e in ds.read_manifest(root)["files"] if e["domain"] == "source"}
    faces, with_patches = split_of(plain), split_of(patched)
    added = with_patches - faces
    assert added and all(identity.startswith("photo_") and split == "train" for identity, split in added)
    assert {pair for pair in with_patches if not pair[0].startswith("photo_")} == faces
    manifest = ds.read_manifest(patched)
    assert manifest["config"]["patches_per_photo"] == 3 and manifest["inputs"]["alignment"] >= 1
    expected = ds.DomainConfig.bundled(size=32, styles="cartoon", variants_per_photo=2, patches_per_photo=3)
    assert ds.read_config(patched) == replace(expected, backend=manifest["config"]["backend"])
    n_patch_files = sum(e["domain"] == "source" and e["identity"].startswith("photo_") for e in manifest["files"])
    from facestyle_utils.sample_data import PATCH_PHOTOS
    assert n_patch_files == 3 * len(PATCH_PHOTOS)


# --------------------------------------------------------------------------- the config object


@pytest.mark.parametrize("settings, error, message", [
    (dict(size=4), ValueError, "DomainConfig.size must be at least 8, got 4"),
    (dict(size=64.0), TypeError, "DomainConfig.size must be an int, got 64.0"),
    (dict(seed=-1), ValueError, "DomainConfig.seed must be at least 0"),
    (dict(variants_per_photo=0), ValueError, "DomainConfig.variants_per_photo must be at least 1"),
    (dict(patches_per_photo=-2), ValueError, "DomainConfig.patches_per_photo must be at least 0"),
    (dict(already_cropped="yes"), TypeError, "already_cropped must be True or False"),
    (dict(margin=-0.1), ValueError, "DomainConfig.margin must be a number of face sides from 0 to 2"),
    (dict(backend="dlib"), ValueError, "DomainConfig.backend must be one of"),
    (dict(fractions=(0.8, 0.1)), ValueError, "three shares"),
    (dict(fractions=(0.8, 0.3, 0.1)), ValueError, "adding up to 1"),
    (dict(styles=("cartoon", "cartoon")), ValueError, "lists a style twice"),
    (dict(styles=(3,)), TypeError, "must be style names"),
    (dict(target_folders={"cartoon": "x"}), ValueError, "cannot name a target domain"),
])
def test_config_refuses_wrong_values_naming_the_field(settings, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ds.DomainConfig(**settings)


def test_config_shorthands_defaults_and_unknown_names():
    assert ds.DomainConfig(styles="pencil").styles == ("pencil",)  # one name is accepted
    assert ds.DomainConfig().with_settings(size=64, backend=None) == ds.DomainConfig(size=64)  # None keeps the value
    with pytest.raises(ValueError, match="size must be at least 8"):
        ds.DomainConfig().with_settings(size=2)  # checked again
    with pytest.raises(TypeError, match="DomainConfig has no setting colour; its settings: already_cropped"):
        ds.DomainConfig().with_settings(colour=True)
    bundled = ds.DomainConfig.bundled()
    assert bundled.styles == tuple(ds.TARGET_STYLES)
    expected = by_mode(quick=(4, 2), workshop=(16, 8), full=(64, 32))
    assert (bundled.variants_per_photo, bundled.patches_per_photo) == expected
    with pytest.raises(TypeError, match="DomainConfig has no setting variants; "):
        ds.DomainConfig().with_settings(variants=3)  # one name per concept: variants_per_photo


def test_config_round_trips_through_the_manifest(photos, reference, tmp_path):
    root, _ = reference
    manifest = ds.read_manifest(root)
    config = ds.read_config(root)
    assert config == replace(CONFIG, backend=config.backend) and config.backend in ds.facelib.BACKENDS
    assert manifest["config"] == config.to_json()  # stored as is: every field, nothing else
    assert set(manifest["config"]) == {f.name for f in fields(ds.DomainConfig)}
    assert manifest["inputs"]["photos"] == [p.name for p in crops.list_images(photos)]
    assert ds.DomainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    styles = tmp_path / "styles"
    styles.mkdir()
    load_sample("brick").resize((80, 80)).save(styles / "brick.png")
    load_sample("coffee").resize((80, 80)).save(styles / "coffee.png")
    with_folder = replace(CONFIG, variants_per_photo=1, target_folders={"tex": styles})
    built = build.build_domains([photos / "astronaut.png", photos / "grace.png"], tmp_path / "d", with_folder,
                                progress=False, workers=1)
    assert ds.read_config(built.root) == replace(with_folder, backend=config.backend)
    assert ds.read_config(built.root).target_folders == {"tex": str(styles)}


def test_an_old_manifest_is_named_and_never_reused(reference, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(reference[0], root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["config"] = {"size": SIZE, "variants": 2, "inputs": []}  # as written before configs were stored whole
    del manifest["inputs"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert ds.domain_sizes(root) == ds.domain_sizes(reference[0])  # the rest of an old manifest still reads
    with pytest.raises(ValueError, match=f"{root / 'manifest.json'}: not a DomainConfig .*build the domains again"):
        ds.read_config(root)
    assert not ds.manifest_matches(root, ds.read_config(reference[0]), ds.read_manifest(reference[0])["inputs"])


def test_folder_only_settings_are_refused_for_the_bundled_build_and_patches_for_folders(photos, tmp_path):
    with pytest.raises(ValueError, match="already_cropped=True is for a folder of photos"):
        ds.build_default_domains(tmp_path / "b", already_cropped=True, progress=False)
    with pytest.raises(ValueError, match="patches_per_photo=2: photo patches belong to the bundled build"):
        build.build_domains(photos, tmp_path / "d", patches_per_photo=2, progress=False)
    with pytest.raises(TypeError, match="config must be a DomainConfig, got dict"):
        build.build_domains(photos, tmp_path / "d", {"size": 64}, progress=False)
