"""Domain building (bad inputs, determinism, manifest, inputs untouched) and the two dataset classes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils import domains as ds
from facestyle_utils.datasets import (
    PairedDataset,
    PairedRandomCrop,
    PairedTransform,
    UnpairedDataset,
    channel_stats,
    identity_subset,
    make_loader,
    stack_items,
)
from facestyle_utils.domain_build import build_domains
from facestyle_utils.domains import (
    EmptyDomainError,
    build_default_domains,
    split_identities,
    verify_domains,
)
from facestyle_utils.files import sha256_file
from facestyle_utils.image_io import image_to_tensor
from facestyle_utils.sample_data import load_sample

SIZE = 48


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Two good face photos plus one file for every kind of bad or odd input."""
    folder = tmp_path_factory.mktemp("photos")
    astronaut = load_sample("astronaut").resize((256, 256))
    grace = load_sample("grace_hopper").resize((256, 300))
    astronaut.save(folder / "astronaut.png")
    grace.save(folder / "grace.jpg", quality=92)
    shutil.copy(folder / "astronaut.png", folder / "astronaut_copy.png")  # duplicate
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    data = (folder / "grace.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    astronaut.resize((40, 40)).save(folder / "tiny.png")
    load_sample("astronaut").resize((2200, 2200), Image.Resampling.BILINEAR).save(folder / "huge.jpg", quality=70)
    grace.convert("L").save(folder / "gray.png")
    rgba = grace.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(folder / "rgba.png")
    grace.convert("CMYK").save(folder / "cmyk.jpg")
    gray16 = (np.asarray(astronaut.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(folder / "deep16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": store the photo turned the other way
    grace.transpose(Image.Transpose.ROTATE_90).save(folder / "phone.jpg", exif=exif, quality=92)
    load_sample("brick").resize((256, 256)).save(folder / "noface.png")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[str, float]]:
    return {p.name: (sha256_file(p), p.stat().st_mtime) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def built(photo_folder, tmp_path_factory):
    before = _snapshot(photo_folder)
    root = tmp_path_factory.mktemp("out") / "domains"
    report = build_domains(photo_folder, root, size=SIZE, styles=("cartoon", "pencil"), seed=0,
                           progress=False)
    return root, report, before


def test_every_bad_file_is_reported_with_its_reason(built):
    _, report, _ = built
    skipped = {issue.path: issue.reason for issue in report.skipped}
    assert set(skipped) == {"astronaut_copy.png", "notes.txt", "empty.jpg", "truncated.jpg", "tiny.png", "noface.png"}
    assert "duplicate of astronaut.png" in skipped["astronaut_copy.png"]
    assert "not an image" in skipped["notes.txt"]
    assert "empty" in skipped["empty.jpg"]
    assert "truncated" in skipped["truncated.jpg"]
    assert "too small" in skipped["tiny.png"] and str(ds.MIN_IMAGE_SIDE) in skipped["tiny.png"]
    assert "no face found" in skipped["noface.png"]
    converted = {(issue.path, issue.reason.split(" ")[0]) for issue in report.issues if issue.status == "converted"}
    assert ("huge.jpg", "downscaled") in converted
    assert ("gray.png", "converted") in converted and ("rgba.png", "converted") in converted
    assert ("cmyk.jpg", "converted") in converted and ("deep16.png", "converted") in converted
    assert ("phone.jpg", "rotated") in converted
    assert "truncated.jpg" in report.table() and "reason" in report.table()


def test_good_and_converted_photos_each_give_one_face(built):
    root, report, _ = built
    stems = sorted(p.stem for p in (root / "source").rglob("*.png"))
    expected = ["astronaut", "cmyk", "deep16", "grace", "gray", "huge", "phone", "rgba"]
    assert stems == sorted(f"{name}_v000" for name in expected)
    assert sum(report.counts["source"].values()) == len(expected)
    phone = Image.open(next((root / "source").rglob("phone_v000.png")))
    assert phone.size == (SIZE, SIZE)  # EXIF-rotated photo was stood upright, so its face was found


def test_inputs_are_never_modified(built, photo_folder):
    _, _, before = built
    assert _snapshot(photo_folder) == before


def test_manifest_hashes_layout_and_problems(built):
    root, report, _ = built
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == ds.FORMAT
    assert manifest["styles"] == {"cartoon": "paired", "pencil": "paired"}
    assert len(manifest["files"]) == 3 * 8  # source + two styles
    for entry in manifest["files"]:
        assert entry["path"].split("/")[0] in ("source", "target")
        assert sha256_file(root / entry["path"]) == entry["sha256"]
    assert {p["path"] for p in manifest["problems"]} == {i.path for i in report.issues}
    assert verify_domains(root) == []
    for split in ds.SPLITS:  # every source file has its partner in each style, same name
        for source in (root / "source" / split).glob("*.png"):
            assert (root / "target" / "cartoon" / split / source.name).is_file()


def test_same_inputs_and_seed_give_identical_files(built, photo_folder, tmp_path):
    root, _, _ = built
    again = build_domains(photo_folder, tmp_path / "again", size=SIZE, styles=("cartoon", "pencil"), seed=0,
                          progress=False).root
    first = {e["path"]: e["sha256"] for e in ds.read_manifest(root)["files"]}
    second = {e["path"]: e["sha256"] for e in ds.read_manifest(again)["files"]}
    assert first == second
    assert (root / "manifest.json").read_bytes() == (again / "manifest.json").read_bytes()


def test_verify_detects_a_changed_file(built, tmp_path):
    root, _, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = next((copy / "source").rglob("*.png"))
    Image.new("RGB", (SIZE, SIZE)).save(victim)
    assert verify_domains(copy) == [victim.relative_to(copy).as_posix()]


def test_empty_domain_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"")
    (bad / "b.txt").write_text("hello")
    with pytest.raises(EmptyDomainError, match=r"no usable face images among 2 file\(s\)(.|\n)*a\.jpg"):
        build_domains(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(EmptyDomainError):
        build_domains(tmp_path / "bad", tmp_path / "out", progress=False, min_side=10_000)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        build_domains(tmp_path / "missing", tmp_path / "out", progress=False)


def test_refuses_to_replace_a_folder_that_is_not_a_build(photo_folder, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a domain build"):
        build_domains([photo_folder / "astronaut.png"], precious, size=SIZE, progress=False)
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_split_by_identity_keeps_variants_together():
    identities = [f"id{i:02d}" for i in range(20)]
    first = split_identities(identities, seed=3)
    assert first == split_identities(list(reversed(identities)), seed=3)  # order of inputs does not matter
    assert first != split_identities(identities, seed=4)
    counts = {s: list(first.values()).count(s) for s in ds.SPLITS}
    assert counts == {"train": 16, "val": 2, "test": 2}
    assert set(split_identities(["a", "b"], seed=0).values()) == {"train"}
    assert split_identities(identities, seed=0, pinned={"id00": "test"})["id00"] == "test"


def test_augmented_variants_stay_in_train_only(photo_folder, tmp_path):
    files = [photo_folder / n for n in ("astronaut.png", "grace.jpg", "gray.png", "rgba.png")]
    report = build_domains(files, tmp_path / "d", size=SIZE, variants_per_photo=3, seed=1, progress=False)
    manifest = ds.read_manifest(report.root)
    splits: dict[str, set[str]] = {}
    for entry in manifest["files"]:
        splits.setdefault(entry["identity"], set()).add(entry["split"])
        if entry["split"] != "train":
            assert entry["path"].endswith("_v000.png")
    assert all(len(s) == 1 for s in splits.values())
    assert {"val", "test"} <= set().union(*splits.values())
    assert report.counts["source"]["train"] == 3 * sum(s == {"train"} for s in splits.values())


def test_unpaired_target_folder(photo_folder, tmp_path):
    styles = tmp_path / "my_style"
    styles.mkdir()
    for name in ("brick", "grass", "gravel", "coffee", "chelsea"):
        load_sample(name).resize((120, 100)).save(styles / f"{name}.png")
    (styles / "broken.png").write_bytes(b"\x89PNG\r\n")
    report = build_domains([photo_folder / "astronaut.png"], tmp_path / "d", size=SIZE, styles=(),
                           target_folders={"anime": styles}, progress=False)
    assert sum(report.counts["target/anime"].values()) == 5
    assert any(i.path == "broken.png" and i.status == "skipped" for i in report.issues)
    assert ds.read_manifest(report.root)["styles"] == {"anime": "unpaired"}
    unpaired = UnpairedDataset.from_folders(report.root / "source" / "train",
                                            report.root / "target" / "anime" / "train")
    source, target = unpaired[0]
    assert source.shape == target.shape == (3, SIZE, SIZE)
    empty = tmp_path / "empty_style"
    empty.mkdir()
    with pytest.raises(EmptyDomainError, match="target domain 'anime'"):
        build_domains([photo_folder / "astronaut.png"], tmp_path / "d2", target_folders={"anime": empty},
                      progress=False)


def test_paired_dataset_items_and_errors(built):
    root, _, _ = built
    data = PairedDataset(root, "cartoon", "train")
    assert len(data) == len(list((root / "source" / "train").glob("*.png")))
    source, target = data[0]
    assert source.shape == target.shape == (3, SIZE, SIZE) and source.dtype == torch.float32
    assert 0 <= source.min() and source.max() <= 1 and not torch.equal(source, target)
    with pytest.raises(EmptyDomainError, match="no target style 'watercolour'"):
        PairedDataset(root, "watercolour")
    with pytest.raises(ValueError, match="split must be one of"):
        PairedDataset(root, "cartoon", "validation")
    with pytest.raises(EmptyDomainError, match="does not exist"):
        PairedDataset(root.parent / "nowhere", "cartoon")


def test_paired_transform_is_identical_on_both_sides():
    image = load_sample("astronaut").resize((64, 64))
    transform = PairedTransform(32, scale=(0.3, 0.6), jitter=0.4)
    torch.manual_seed(0)
    a, b = transform(image, image.copy())
    assert a.shape == (3, 32, 32) and torch.equal(a, b)
    torch.manual_seed(0)
    again, _ = transform(image, image)
    assert torch.equal(a, again)  # reproducible from the seed
    plain = PairedTransform(64, train=False)(image)
    assert torch.allclose(plain, image_to_tensor(image)[0])
    with pytest.raises(ValueError, match="one size"):
        transform(image, image.resize((40, 40)))


def test_paired_transform_varies_between_calls():
    image = load_sample("astronaut").resize((64, 64))
    torch.manual_seed(1)
    transform = PairedTransform(32)
    outs = [transform(image) for _ in range(4)]
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


def _tiny_folder(folder: Path, count: int, value: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (16, 16), (value, i * 10, 0)).save(folder / f"{i:02d}.png")
    return folder


def test_unpaired_dataset_epochs_cover_both_domains(tmp_path):
    a = _tiny_folder(tmp_path / "a", 5, 10)
    b = _tiny_folder(tmp_path / "b", 3, 200)
    data = UnpairedDataset.from_folders(a, b, seed=7)
    assert len(data) == 5
    for epoch in range(3):
        data.set_epoch(epoch)
        pairs = [data.indices(i) for i in range(len(data))]
        assert sorted(p[0] for p in pairs) == [0, 1, 2, 3, 4]  # each source once
        assert set(p[1] for p in pairs) == {0, 1, 2}  # every target at least once
    data.set_epoch(0)
    epoch0 = [data.indices(i) for i in range(5)]
    data.set_epoch(1)
    assert [data.indices(i) for i in range(5)] != epoch0
    again = UnpairedDataset.from_folders(a, b, seed=7)
    assert [again.indices(i) for i in range(5)] == epoch0
    source, target = data[0]
    assert source[0].mean().item() == pytest.approx(10 / 255) and target[0].mean().item() == pytest.approx(200 / 255)
    with pytest.raises(IndexError):
        data.indices(5)
    with pytest.raises(EmptyDomainError, match="target domain is empty"):
        UnpairedDataset([a / "00.png"], [])
    (tmp_path / "none").mkdir()
    with pytest.raises(EmptyDomainError, match="no images"):
        UnpairedDataset.from_folders(a, tmp_path / "none")


def test_loader_batches_and_channel_stats(tmp_path):
    a = _tiny_folder(tmp_path / "a", 4, 51)
    data = UnpairedDataset.from_folders(a, a)
    loader = make_loader(data, batch_size=3, seed=0)
    batches = list(loader)
    assert [tuple(b[0].shape) for b in batches] == [(3, 3, 16, 16), (1, 3, 16, 16)]
    stats = channel_stats(loader)
    assert stats["source_mean"][0].item() == pytest.approx(0.2, abs=1e-6)
    assert stats["source_std"][0].item() == pytest.approx(0.0, abs=1e-6)
    green = np.array([0, 10, 20, 30]) / 255
    assert stats["source_mean"][1].item() == pytest.approx(green.mean(), abs=1e-6)
    assert stats["target_std"][1].item() == pytest.approx(green.std(), abs=1e-6)
    assert torch.equal(next(iter(make_loader(data, 2, seed=5)))[0], next(iter(make_loader(data, 2, seed=5)))[0])


def test_default_domains_are_built_once_and_reused(tmp_path):
    root = build_default_domains(tmp_path / "default", size=32, styles="cartoon", variants_per_photo=3,
                                 patches_per_photo=0, progress=False)
    sizes = ds.domain_sizes(root)
    assert sizes["source"] == {"train": 3 + 80 * 2, "val": 10, "test": 11}
    assert sizes["target/cartoon"] == sizes["source"]
    test_names = sorted(p.name for p in (root / "source" / "test").glob("*.png"))
    assert "grace_hopper_v000.png" in test_names
    assert not any(name.startswith("astronaut") for name in test_names)
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert build_default_domains(root, size=32, styles="cartoon", variants_per_photo=3, patches_per_photo=0,
                                 progress=False) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    gray = ds.read_manifest(root)["files"]
    assert all(e["gray"] == e["identity"].startswith("lfw") for e in gray)
    build_default_domains(root, size=32, styles="cartoon", variants_per_photo=2, patches_per_photo=0, progress=False)
    assert ds.domain_sizes(root)["source"]["train"] == 2 + 80 * 2  # config changed: rebuilt
    pair = PairedDataset(root, "cartoon", "test")[0]
    assert pair[0].shape == (3, 32, 32)

    train = PairedDataset(root, "cartoon", "train")
    assert train.identities.count("astronaut") == 2 and len(set(train.identities)) == 81
    subset = identity_subset(train, 10, seed=1)
    people = {train.identities[i] for i in subset.indices}
    assert len(people) == 10  # ten people, every copy of each
    assert len(subset) == sum(train.identities.count(who) for who in people)
    assert subset.indices == identity_subset(train, 10, seed=1).indices  # seeded
    with pytest.raises(ValueError, match="between 1 and 81"):
        identity_subset(train, 82)


def test_default_folder_depends_on_the_whole_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    cartoon = build_default_domains(size=32, styles="cartoon", variants_per_photo=1, progress=False)
    both = build_default_domains(size=32, styles=("pencil", "cartoon"), variants_per_photo=1, progress=False)
    assert cartoon != both and cartoon.parent == both.parent == tmp_path / "quick" / "domains"
    assert both.name == "default_32px_cartoon-pencil_v1_p2_seed0"  # quick mode: 2 photo patches each
    assert ds.verify_domains(cartoon) == [] and ds.verify_domains(both) == []  # neither replaced the other


def test_photos_with_the_same_stem_never_write_over_each_other(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = load_sample("astronaut").resize((256, 256))
    grace = load_sample("grace_hopper").resize((256, 300))
    astronaut.save(folder / "x.png")
    grace.save(folder / "x.jpg", quality=92)
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "a b.png")
    grace.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "a_b.png")
    root = tmp_path / "domains"
    build_domains(folder, root, size=SIZE, styles=("cartoon",), seed=0, progress=False)
    manifest = json.loads((root / "manifest.json").read_text())
    sources = [e for e in manifest["files"] if e["domain"] == "source"]
    assert sorted(e["origin"] for e in sources) == ["a b.png", "a_b.png", "x.jpg", "x.png"]
    assert len({e["path"] for e in sources}) == 4 and len({e["identity"] for e in sources}) == 4
    assert sorted(e["identity"] for e in sources) == ["a_b", "a_b_png", "x", "x_png"]
    assert verify_domains(root) == []


def test_paired_random_crop_cuts_the_same_window_from_both_images():
    torch.manual_seed(0)
    source = torch.arange(3 * 10 * 12, dtype=torch.float32).reshape(3, 10, 12)
    crop = PairedRandomCrop(6)
    for _ in range(5):
        a, b = crop(source, source * 2)
        assert a.shape == (3, 6, 6) and torch.equal(b, a * 2)
    with pytest.raises(ValueError, match="larger than the image"):
        PairedRandomCrop(16)(source, source)


def test_stack_items_batches_whole_pairs_in_the_order_asked(built):
    root, _, _ = built
    data = PairedDataset(root, "cartoon", "test")
    sources, targets = stack_items(data)
    assert sources.shape == targets.shape == (len(data), 3, SIZE, SIZE) and sources.dtype == torch.float32
    assert torch.equal(sources[0], data[0][0]) and torch.equal(targets[-1], data[len(data) - 1][1])
    picked, _ = stack_items(data, [len(data) - 1, 0])
    assert torch.equal(picked[0], sources[-1]) and torch.equal(picked[1], sources[0])
    with pytest.raises(ValueError, match="no items to stack"):
        stack_items(data, [])
    mixed = [(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)), (torch.zeros(3, 4, 4), torch.zeros(3, 5, 5))]
    with pytest.raises(ValueError, match=r"part 1 of the items differs in size"):
        stack_items(mixed)


def test_paired_example_dataset_gives_face_example_of_another_person_and_the_pair(built):
    from facestyle_utils.datasets import PairedExampleDataset

    root, _, _ = built
    data = PairedExampleDataset(root, ["cartoon", "pencil"], "train")
    pairs = {style: PairedDataset(root, style, "train") for style in ("cartoon", "pencil")}
    identities = pairs["cartoon"].identities
    assert len(data) == len(pairs["cartoon"]) and len(set(identities)) > 1
    seen_styles = set()
    torch.manual_seed(0)
    for index in range(len(data)):
        face, example, target = data[index]
        assert face.shape == example.shape == target.shape == (3, SIZE, SIZE)
        assert torch.equal(face, pairs["cartoon"][index][0])
        style = next(s for s in pairs if torch.equal(target, pairs[s][index][1]))  # the face's own target
        seen_styles.add(style)
        owners = [j for j in range(len(data)) if torch.equal(example, pairs[style][j][1])]  # same style, other person
        assert owners and all(identities[j] != identities[index] for j in owners)
    assert seen_styles == {"cartoon", "pencil"}
    torch.manual_seed(5)
    first = [t.clone() for t in data[1]]
    torch.manual_seed(5)
    assert all(torch.equal(a, b) for a, b in zip(first, data[1]))  # draws follow torch's seed
    with pytest.raises(EmptyDomainError, match="no target style 'watercolour'"):
        PairedExampleDataset(root, ["cartoon", "watercolour"])
    with pytest.raises(ValueError, match="at least one style"):
        PairedExampleDataset(root, [])


def test_paired_example_crops_keep_face_and_target_aligned(built):
    from facestyle_utils.datasets import PairedExampleDataset

    root, _, _ = built
    data = PairedExampleDataset(root, ["cartoon"], "train", transform=PairedRandomCrop(16))
    torch.manual_seed(1)
    face, example, target = data[0]
    assert face.shape == example.shape == target.shape == (3, 16, 16)
    full_face, full_target = PairedDataset(root, "cartoon", "train")[0]
    windows = [(top, left) for top in range(SIZE - 15) for left in range(SIZE - 15)
               if torch.equal(full_face[:, top:top + 16, left:left + 16], face)
               or torch.equal(full_face[:, top:top + 16, left:left + 16].flip(-1), face)]
    assert windows
    top, left = windows[0]
    crop = full_target[:, top:top + 16, left:left + 16]
    assert torch.equal(crop, target) or torch.equal(crop.flip(-1), target)
