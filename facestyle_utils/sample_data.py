"""Sample data: public-domain faces and style images that ship inside installed packages.

Nothing is downloaded and no third-party image is copied into the repository: each image
is read at run time from scikit-image or matplotlib. Credits and licences are below and
in ``data/README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .image_io import load_image


@dataclass(frozen=True)
class Sample:
    """One bundled image: where it lives, what it is good for and whom to credit."""

    name: str
    kind: str  # "face", "style" or "photo" (a sharp photo for learning local filters)
    package: str  # "skimage" or "matplotlib"
    filename: str
    credit: str
    licence: str

    @property
    def path(self) -> Path:
        """Location of the file inside the installed package."""
        if self.package == "skimage":
            import skimage

            return Path(skimage.__file__).parent / "data" / self.filename
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / self.filename


SAMPLES: dict[str, Sample] = {s.name: s for s in [
    Sample("astronaut", "face", "skimage", "astronaut.png",
           "Astronaut Eileen Collins, NASA (via scikit-image)", "public domain"),
    Sample("grace_hopper", "face", "matplotlib", "grace_hopper.jpg",
           "Rear Admiral Grace Hopper, U.S. Navy photograph (via matplotlib)", "public domain"),
    Sample("hubble_deep_field", "style", "skimage", "hubble_deep_field.jpg",
           "Hubble eXtreme Deep Field, NASA (via scikit-image)", "public domain"),
    Sample("brick", "style", "skimage", "brick.png",
           "Bricks25 texture, CC0Textures (via scikit-image)", "CC0 1.0"),
    Sample("grass", "style", "skimage", "grass.png",
           "Grass texture, CC0Textures (via scikit-image)", "CC0 1.0"),
    Sample("gravel", "style", "skimage", "gravel.png",
           "Gravel04 texture, CC0Textures (via scikit-image)", "CC0 1.0"),
    Sample("coffee", "style", "skimage", "coffee.png",
           "Coffee cup, photograph by Rachel Michetti, Pikolo Espresso Bar (via scikit-image)", "CC0 1.0"),
    Sample("chelsea", "style", "skimage", "chelsea.png",
           "Chelsea the cat, photograph by Stefan van der Walt (via scikit-image)", "CC0 1.0"),
    Sample("rocket", "style", "skimage", "rocket.jpg",
           "DSCOVR launch on Falcon 9, SpaceX (via scikit-image)", "public domain"),
    Sample("retina", "photo", "skimage", "retina.jpg",
           "Fundus photograph of a normal left eye, Mikael Haggstrom (via scikit-image)", "CC0 1.0"),
    Sample("immunohistochemistry", "photo", "skimage", "ihc.png",
           "Immunohistochemical staining of colonic glands, Center for Microscopy And Molecular Imaging "
           "(via scikit-image)", "no known copyright restrictions"),
    Sample("camera", "photo", "skimage", "camera.png",
           "Man with a camera, photograph by Lav Varshney (via scikit-image)", "CC0 1.0"),
]}

#: Sharp photos whose patches teach the filters hard edges and colour (``face_crops.photo_patch_items``):
#: every bundled colour photo except the held-out face (Grace Hopper), plus one gray one.
PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "retina", "immunohistochemistry", "camera")

#: The 100 tiny (25x25, gray) face crops from Labeled Faces in the Wild bundled by scikit-image.
LFW_CREDIT = "Labeled Faces in the Wild, G. B. Huang et al., University of Massachusetts Amherst (via scikit-image)"


def list_samples(kind: str | None = None) -> list[Sample]:
    """All bundled samples, or only the faces (``kind="face"``), styles (``"style"``) or other photos (``"photo"``)."""
    if kind not in (None, "face", "style", "photo"):
        raise ValueError(f"kind must be 'face', 'style', 'photo' or None, not {kind!r}")
    return [s for s in SAMPLES.values() if kind is None or s.kind == kind]


def load_sample(name: str, max_side: int | None = None) -> Image.Image:
    """Load a bundled sample as an RGB PIL image (textures are gray and come back as RGB)."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}")
    path = SAMPLES[name].path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sample {name!r} is missing from the installed {SAMPLES[name].package}")
    return load_image(path, max_side=max_side)


def sample_faces(max_side: int | None = None) -> dict[str, Image.Image]:
    """The bundled face photos by name."""
    return {s.name: load_sample(s.name, max_side) for s in list_samples("face")}


def sample_styles(max_side: int | None = None) -> dict[str, Image.Image]:
    """The bundled style images by name."""
    return {s.name: load_sample(s.name, max_side) for s in list_samples("style")}


def lfw_subset_faces() -> np.ndarray:
    """The 100 LFW face crops bundled with scikit-image: float array (100, 25, 25) in [0, 1]."""
    import skimage

    images = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")
    return images[:100].astype(np.float32)
