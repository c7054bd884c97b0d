"""Bundled samples load offline, are RGB and carry credits."""
import numpy as np
import pytest

from facestyle_utils import sample_data


def test_every_sample_loads_as_rgb_and_has_credit():
    for sample in sample_data.list_samples():
        assert sample.path.is_file(), sample.name
        assert sample.credit and sample.licence in {"public domain", "CC0 1.0", "no known copyright restrictions"}
        image = sample_data.load_sample(sample.name, max_side=64)
        assert image.mode == "RGB" and max(image.size) == 64


def test_faces_and_styles_are_split_by_kind():
    faces = sample_data.sample_faces(max_side=32)
    styles = sample_data.sample_styles(max_side=32)
    assert set(faces) == {"astronaut", "grace_hopper"}
    assert {"hubble_deep_field", "brick"} <= set(styles)
    assert not set(faces) & set(styles)
    with pytest.raises(ValueError, match="kind"):
        sample_data.list_samples("painting")


def test_unknown_sample_names_the_choices():
    with pytest.raises(KeyError, match="astronaut"):
        sample_data.load_sample("mona_lisa")


def test_lfw_subset_faces():
    faces = sample_data.lfw_subset_faces()
    assert faces.shape == (100, 25, 25) and faces.dtype == np.float32
    assert 0 <= faces.min() and faces.max() <= 1 and faces.std() > 0.1


def test_data_readme_credits_every_sample():
    from facestyle_utils.runtime import project_root

    readme = (project_root() / "data" / "README.md").read_text()
    for sample in sample_data.list_samples():
        assert sample.name in readme and sample.licence in readme


def test_patch_photos_are_bundled_samples_and_never_the_held_out_face():
    assert set(sample_data.PATCH_PHOTOS) <= set(sample_data.SAMPLES)
    assert "grace_hopper" not in sample_data.PATCH_PHOTOS
    assert {s.name for s in sample_data.list_samples("photo")} <= set(sample_data.PATCH_PHOTOS)
    readme = (sample_data.Path(__file__).resolve().parent.parent / "data" / "README.md").read_text()
    assert all(sample_data.SAMPLES[name].filename in readme for name in sample_data.PATCH_PHOTOS)
